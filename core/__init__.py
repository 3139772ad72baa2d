"""LipDub Studio core: everything that computes. No Qt may be imported below this package."""
__version__ = "0.1.0"
