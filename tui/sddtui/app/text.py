"""Make untrusted model text safe to show: no terminal control sequences, no bidi overrides."""

from __future__ import annotations

import re

# C0 and C1 control characters except tab and newline, DEL, and the Unicode bidi embedding,
# override and isolate characters, which can make shown text differ from the bytes written.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_model_text(text: str) -> str:
    """Return `text` with line ends made \\n and every control character except \\n and \\t removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE.sub("", text)
