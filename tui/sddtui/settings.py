"""Provide sddtui's settings: a TOML file, then environment variables, then command-line flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sddtui.errors import SddtuiError

ENVIRONMENT_NAMES = {
    "base_url": ("SDDTUI_BASE_URL", "OPENAI_BASE_URL"),
    "api_key": ("SDDTUI_API_KEY", "OPENAI_API_KEY"),
    "model": ("SDDTUI_MODEL",),
    "lang": ("SDDTUI_LANG",),
    "theme": ("SDDTUI_THEME",),
    "embedded_n_ctx": ("SDDTUI_EMBEDDED_N_CTX",),
    "max_answer_tokens": ("SDDTUI_MAX_ANSWER_TOKENS",),
}


class Settings(BaseModel):
    """Every setting sddtui reads; each field can be set in config.toml, by environment or by flag."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    base_url: str | None = None
    """Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:1234/v1. None probes the usual local ports."""

    api_key: str | None = None
    """Bearer token sent to the server, for servers that ask for one."""

    model: str | None = None
    """Model id to request; None takes the first model the server lists."""

    embedded: bool = False
    """Skip probing and always start the embedded llama-cpp-python engine."""

    lang: str | None = Field(default=None, pattern="^(en|ja)$")
    """Language of screens and messages: en or ja. None follows the locale."""

    theme: str | None = None
    """Workbench theme name from themes/ (dark or light)."""

    embedded_n_ctx: int = Field(default=4096, ge=512, le=131072)
    """Context length (n_ctx, tokens) the embedded engine is started with."""

    max_answer_tokens: int = Field(default=2048, ge=64)
    """Upper bound on max_tokens for one answer, before the context limit lowers it."""

    reasoning_budget: int | None = Field(default=4096, ge=1)
    """Reasoning tokens allowed in one answer before the stream is stopped; None sets no limit."""

    plan_attempts: int = Field(default=3, ge=1, le=10)
    """How many times the model is asked for a plan before planning fails."""

    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    """Sampling temperature sent with every request."""

    request_timeout: float = Field(default=300.0, gt=0)
    """Seconds to wait for the next bytes of an answer before the request counts as timed out."""


def config_path() -> Path:
    """Return the platform's path of config.toml for sddtui."""
    return platformdirs.user_config_path("sddtui") / "config.toml"


def load_settings(
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Settings:
    """Merge the config file, the environment and the flags (later wins) into validated settings."""
    environ = os.environ if environ is None else environ
    path = config_path() if path is None else path
    values: dict[str, Any] = {}

    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise SddtuiError("config_invalid", path=str(path), reason=str(error)) from error

    for field_name, names in ENVIRONMENT_NAMES.items():
        for name in names:
            if environ.get(name):
                values[field_name] = environ[name]
                break

    values.update({name: value for name, value in flags.items() if value is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise SddtuiError("settings_invalid", path=str(path), reason=_describe(error)) from error


def _describe(error: ValidationError) -> str:
    """Describe each invalid setting as `name: problem (value)`."""
    parts = []
    for problem in error.errors():
        name = ".".join(str(item) for item in problem["loc"])
        parts.append(f"{name}: {problem['msg']} ({problem.get('input')!r})")
    return "; ".join(parts)
