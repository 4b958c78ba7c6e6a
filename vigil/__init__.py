"""Vigil: privacy promises turned into AWS infrastructure that keeps them, and evidence that proves it."""

__version__ = "0.1.0"  # the one version string: pyproject.toml reads it (dynamic), so do wheels and `vigil --version`
