"""Provide the Textual workbench: spec tree, streaming task view, review and gauges."""
