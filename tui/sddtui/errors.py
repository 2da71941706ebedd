"""Provide the error type whose message names the value and the way out, in both languages."""

from __future__ import annotations

from sddtui.i18n import translate


class SddtuiError(Exception):
    """An error shown to the user: a catalogue key and the values its message names."""

    def __init__(self, key: str, /, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(key)

    def render(self, lang: str = "en") -> str:
        """Return the message in `lang`."""
        return translate(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.render("en")
