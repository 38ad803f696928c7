"""The package version (one place; the root package and the store stamp it)."""

__version__ = "0.1.0"
