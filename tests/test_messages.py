"""Check the message catalogue: every message exists in English and Japanese with the same fields."""

import string

import pytest

from sddtui.i18n import detect_language, load_catalog, translate


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(load_catalog()))
def test_message_has_both_languages(key):
    texts = load_catalog()[key]
    assert texts.get("en"), f"{key} has no English text"
    assert texts.get("ja"), f"{key} has no Japanese text"
    assert _fields(texts["en"]) == _fields(texts["ja"]), f"{key}: placeholders differ"


def test_japanese_text_is_japanese():
    untranslated = [
        key for key, texts in load_catalog().items()
        if texts["ja"] == texts["en"] and any(ch.isalpha() for ch in texts["en"].replace("sddtui", ""))
        and len(texts["en"]) > 20
    ]
    assert untranslated == []


def test_translate_fills_placeholders():
    assert "8080" in translate("server_unreachable", "en", url="http://127.0.0.1:8080/v1")
    assert "応答" in translate("server_unreachable", "ja", url="http://127.0.0.1:8080/v1")


def test_translate_unknown_key_raises():
    with pytest.raises(KeyError):
        translate("no_such_message_key")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "ja_JP.UTF-8"}, "ja"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "ja_JP.UTF-8", "LANG": "en_US.UTF-8"}, "ja"),
        ({"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_detect_language_from_locale(environ, expected):
    assert detect_language(environ) == expected
