"""Turn an answer's findings into short instructions for the model's next attempt."""

from __future__ import annotations

from sddtui.guards.model import Finding, Severity

# At most this many instructions go back to the model; a weak model follows a few precise ones best.
MAX_FEEDBACK_LINES = 8


def feedback_lines(findings: list[Finding]) -> list[str]:
    """Return the findings' feedback sentences without repeats, blocking ones first, at most MAX_FEEDBACK_LINES."""
    ordered = sorted(findings, key=lambda finding: finding.severity != Severity.BLOCK)
    lines = [finding.feedback for finding in ordered if finding.feedback.strip()]
    return list(dict.fromkeys(lines))[:MAX_FEEDBACK_LINES]


def feedback_prompt(findings: list[Finding], note: str = "") -> str:
    """Return the retry text: one instruction per finding, then the developer's note."""
    lines = feedback_lines(findings)
    parts: list[str] = []
    if lines:
        parts.append("Your previous answer was rejected. Fix these problems:")
        parts += [f"- {line}" for line in lines]
    if note.strip():
        if parts:
            parts.append("")
        parts.append(f"Note from the developer: {note.strip()}")
    return "\n".join(parts)
