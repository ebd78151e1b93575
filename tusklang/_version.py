"""The package version, in a module of its own (stage 1) so any stage may name it without importing
the package's public facade (tusklang/__init__.py), which reaches every stage."""

__version__ = "0.1.0"
