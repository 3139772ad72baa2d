"""LipDub Studio GUI (PySide6 + pyqtgraph). All computing lives in core/; this package only shows it."""
