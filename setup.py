"""Set-up shim: the package metadata lives in pyproject.toml."""
import setuptools

setuptools.setup()
