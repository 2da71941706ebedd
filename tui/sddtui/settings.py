"""Provide sddtui's settings: a TOML file, then environment variables, then command-line flags."""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sddtui.errors import SddtuiError
from sddtui.i18n import translate

ENVIRONMENT_NAMES = {
    "base_url": ("SDDTUI_BASE_URL", "OPENAI_BASE_URL"),
    "api_key": ("SDDTUI_API_KEY", "OPENAI_API_KEY"),
    "model": ("SDDTUI_MODEL",),
    "lang": ("SDDTUI_LANG",),
    "theme": ("SDDTUI_THEME",),
    "n_ctx": ("SDDTUI_N_CTX",),
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

    lang: Literal["en", "ja"] | None = None
    """Language of screens and messages: en or ja. None follows the locale."""

    theme: str | None = None
    """Workbench theme name from themes/ (dark or light)."""

    n_ctx: int | None = Field(default=None, ge=512, le=1_048_576)
    """Context length in tokens. The embedded engine starts with it, or with 4096 when it is unset.
    For another server it is the context that server was loaded with, used when the server does not report one."""

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


@dataclass(frozen=True)
class SettingSource:
    """The source of one setting's value: the config file, an environment variable or a flag, named as the user wrote it."""

    kind: Literal["file", "environment", "flag"]
    name: str
    """The config key, the environment variable or the flag, e.g. "--n-ctx"."""


class SettingsInvalid(SddtuiError):
    """An error for invalid settings, naming each one as the user set it, in the chosen language."""

    def __init__(self, error: ValidationError, sources: Mapping[str, SettingSource], path: Path) -> None:
        super().__init__("settings_invalid", count=error.error_count(), problems="")
        self.problems = [dict(problem) for problem in error.errors()]
        self.sources = dict(sources)
        self.path = path

    def render(self, lang: str = "en") -> str:
        """Return one sentence per invalid setting in `lang`, under a heading when there are several."""
        lines = [self._render_problem(problem, lang) for problem in self.problems]
        if len(lines) == 1:
            return lines[0]
        listed = "\n".join(f"  - {line}" for line in lines)
        return translate("settings_invalid", lang, count=len(lines), problems=listed)

    def _render_problem(self, problem: Mapping[str, Any], lang: str) -> str:
        """Return the sentence for one pydantic error: the setting, its value and what it accepts."""
        location = problem["loc"]
        field_name = str(location[0]) if location else ""
        source = self.sources.get(field_name, SettingSource("file", field_name))
        if problem["type"] == "extra_forbidden":
            return _unknown_setting(".".join(str(item) for item in location), self.path, lang)

        params = {"value": _show_value(problem.get("input")), "allowed": _allowed_values(field_name, lang)}
        if source.kind == "flag":
            return translate("settings_invalid.flag", lang, flag=source.name, **params)
        if source.kind == "environment":
            return translate("settings_invalid.environment", lang, name=source.name, **params)
        return translate("settings_invalid.file", lang, name=source.name, path=self.path, **params)


def load_settings(
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the config file, the environment and the flags (later wins) into validated settings.

    `flags` is keyed by field name, and a None value means the flag was not given. `flag_names`
    maps a field name to the flag as the user types it (e.g. "--n-ctx"), so an error can name it;
    a field without an entry is named "--" plus the field name with dashes.
    """
    environ = os.environ if environ is None else environ
    path = config_path() if path is None else path
    flag_names = flag_names or {}
    values: dict[str, Any] = {}
    sources: dict[str, SettingSource] = {}

    for key, value in _read_config(path).items():
        values[key] = value
        sources[key] = SettingSource("file", key)

    for field_name, names in ENVIRONMENT_NAMES.items():
        for name in names:
            if environ.get(name):
                values[field_name] = environ[name]
                sources[field_name] = SettingSource("environment", name)
                break

    for field_name, value in flags.items():
        if value is None:
            continue
        values[field_name] = value
        sources[field_name] = SettingSource("flag", flag_names.get(field_name) or "--" + field_name.replace("_", "-"))

    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise SettingsInvalid(error, sources, path) from error


def _read_config(path: Path) -> dict[str, Any]:
    """Return the settings table of config.toml, {} when there is no file, or raise SddtuiError."""
    if not path.exists():
        return {}
    if path.is_dir():
        raise SddtuiError("config_is_directory", path=str(path))
    if not path.is_file():
        raise SddtuiError("config_not_regular_file", path=str(path))
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise SddtuiError("config_invalid", path=str(path), reason=reason) from error


def _unknown_setting(name: str, path: Path, lang: str) -> str:
    """Return the sentence for a config key that is no setting, with the closest known name if any."""
    known = sorted(Settings.model_fields)
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return translate("settings_unknown_close", lang, name=name, path=path, close=close[0], known=", ".join(known))
    return translate("settings_unknown", lang, name=name, path=path, known=", ".join(known))


def _show_value(value: object) -> str:
    """Return a value as the user typed it: text in quotes, numbers and booleans as they are."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _allowed_values(field_name: str, lang: str) -> str:
    """Return a short phrase in `lang` for the values a setting accepts, e.g. "a whole number from 512 to 131072"."""
    field = Settings.model_fields.get(field_name)
    if field is None:
        return translate("settings_allowed.valid", lang)
    kinds = {argument for argument in typing.get_args(field.annotation) if argument is not type(None)} or {field.annotation}

    if bool in kinds:
        return translate("settings_allowed.boolean", lang)
    for kind in kinds:
        if typing.get_origin(kind) is Literal:
            return translate("settings_allowed.choice", lang, choices=", ".join(str(value) for value in typing.get_args(kind)))
    if int in kinds or float in kinds:
        number = translate("settings_allowed.integer" if int in kinds else "settings_allowed.number", lang)
        return _bounded(number, field.metadata, lang)
    if str in kinds:
        return translate("settings_allowed.text", lang)
    # NOTE: a field of another type gets no description of its values; none exists today.
    return translate("settings_allowed.valid", lang)


def _bounded(number: str, metadata: list[Any], lang: str) -> str:
    """Return `number` ("a whole number") with the bounds from a field's ge, gt and le constraints."""
    low = next((item.ge for item in metadata if isinstance(item, annotated_types.Ge)), None)
    above = next((item.gt for item in metadata if isinstance(item, annotated_types.Gt)), None)
    high = next((item.le for item in metadata if isinstance(item, annotated_types.Le)), None)
    if low is not None and high is not None:
        return translate("settings_allowed.range", lang, number=number, low=low, high=high)
    if low is not None:
        return translate("settings_allowed.at_least", lang, number=number, low=low)
    if above is not None:
        return translate("settings_allowed.above", lang, number=number, low=above)
    if high is not None:
        return translate("settings_allowed.at_most", lang, number=number, high=high)
    return translate("settings_allowed.plain", lang, number=number)
