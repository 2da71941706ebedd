"""Build the GBNF grammar that constrains a small model to the answer format: path line, one fenced file."""

from __future__ import annotations

# Maximum line length the grammar allows, in characters. With the line count below, the whole answer
# stays within max_tokens, since no token is shorter than one character.
MAX_LINE_CHARS = 100
FENCE_OVERHEAD_CHARS = 16


def _literal(text: str) -> str:
    """Quote text as a GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def max_answer_lines(path: str, max_tokens: int) -> int:
    """Return how many lines of at most MAX_LINE_CHARS fit in max_tokens after the path and fences."""
    room = max_tokens - len(path) - FENCE_OVERHEAD_CHARS
    return max(1, room // (MAX_LINE_CHARS + 1))


def answer_grammar(path: str, fence_language: str, max_tokens: int) -> str:
    """Return a grammar for `path`, a newline, and one fenced block that must close within max_tokens.

    The body may not contain a line that starts with a backtick, so the block cannot close early or nest.
    """
    header = _literal(f"{path}\n```{fence_language}\n")
    lines = max_answer_lines(path, max_tokens)
    return "\n".join(
        [
            f'root ::= {header} line{{0,{lines}}} "```\\n"',
            f'line ::= [^`\\n] [^\\n]{{0,{MAX_LINE_CHARS - 1}}} "\\n" | "\\n"',
        ]
    )
