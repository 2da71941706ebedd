"""Provide the English and Japanese message catalogue and the language choice."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources

LANGUAGES = ("en", "ja")


@cache
def load_catalog() -> dict[str, dict[str, str]]:
    """Load every `messages/*.toml` table into one map from key to language to text."""
    catalog: dict[str, dict[str, str]] = {}
    folder = resources.files("sddtui") / "messages"
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".toml"):
            continue
        table = tomllib.loads(entry.read_text(encoding="utf-8"))
        for key, texts in table.items():
            if key in catalog:
                raise ValueError(f"message key {key!r} is defined twice; the second is in {entry.name}")
            catalog[key] = dict(texts)
    return catalog


def translate(key: str, lang: str = "en", /, **params: object) -> str:
    """Return the message `key` in `lang`, with `params` filled in."""
    texts = load_catalog().get(key)
    if texts is None:
        raise KeyError(f"message key {key!r} is missing from tui/sddtui/messages/")
    template = texts.get(lang) or texts["en"]
    return template.format(**params)


def join_sentences(sentences: Iterable[str]) -> str:
    """Join whole messages into one text, ending each with a period unless it already ends in punctuation.

    A message placed inside another must not be joined with "; ", which yields ".;" after a sentence.
    """
    parts = []
    for sentence in sentences:
        sentence = sentence.strip()
        if not sentence:
            continue
        if sentence[-1].isalnum():
            sentence += "."
        parts.append(sentence)
    return " ".join(parts)


def detect_language(environ: Mapping[str, str] | None = None) -> str:
    """Return "ja" when the locale variables name Japanese, else "en"."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = environ.get(name, "")
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"
