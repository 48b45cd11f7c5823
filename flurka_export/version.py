"""The package version (one place: the package, the CLI and exported models' producer_version read it)."""

__version__ = "0.1.0"
