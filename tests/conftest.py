"""Shared fixtures: the repository root and the failure cases collected from users of local servers."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# CI clones the repository with the shared folder beside it; so does every developer checkout.
SHARED_CASES = REPO_ROOT.parent / "shared" / "cases"


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def shared_cases() -> Path:
    if not SHARED_CASES.is_dir():
        pytest.fail(f"the failure cases were not found at {SHARED_CASES}; clone the repository beside shared/")
    return SHARED_CASES


@pytest.fixture
def habit_spec():
    """Return the example spec, parsed."""
    from sddtui.spec.parse import load_spec

    return load_spec(REPO_ROOT / "specs" / "habit.md")


@pytest.fixture
def project(habit_spec, tmp_path):
    """Return a project in a fresh temporary folder for the example spec."""
    from sddtui.project import resolve_project

    return resolve_project(habit_spec, tmp_path, tmp_path)
