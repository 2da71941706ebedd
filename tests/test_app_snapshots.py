"""SVG snapshots of the workbench: streaming and review in English, review in Japanese, and a narrow terminal."""

from __future__ import annotations

from test_app import BLOCKING_FINDING, FakeSession, build_app, make_tasks, wait_until

from sddtui.app.widgets.task_view import TaskView
from sddtui.guards.model import Finding, Severity
from sddtui.tasks.model import Plan

UI_TEXT_FINDING = Finding(
    kind="ui_text",
    severity=Severity.WARN,
    message="a string literal the task did not ask for was changed",
    evidence='- "Save"\n+ "Save habit"',
    path="app/src/main/java/com/example/habittracker/Habit.kt",
    line=3,
)


def streaming_session() -> FakeSession:
    """Return a session whose stream stays open until stopped, with reasoning and answer text."""
    return FakeSession(
        plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()),
        reasoning=["The task wants a data class. ", "An id and a name are enough."],
        wait_for_stop=True,
    )


def review_session(findings: list[Finding]) -> FakeSession:
    """Return a session whose first task ends in a proposal with `findings`."""
    return FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()), findings=findings)


def _answer_text(app) -> str:
    """Return the answer shown so far, or "" before the task view is mounted."""
    views = app.screen.query(TaskView)
    return views.first().answer_text if views else ""


async def _until_streaming(pilot) -> None:
    await wait_until(pilot, lambda: "data class Habit" in _answer_text(pilot.app))


async def _until_review(pilot) -> None:
    await wait_until(pilot, lambda: pilot.app.workbench.proposal is not None and not pilot.app.workbench.streaming)


def test_streaming_state(snap_compare):
    app = build_app(streaming_session())
    assert snap_compare(app, terminal_size=(120, 40), run_before=_until_streaming)


def test_review_state(snap_compare):
    app = build_app(review_session([UI_TEXT_FINDING]))
    assert snap_compare(app, terminal_size=(120, 40), run_before=_until_review)


def test_review_blocked_japanese(snap_compare):
    app = build_app(review_session([BLOCKING_FINDING]), lang="ja")
    assert snap_compare(app, terminal_size=(120, 40), run_before=_until_review)


def test_review_state_narrow(snap_compare):
    app = build_app(review_session([UI_TEXT_FINDING]))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_until_review)
