"""Provide the Finding model that every check of a model's answer yields."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class Severity(StrEnum):
    """Whether a finding stops the edit (block) or needs the user's explicit approval (warn)."""

    BLOCK = "block"
    WARN = "warn"


class Finding(BaseModel):
    """One thing wrong with an answer, with its evidence and feedback for a retry."""

    kind: str
    severity: Severity
    message: str
    evidence: str = ""
    path: str | None = None
    line: int | None = None
    feedback: str = ""
    not_applied: bool = Field(
        default=False,
        description=(
            "True when the finding is about a block shown as not applied, which is never written; "
            "such a finding does not stop the task's own edit, whatever its severity."
        ),
    )


def blocks_write(findings: list[Finding]) -> bool:
    """Return True when a finding stops the task's own edit: a block finding about the proposed file."""
    return any(finding.severity == Severity.BLOCK and not finding.not_applied for finding in findings)
