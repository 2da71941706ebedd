"""sddtui: a terminal workbench for spec-driven development with a local model."""

__version__ = "0.1.0"
