"""Check that the core never imports Textual, so the headless runner and the tests stay light."""

import subprocess
import sys

CORE_MODULES = [
    "sddtui.cli",
    "sddtui.connect",
    "sddtui.session",
    "sddtui.headless",
    "sddtui.spec.parse",
    "sddtui.tasks.planner",
    "sddtui.tasks.prompt",
    "sddtui.llm.client",
    "sddtui.llm.embedded",
    "sddtui.edits.proposal",
    "sddtui.edits.apply",
    "sddtui.journal",
    "sddtui.memory.architecture",
    "sddtui.memory.machine",
]


def test_core_does_not_import_textual():
    imports = "; ".join(f"import {name}" for name in CORE_MODULES)
    code = f"import sys; {imports}; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_app_does_import_textual():
    code = "import sys; import sddtui.app.app; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
