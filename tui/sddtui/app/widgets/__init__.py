"""Provide the workbench's widgets: spec tree, task view, diff view and gauges."""
