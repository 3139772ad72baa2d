"""Face detection, landmarks and tracking (no Qt)."""
