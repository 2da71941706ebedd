"""Choose the project directory and map the spec's source and test roots into it."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, Field

from sddtui.errors import SddtuiError
from sddtui.spec.model import Spec

ProjectOrigin = Literal["flag", "save_location", "cwd"]


class Project(BaseModel):
    """The directory files are written to and the folders inside it that tasks may touch."""

    directory: Path = Field(description="The project directory, absolute.")
    allowed_roots: list[str] = Field(
        default_factory=list,
        description="Source and test roots without duplicates, POSIX and relative to `directory`; '.' is the whole project.",
    )
    source_roots: list[str] = Field(default_factory=list, description="Source roots relative to `directory`.")
    test_roots: list[str] = Field(default_factory=list, description="Test roots relative to `directory`.")
    shared_roots: list[str] = Field(
        default_factory=list, description="Roots the spec names both as a source root and as a test root."
    )
    origin: ProjectOrigin = Field(description="How the directory was chosen: --project, the spec's save location, or the current directory.")

    def is_allowed(self, rel_path: str) -> bool:
        """Return True when `rel_path` is a file path strictly inside one of the allowed roots."""
        try:
            path = normalize_relative_path(rel_path)
        except ValueError:
            return False
        return any(_is_inside(path, root) for root in self.allowed_roots)

    def root_of(self, rel_path: str) -> str | None:
        """Return the longest allowed root that contains `rel_path`, or None."""
        try:
            path = normalize_relative_path(rel_path)
        except ValueError:
            return None
        containing = [root for root in self.allowed_roots if _is_inside(path, root)]
        return max(containing, key=len) if containing else None


def normalize_relative_path(text: str) -> str:
    """Return `text` as a clean POSIX path relative to the project, raising ValueError when it is not one.

    Backslashes become slashes, and "./" prefixes and repeated slashes are dropped. An empty path,
    an absolute path (also "~/..." and "C:/...") and any ".." component are rejected.
    """
    path = text.strip().replace("\\", "/")
    if not path:
        raise ValueError("the path is empty")
    if path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:/", path):
        raise ValueError(f"{text!r} is an absolute path")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{text!r} contains '..'")
    if not parts:
        raise ValueError(f"{text!r} names the project directory itself")
    return "/".join(parts)


def _is_inside(path: str, root: str) -> bool:
    """Return True when `path` lies strictly below `root`. Both are normalised, and root '.' is the project."""
    if root == ".":
        return True
    return path.startswith(root + "/")


def _expand(text: str) -> str:
    """Return `text` with ~ expanded and separators in POSIX form."""
    return os.path.expanduser(text.strip()).replace("\\", "/")


def _is_absolute(text: str) -> bool:
    """Return True for a POSIX or Windows absolute path."""
    return text.startswith("/") or bool(re.match(r"^[A-Za-z]:/", text))


def map_root(root: str, save_location: str | None) -> str:
    """Return a spec root as a path relative to the project, raising SddtuiError when it cannot be one.

    A root under the save location keeps only the part below it, and a relative root stays as it is.
    """
    expanded = _expand(root)
    if not _is_absolute(expanded):
        if set(expanded.split("/")) <= {"", "."}:
            return "."
        try:
            return normalize_relative_path(expanded)
        except ValueError as error:
            raise SddtuiError("project.root_invalid", root=root, reason=str(error)) from error

    if not save_location:
        raise SddtuiError("project.absolute_root_without_save_location", root=root)
    base = PurePosixPath(os.path.normpath(_expand(save_location)))
    target = PurePosixPath(os.path.normpath(expanded))
    try:
        relative = target.relative_to(base)
    except ValueError as error:
        raise SddtuiError("project.root_outside_save_location", root=root, save_location=save_location) from error
    return "." if str(relative) == "." else relative.as_posix()


def resolve_project(spec: Spec, flag: Path | None, cwd: Path) -> Project:
    """Choose the project directory (--project, else the spec's save location, else `cwd`) and map the roots."""
    save_location = spec.architecture.save_location
    if flag is not None:
        directory = _absolute(flag.expanduser(), cwd)
        if not directory.is_dir():
            key = "project.flag_not_directory" if directory.exists() else "project.flag_missing"
            raise SddtuiError(key, path=directory)
        origin: ProjectOrigin = "flag"
    elif save_location:
        # NOTE: a relative save location is read relative to the spec's folder, not the current directory.
        directory = _absolute(Path(_expand(save_location)), spec.path.resolve().parent)
        if directory.exists() and not directory.is_dir():
            raise SddtuiError("project.save_location_not_directory", path=directory)
        origin = "save_location"
    else:
        directory = cwd.resolve()
        origin = "cwd"

    source_roots = _unique([map_root(root, save_location) for root in spec.source_roots])
    test_roots = _unique([map_root(root, save_location) for root in spec.test_roots])
    return Project(
        directory=directory,
        allowed_roots=_unique(source_roots + test_roots),
        source_roots=source_roots,
        test_roots=test_roots,
        shared_roots=[root for root in test_roots if root in source_roots],
        origin=origin,
    )


def _absolute(path: Path, base: Path) -> Path:
    """Return `path` made absolute against `base`, with . and .. resolved."""
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def _unique(values: list[str]) -> list[str]:
    """Return `values` without repeats, in first-seen order."""
    return list(dict.fromkeys(values))
