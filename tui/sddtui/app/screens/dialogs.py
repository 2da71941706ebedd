"""Provide the modal dialogs: a scrollable error message and the retry note input."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from sddtui.i18n import translate


class ErrorScreen(ModalScreen[None]):
    """A long error message in a scrollable box; q quits, Escape closes unless the error is fatal."""

    def __init__(self, title: str, message: str, lang: str, *, fatal: bool = False) -> None:
        super().__init__()
        self._heading = title
        self._message = message
        self._lang = lang
        self.fatal = fatal

    BINDINGS = [
        Binding("q", "quit_app", show=False),
        Binding("escape", "close", show=False),
    ]

    def compose(self) -> ComposeResult:
        """Lay out the title, the scrollable message and the key hint."""
        with Vertical(id="error-dialog"):
            yield Static(Text(self._heading, style="bold"), id="error-title")
            with VerticalScroll(id="error-body"):
                yield Static(Text(self._message), id="error-message")
            hint = "app.error.fatal_hint" if self.fatal else "app.error.hint"
            yield Static(Text(translate(hint, self._lang), style="dim"), id="error-hint")

    @property
    def message(self) -> str:
        """The error message shown."""
        return self._message

    async def action_quit_app(self) -> None:
        """Quit the app, closing the session first."""
        await self.app.action_quit()

    def action_close(self) -> None:
        """Close the dialog unless the error is fatal."""
        if not self.fatal:
            self.dismiss(None)


class NoteScreen(ModalScreen[str | None]):
    """Ask for the note a retry sends to the model; returns None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", show=False)]

    def __init__(self, task_id: str, lang: str) -> None:
        super().__init__()
        self._task_id = task_id
        self._lang = lang

    def compose(self) -> ComposeResult:
        """Lay out the title, the input and the key hint."""
        with Vertical(id="note-dialog"):
            yield Static(Text(translate("app.note.title", self._lang, task_id=self._task_id), style="bold"))
            yield Input(placeholder=translate("app.note.placeholder", self._lang), id="note-input")
            yield Static(Text(translate("app.note.hint", self._lang), style="dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Return the note typed."""
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        """Close without retrying."""
        self.dismiss(None)
