"""Provide the workbench screen and its modal dialogs."""
