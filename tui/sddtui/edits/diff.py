"""Provide the unified diff between a file on disk and a proposal, and its line counts."""

from __future__ import annotations

import difflib
import re

_NO_NEWLINE_MARKER = "\\ No newline at end of file\n"
_HUNK_HEADER = re.compile(r"^@@ -\d+(?:,(?P<old>\d+))? \+\d+(?:,(?P<new>\d+))? @@")
_CONTEXT_LINES = 3


def split_lines(text: str) -> list[str]:
    """Split text after each "\\n" only, keeping the line endings.

    str.splitlines would also split on form feeds and Unicode separators, which would change
    a file's lines.
    """
    lines = text.split("\n")
    result = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        result.append(lines[-1])
    return result


def unified_diff(old: str | None, new: str, path: str) -> str:
    """Return the unified diff from `old` (None for a new file) to `new`, in the form git prints.

    Headers are a/PATH and b/PATH, or /dev/null for a new file; hunks carry three lines of
    context. A last line without a line break gets the "\\ No newline at end of file" marker.
    An unchanged file gives an empty string; a new empty file gives the headers alone.
    """
    if old == new:
        return ""
    from_file = "/dev/null" if old is None else f"a/{path}"
    to_file = f"b/{path}"
    old_lines = split_lines(old or "")
    new_lines = split_lines(new)

    parts = [f"--- {from_file}\n", f"+++ {to_file}\n"]
    hunk_lines = difflib.unified_diff(old_lines, new_lines, n=_CONTEXT_LINES, lineterm="\n")
    for index, line in enumerate(hunk_lines):
        # difflib's own "---" and "+++" header lines come first; ours replace them.
        if index < 2:
            continue
        if line.endswith("\n"):
            parts.append(line)
        else:
            parts.append(line + "\n" + _NO_NEWLINE_MARKER)
    return "".join(parts)


def diff_stats(diff: str) -> tuple[int, int]:
    """Return the numbers of added and removed lines in a unified diff.

    Lines are counted inside hunks by the counts in each hunk header, so a removed line that
    starts with "--" is not taken for a file header.
    """
    added = 0
    removed = 0
    old_left = 0
    new_left = 0
    for line in split_lines(diff):
        if old_left > 0 or new_left > 0:
            if line.startswith("+"):
                added += 1
                new_left -= 1
            elif line.startswith("-"):
                removed += 1
                old_left -= 1
            elif line.startswith("\\"):
                continue
            else:
                old_left -= 1
                new_left -= 1
            continue

        header = _HUNK_HEADER.match(line)
        if header:
            old_left = int(header.group("old") if header.group("old") is not None else 1)
            new_left = int(header.group("new") if header.group("new") is not None else 1)
    return added, removed
