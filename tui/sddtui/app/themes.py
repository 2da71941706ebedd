"""Load user-facing theme files (TOML), validate them with pydantic and turn them into Textual themes."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from platformdirs import user_config_path
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from textual.color import Color, ColorParseError
from textual.theme import Theme

from sddtui.errors import SddtuiError

DEFAULT_THEME = "sddtui-dark"

# Fallbacks for the variables below, used when a theme that does not set them is active
# (e.g. one of Textual's own themes picked from the command palette).
MEANING_VARIABLE_DEFAULTS: dict[str, str] = {
    "diff-added": "#5fbf7f",
    "diff-removed": "#e06c75",
    "diff-hunk": "#6fb3e0",
    "gauge-safe": "#5fbf7f",
    "gauge-warning": "#e0b050",
    "gauge-danger": "#e06c75",
}


def _check_colour(value: str | None) -> str | None:
    """Raise ValueError when `value` is not a colour Textual can parse."""
    if value is None:
        return value
    try:
        Color.parse(value)
    except ColorParseError as error:
        raise ValueError(f"{value!r} is not a colour ({error})") from None
    return value


class MeaningColours(BaseModel):
    """Colours that carry meaning; every theme must set each one."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    diff_added: str = Field(alias="diff-added", description="Lines a diff adds.")
    diff_removed: str = Field(alias="diff-removed", description="Lines a diff removes.")
    diff_hunk: str = Field(alias="diff-hunk", description="The @@ header of each hunk.")
    gauge_safe: str = Field(alias="gauge-safe", description="A gauge with plenty of room left.")
    gauge_warning: str = Field(alias="gauge-warning", description="A gauge getting close to its limit.")
    gauge_danger: str = Field(alias="gauge-danger", description="A gauge at or over its limit.")

    @field_validator("*")
    @classmethod
    def _colour(cls, value: str) -> str | None:
        return _check_colour(value)


class ThemeFile(BaseModel):
    """One theme file: Textual's base colours plus the colours that carry meaning."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="The name `--theme` and the command palette use.")
    dark: bool = Field(default=True, description="True for a dark background.")
    primary: str = Field(description="The main accent colour (borders, highlights).")
    secondary: str | None = Field(default=None, description="A second accent colour.")
    accent: str | None = Field(default=None, description="A colour for contrast with primary.")
    foreground: str | None = Field(default=None, description="Default text colour.")
    background: str | None = Field(default=None, description="The screen background.")
    surface: str | None = Field(default=None, description="The background of widgets.")
    panel: str | None = Field(default=None, description="The background of panels and headers.")
    success: str | None = Field(default=None, description="Success messages.")
    warning: str | None = Field(default=None, description="Warnings (e.g. warn findings).")
    error: str | None = Field(default=None, description="Errors (e.g. block findings).")
    variables: MeaningColours = Field(description="Colours that carry meaning: diff and gauge levels.")

    @field_validator("primary", "secondary", "accent", "foreground", "background", "surface", "panel", "success", "warning", "error")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        return _check_colour(value)

    def to_theme(self) -> Theme:
        """Build the Textual theme this file describes."""
        return Theme(
            name=self.name,
            primary=self.primary,
            secondary=self.secondary,
            accent=self.accent,
            foreground=self.foreground,
            background=self.background,
            surface=self.surface,
            panel=self.panel,
            success=self.success,
            warning=self.warning,
            error=self.error,
            dark=self.dark,
            variables=self.variables.model_dump(by_alias=True),
        )


def bundled_theme_directory() -> Path:
    """Return the folder of the themes sddtui ships (the repository's themes/ links to it)."""
    return Path(str(resources.files("sddtui") / "themes"))


def user_theme_directory() -> Path:
    """Return the folder where a user may put theme files of their own."""
    return user_config_path("sddtui") / "themes"


def load_theme_file(path: Path) -> Theme:
    """Read and validate one theme file; raise SddtuiError naming the file when it is invalid."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return ThemeFile.model_validate(data).to_theme()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SddtuiError("app.theme.invalid", path=str(path), reason=str(error)) from error
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise SddtuiError("app.theme.invalid", path=str(path), reason=reasons) from error


def load_themes(directories: list[Path]) -> list[Theme]:
    """Load every `*.toml` theme in `directories`, in order; a later file of the same name wins."""
    themes: dict[str, Theme] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            theme = load_theme_file(path)
            themes[theme.name] = theme
    return list(themes.values())
