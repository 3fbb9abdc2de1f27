"""The engine's version: a base module, so that the stages below the package's top can read it."""

__version__ = "0.1.0"
