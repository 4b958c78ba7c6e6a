"""Vigil: privacy promises turned into AWS infrastructure that keeps them, and evidence that proves it."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vigil")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"
