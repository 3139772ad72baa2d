"""Lip-sync engines. Every engine implements `core.engines.base.Engine`; the pipeline never knows which one runs."""
