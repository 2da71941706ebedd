"""Provide the Finding model that every check of a model's answer yields."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


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
