"""Provide the workbench app and `create_app`, the one factory the command line and the tests share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.app import App

from sddtui.app.screens.workbench import MachineMemory, WorkbenchScreen, workbench_bindings
from sddtui.app.themes import (
    DEFAULT_THEME,
    MEANING_VARIABLE_DEFAULTS,
    bundled_theme_directory,
    load_themes,
    user_theme_directory,
)
from sddtui.errors import SddtuiError
from sddtui.i18n import LANGUAGES
from sddtui.memory.machine import read_machine_memory
from sddtui.spec.model import Spec


class SddtuiApp(App[None]):
    """The workbench: one WorkbenchScreen over one session, with themes registered on this app."""

    CSS_PATH = "workbench.tcss"
    TITLE = "sddtui"

    def __init__(self, workbench: WorkbenchScreen) -> None:
        super().__init__()
        self.workbench = workbench

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """Return fallbacks for the diff and gauge colours, for themes that do not set them."""
        return dict(MEANING_VARIABLE_DEFAULTS)

    def get_default_screen(self) -> WorkbenchScreen:
        """Return the workbench screen."""
        return self.workbench

    async def action_quit(self) -> None:
        """Stop the stream, close the session (and the embedded server), then exit."""
        await self.workbench.shutdown()
        self.exit(return_code=self.workbench.return_code)


def create_app(
    spec: Spec,
    project: Any,
    connect: Callable[[], Awaitable[Any]],
    lang: str,
    theme: str | None,
    *,
    read_memory: Callable[[], MachineMemory] = read_machine_memory,
    theme_directories: list[Path] | None = None,
) -> SddtuiApp:
    """Build the workbench for `spec`; `connect` runs in a worker after the first frame.

    Raises SddtuiError when `theme` names no known theme or a theme file is invalid.
    """
    lang = lang if lang in LANGUAGES else "en"
    screen_class = type("WorkbenchScreen", (WorkbenchScreen,), {"BINDINGS": workbench_bindings(lang)})
    workbench = screen_class(spec, project, connect, lang, read_memory)
    app = SddtuiApp(workbench)

    directories = theme_directories if theme_directories is not None else [bundled_theme_directory(), user_theme_directory()]
    for loaded in load_themes(directories):
        app.register_theme(loaded)
    if theme is None:
        app.theme = DEFAULT_THEME if DEFAULT_THEME in app.available_themes else "textual-dark"
    elif theme in app.available_themes:
        app.theme = theme
    elif f"sddtui-{theme}" in app.available_themes:
        # The shipped themes are named sddtui-dark and sddtui-light; "dark" and "light" are short for them.
        app.theme = f"sddtui-{theme}"
    else:
        raise SddtuiError("app.theme.unknown", name=theme, available=", ".join(sorted(app.available_themes)))
    return app
