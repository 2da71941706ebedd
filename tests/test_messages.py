"""Check the message catalogue: every message exists in English and Japanese with the same fields."""

import string

import pytest

from sddtui.i18n import detect_language, join_sentences, load_catalog, translate


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
    assert "http://x:1/v1" in translate("base_url_invalid", "en", url="http://x:1/v1", reason="bad")
    assert "不正" in translate("base_url_invalid", "ja", url="http://x:1/v1", reason="bad")


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


# Placeholders that may take a whole message or a sentence from elsewhere: a finding, a server's
# error text, an OS error, a plan's problems. A template must not add its own period after one.
SENTENCE_PLACEHOLDERS = {"reason", "reasons", "error", "detail", "message", "note", "problems", "tail", "evidence"}
DOUBLED_PUNCTUATION = ("..", "。。", ".;", "。;", ".。", "。.")


@pytest.mark.parametrize("key", sorted(load_catalog()))
@pytest.mark.parametrize("sentence", ["The embedded message ends here.", "埋め込まれたメッセージはここで終わります。"])
def test_embedded_sentence_not_doubled(key, sentence):
    texts = load_catalog()[key]
    for lang in ("en", "ja"):
        template = texts[lang]
        fields = _fields(template)
        if not fields & SENTENCE_PLACEHOLDERS:
            continue
        values = {name: sentence if name in SENTENCE_PLACEHOLDERS else "x" for name in fields}
        rendered = template.format(**values)
        # A template may itself contain "..", e.g. in "uses '..' to leave its folder".
        plain = template.format(**{name: "x" for name in fields})
        for doubled in DOUBLED_PUNCTUATION:
            assert rendered.count(doubled) == plain.count(doubled), f"{key} ({lang}) renders {doubled!r}: {rendered}"


def test_join_sentences_keeps_one_period():
    reasons = ["Task T1 names a file outside the roots.", "Task T2 names 'FUNC-9', which the spec lacks", " "]
    joined = join_sentences(reasons)
    assert joined == "Task T1 names a file outside the roots. Task T2 names 'FUNC-9', which the spec lacks."
    assert ".;" not in translate("plan_failed", "en", attempts=2, reasons=joined)
    assert ".." not in translate("plan_failed", "en", attempts=2, reasons=joined)
