"""The package's version, as installed (pyproject.toml is the one source)."""

from importlib import metadata

try:
    VERSION = metadata.version("sagemaker-loadtest")
except metadata.PackageNotFoundError:  # a checkout on sys.path without an install
    VERSION = "0+unknown"
