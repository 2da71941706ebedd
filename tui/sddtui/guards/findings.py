"""Build guard findings whose message and retry feedback come from the message catalogue."""

from __future__ import annotations

from sddtui.guards.model import Finding, Severity
from sddtui.i18n import translate

# Feedback goes back to the model in the prompt of a retry, so it is always English.
FEEDBACK_LANGUAGE = "en"
# Maximum length of the evidence text kept on a finding, in characters.
MAX_EVIDENCE_CHARS = 240


def guard_finding(
    kind: str,
    severity: Severity,
    lang: str = "en",
    *,
    path: str | None = None,
    line: int | None = None,
    evidence: str = "",
    not_applied: bool = False,
    **params: object,
) -> Finding:
    """Return a finding of `kind` with the catalogue's message in `lang` and its English feedback.

    The catalogue keys are "guard.KIND" and "guard.KIND.feedback"; both get `path`, `line`,
    `evidence` and `params` as placeholders.
    """
    evidence = shorten(evidence)
    values = {"path": path or "", "line": line or 0, "evidence": evidence, **params}
    return Finding(
        kind=kind,
        severity=severity,
        message=translate(f"guard.{kind}", lang, **values),
        evidence=evidence,
        path=path,
        line=line,
        feedback=translate(f"guard.{kind}.feedback", FEEDBACK_LANGUAGE, **values),
        not_applied=not_applied,
    )


def shorten(text: str, limit: int = MAX_EVIDENCE_CHARS) -> str:
    """Return `text` stripped, cut to `limit` characters with an ellipsis when longer."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
