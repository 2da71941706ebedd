"""Tests of the project directory choice and the mapping of spec roots into it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sddtui.errors import SddtuiError
from sddtui.project import Project, map_root, normalize_relative_path, resolve_project
from sddtui.spec.model import Architecture, Spec
from sddtui.spec.parse import load_spec

REPO = Path(__file__).resolve().parent.parent
HABIT_SPEC = REPO / "specs" / "habit.md"
MAIN = "app/src/main/java/com/example/habittracker"
UNIT = "app/src/test/java/com/example/habittracker"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """Point ~ at a temporary home folder."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def make_spec(tmp_path: Path, source_roots, test_roots=(), save_location=None) -> Spec:
    """Return a Spec with the given roots and save location."""
    return Spec(
        path=tmp_path / "spec.md",
        text="",
        architecture=Architecture(save_location=save_location),
        source_roots=list(source_roots),
        test_roots=list(test_roots),
    )


def test_habit_save_location(home, tmp_path):
    project = resolve_project(load_spec(HABIT_SPEC), None, tmp_path)
    assert project.origin == "save_location"
    assert project.directory == home / "code" / "com.example.habittracker"
    assert project.source_roots == [MAIN]
    assert project.test_roots == [UNIT, MAIN]
    assert project.allowed_roots == [MAIN, UNIT]
    assert project.shared_roots == [MAIN]


def test_habit_with_flag(home, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    project = resolve_project(load_spec(HABIT_SPEC), target, tmp_path)
    assert project.origin == "flag"
    assert project.directory == target
    assert project.allowed_roots == [MAIN, UNIT]


def test_relative_flag_uses_cwd(home, tmp_path):
    (tmp_path / "work").mkdir()
    project = resolve_project(load_spec(HABIT_SPEC), Path("work"), tmp_path)
    assert project.directory == tmp_path / "work"


def test_cwd_without_save_location(tmp_path):
    spec = make_spec(tmp_path, ["./src/app/"], ["tests\\unit"])
    project = resolve_project(spec, None, tmp_path)
    assert project.origin == "cwd"
    assert project.directory == tmp_path.resolve()
    assert project.source_roots == ["src/app"]
    assert project.test_roots == ["tests/unit"]
    assert project.shared_roots == []


def test_relative_save_location_uses_spec_folder(tmp_path):
    spec = make_spec(tmp_path, ["src"], save_location="project")
    project = resolve_project(spec, None, Path("/"))
    assert project.directory == tmp_path / "project"


def test_save_location_that_is_a_file(tmp_path):
    (tmp_path / "project").write_text("x")
    spec = make_spec(tmp_path, ["src"], save_location=str(tmp_path / "project"))
    with pytest.raises(SddtuiError) as caught:
        resolve_project(spec, None, tmp_path)
    assert caught.value.key == "project.save_location_not_directory"


def test_flag_missing(tmp_path):
    spec = make_spec(tmp_path, ["src"])
    with pytest.raises(SddtuiError) as caught:
        resolve_project(spec, tmp_path / "missing", tmp_path)
    assert caught.value.key == "project.flag_missing"
    assert str(tmp_path / "missing") in caught.value.render("ja")


def test_flag_is_a_file(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    spec = make_spec(tmp_path, ["src"])
    with pytest.raises(SddtuiError) as caught:
        resolve_project(spec, tmp_path / "file.txt", tmp_path)
    assert caught.value.key == "project.flag_not_directory"


@pytest.mark.parametrize(
    ("root", "save_location", "expected"),
    [
        ("~/code/app/src/main", "~/code/app", "src/main"),
        ("~/code/app/src/main/", "~/code/app/", "src/main"),
        ("/abs/app/lib", "/abs/app", "lib"),
        ("/abs/app", "/abs/app", "."),
        ("src/main", None, "src/main"),
        ("./src//main", "~/code/app", "src/main"),
        ("src\\main\\java", None, "src/main/java"),
        (".", None, "."),
    ],
)
def test_map_root(home, root, save_location, expected):
    assert map_root(root, save_location) == expected


@pytest.mark.parametrize(
    ("root", "save_location", "key"),
    [
        ("~/other/app/src", "~/code/app", "project.root_outside_save_location"),
        ("/abs/app-two/src", "/abs/app", "project.root_outside_save_location"),
        ("/abs/app/src", None, "project.absolute_root_without_save_location"),
        ("../shared/src", None, "project.root_invalid"),
        ("src/../../x", "~/code/app", "project.root_invalid"),
    ],
)
def test_map_root_errors(home, root, save_location, key):
    with pytest.raises(SddtuiError) as caught:
        map_root(root, save_location)
    assert caught.value.key == key
    assert root in str(caught.value)
    assert root in caught.value.render("ja")


def test_resolve_rejects_root_outside_save_location(home, tmp_path):
    spec = make_spec(tmp_path, ["~/other/src"], save_location="~/code/app")
    with pytest.raises(SddtuiError) as caught:
        resolve_project(spec, None, tmp_path)
    assert caught.value.key == "project.root_outside_save_location"
    assert "~/code/app" in str(caught.value)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (f"{MAIN}/Habit.kt", True),
        (f"{MAIN}/data/Habit.kt", True),
        (f"./{MAIN}/Habit.kt", True),
        (f"{UNIT}\\HabitTest.kt", True),
        (MAIN, False),
        (f"{MAIN}/../Other.kt", False),
        (f"/{MAIN}/Habit.kt", False),
        (f"~/{MAIN}/Habit.kt", False),
        ("app/src/main/AndroidManifest.xml", False),
        (f"{MAIN}x/Habit.kt", False),
        ("", False),
    ],
)
def test_is_allowed(path, allowed):
    project = Project(directory=Path("/p"), allowed_roots=[MAIN, UNIT], source_roots=[MAIN], test_roots=[UNIT], origin="cwd")
    assert project.is_allowed(path) is allowed


def test_whole_project_root():
    project = Project(directory=Path("/p"), allowed_roots=["."], origin="cwd")
    assert project.is_allowed("main.py")
    assert not project.is_allowed("../main.py")


def test_root_of_prefers_longest():
    project = Project(directory=Path("/p"), allowed_roots=["src", "src/tests"], origin="cwd")
    assert project.root_of("src/tests/test_a.py") == "src/tests"
    assert project.root_of("src/a.py") == "src"
    assert project.root_of("lib/a.py") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a/b.kt", "a/b.kt"), (" ./a//b.kt ", "a/b.kt"), ("a\\b.kt", "a/b.kt"), ("a/./b.kt", "a/b.kt")],
)
def test_normalize_relative_path(text, expected):
    assert normalize_relative_path(text) == expected


@pytest.mark.parametrize("text", ["", "/a/b.kt", "~/a.kt", "C:\\a\\b.kt", "a/../b.kt", "..", "./"])
def test_normalize_relative_path_rejects(text):
    with pytest.raises(ValueError):
        normalize_relative_path(text)
