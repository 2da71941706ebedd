"""Run the command line with `python -m sddtui`."""

from sddtui.cli import main

raise SystemExit(main())
