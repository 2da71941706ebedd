"""Provide the Spec model: what a free-form Markdown spec says, in fields a planner can use."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class Requirement(BaseModel):
    """A numbered requirement such as FUNC-1."""

    id: str
    text: str


class Section(BaseModel):
    """A top-level section of the spec as written, for display."""

    title: str
    body: str


class Architecture(BaseModel):
    """Facts about the product being built, from the spec's architecture section."""

    name: str | None = None
    package: str | None = None
    save_location: str | None = Field(default=None, description="Where the spec says the project lives, as written (may start with ~).")
    language: str | None = None
    min_sdk: str | None = None
    build_language: str | None = None
    platform: str | None = Field(default=None, description="The kind of product, e.g. 'Android app'.")
    extra: dict[str, str] = Field(default_factory=dict, description="Other `Key: value` facts, keyed as written.")


class Spec(BaseModel):
    """A parsed spec."""

    path: Path
    text: str
    objective: str = ""
    requirements: list[Requirement] = Field(default_factory=list)
    prohibitions: list[str] = Field(default_factory=list, description="What the user cannot do.")
    mvp_text: str = ""
    mvp_ids: list[str] = Field(default_factory=list, description="Requirement ids in the MVP scope.")
    architecture: Architecture = Field(default_factory=Architecture)
    constraints: list[str] = Field(default_factory=list)
    source_roots: list[str] = Field(default_factory=list, description="Source roots as written in the spec.")
    test_roots: list[str] = Field(default_factory=list, description="Test roots as written in the spec.")
    sections: list[Section] = Field(default_factory=list)
