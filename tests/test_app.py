"""Pilot tests of the workbench: panes, streaming, review keys, errors and Japanese labels."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.widgets import Footer, Log

from sddtui.app.app import SddtuiApp, create_app
from sddtui.app.batching import relay_events
from sddtui.app.messages import SessionEventReceived, StreamTextBatched, UsageBatched
from sddtui.app.screens.dialogs import ErrorScreen, NoteScreen
from sddtui.app.text import clean_model_text
from sddtui.app.themes import load_theme_file, load_themes
from sddtui.app.widgets.gauge import GaugeBar, GaugePane
from sddtui.app.widgets.review import DiffView, FindingsView
from sddtui.app.widgets.spec_tree import SpecTree
from sddtui.app.widgets.task_view import TaskView
from sddtui.edits.model import Proposal
from sddtui.errors import SddtuiError
from sddtui.events import (
    ErrorOccurred,
    FindingRaised,
    PlanReady,
    ProposalReady,
    TaskApplied,
    TaskRejected,
    TaskStarted,
    TextReceived,
    UsageUpdated,
)
from sddtui.guards.model import Finding, Severity
from sddtui.i18n import translate
from sddtui.spec.parse import parse_spec
from sddtui.tasks.model import Plan, Task, TaskAction, TaskState

REPO_ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3

HABIT_DIFF = """--- a/app/src/main/java/com/example/habittracker/Habit.kt
+++ b/app/src/main/java/com/example/habittracker/Habit.kt
@@ -0,0 +1,4 @@
+package com.example.habittracker
+
+data class Habit(val id: Long, val name: String)
-// placeholder
"""


def habit_spec():
    """Parse the project's example spec with the real parser."""
    path = REPO_ROOT / "specs" / "habit.md"
    return parse_spec(path.read_text(encoding="utf-8"), path)


def make_tasks() -> list[Task]:
    """Return two tasks for the habit spec."""
    return [
        Task(
            id="T1",
            path="app/src/main/java/com/example/habittracker/Habit.kt",
            action=TaskAction.CREATE,
            requirement_ids=["FUNC-1"],
            instruction="Create the Habit data class with an id and a name.",
        ),
        Task(
            id="T2",
            path="app/src/main/java/com/example/habittracker/HabitRepository.kt",
            action=TaskAction.CREATE,
            requirement_ids=["FUNC-1"],
            instruction="Create a repository that creates, updates and deletes habits.",
        ),
    ]


def make_proposal(task: Task, findings: list[Finding] | None = None) -> Proposal:
    """Return a proposal for `task` with the habit diff."""
    return Proposal(
        task_id=task.id,
        path=task.path,
        new_content="package com.example.habittracker\n",
        old_content=None,
        old_sha256=None,
        diff=HABIT_DIFF,
        findings=findings or [],
    )


BLOCKING_FINDING = Finding(
    kind="path",
    severity=Severity.BLOCK,
    message="the answer writes /etc/passwd, outside the allowed roots",
    evidence="```text /etc/passwd\nroot:x:0:0",
    path="/etc/passwd",
    line=3,
)


@dataclass
class FakeSession:
    """A session that yields canned events and records what the workbench asked of it."""

    plan: Plan
    answer: list[str] = field(default_factory=lambda: ["Here is ", "the file:\n", "```kotlin\ndata class Habit\n```\n"])
    reasoning: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    wait_for_stop: bool = False
    calls: list[tuple] = field(default_factory=list)
    stop_calls: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self.spec = None
        self.project = SimpleNamespace(directory=Path("/home/dev/code/habit"), allowed_roots=["app/src"], origin="flag")
        self.server = SimpleNamespace(
            label="embedded", base_url="http://127.0.0.1:8765/v1", model="SmolLM2", n_ctx=4096, kv_bytes_per_token=46080
        )
        self._stopped = asyncio.Event()

    async def make_plan(self):
        self.calls.append(("make_plan",))
        yield PlanReady(plan=self.plan)

    async def run_task(self, task: Task, note: str = ""):
        self.calls.append(("run_task", task.id, note))
        task.state = TaskState.RUNNING
        yield TaskStarted(task=task, prompt_tokens=900, prompt_tokens_exact=False, max_tokens=1024, n_ctx=4096)
        for piece in self.reasoning:
            yield TextReceived(text=piece, reasoning=True)
        for piece in self.answer:
            yield TextReceived(text=piece)
        yield UsageUpdated(
            prompt_tokens=900, completion_tokens=120, reasoning_tokens=20, exact=True, n_ctx=4096, tokens_per_second=31.5
        )
        if self.wait_for_stop:
            await self._stopped.wait()
        for finding in self.findings:
            yield FindingRaised(task=task, finding=finding)
        task.state = TaskState.PROPOSED
        yield ProposalReady(task=task, proposal=make_proposal(task, self.findings))

    def stop_stream(self) -> None:
        self.stop_calls += 1
        self._stopped.set()

    async def approve(self, task: Task, proposal: Proposal):
        self.calls.append(("approve", task.id))
        task.state = TaskState.APPLIED
        return TaskApplied(task=task, path=proposal.path, bytes_written=len(proposal.new_content))

    async def reject(self, task: Task, proposal: Proposal | None, reason: str):
        self.calls.append(("reject", task.id, reason))
        task.state = TaskState.REJECTED
        return TaskRejected(task=task, reason=reason)

    def next_pending(self) -> Task | None:
        return next((task for task in self.plan.tasks if task.state == TaskState.PENDING), None)

    async def aclose(self) -> None:
        self.closed = True


def fixed_memory():
    """Return a constant memory reading, so screens do not depend on this machine."""
    return SimpleNamespace(total_bytes=24 * GIB, available_bytes=18 * GIB)


def build_app(session: FakeSession | None = None, lang: str = "en", connect=None, theme: str | None = None) -> SddtuiApp:
    """Build the workbench over a fake session, with the repository's themes."""
    session = session or FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()))

    async def connect_fake():
        return session

    return create_app(
        habit_spec(),
        session.project,
        connect or connect_fake,
        lang,
        theme,
        read_memory=fixed_memory,
        theme_directories=[REPO_ROOT / "themes"],
    )


async def wait_until(pilot, predicate, rounds: int = 200) -> None:
    """Let the app process messages until `predicate()` holds; fail after `rounds` pauses."""
    for _ in range(rounds):
        if predicate():
            return
        await pilot.pause()
    raise AssertionError("the condition was not reached")


def proposed(app: SddtuiApp) -> bool:
    return app.workbench.proposal is not None


# The screen


async def test_three_panes_present():
    app = build_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        assert app.screen.query_one("#spec-tree", SpecTree).region.width > 0
        assert app.screen.query_one("#task-view", TaskView).region.width > 0
        assert app.screen.query_one("#gauge", GaugePane).region.width > 0
        assert app.screen.query_one(Footer)


async def test_tree_shows_requirement_and_tasks():
    app = build_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        tree = app.screen.query_one(SpecTree)
        labels = _all_labels(tree)
        assert any(label.startswith("FUNC-1 ") for label in labels)
        assert any("User cannot" == label for label in labels)
        assert "T1" in tree.task_label_text("T1")
        assert "proposed" in tree.task_label_text("T1")
        assert "pending" in tree.task_label_text("T2")


def _all_labels(tree: SpecTree) -> list[str]:
    """Return the plain labels of every node in the tree."""
    labels = []
    stack = [tree.root]
    while stack:
        node = stack.pop()
        labels.append(node.label.plain)
        stack.extend(node.children)
    return labels


async def test_header_shows_server_label():
    app = build_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        assert app.screen.sub_title == "embedded · SmolLM2 · n_ctx 4096"


async def test_streaming_text_appears():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()), wait_for_stop=True)
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.query_one(TaskView)
        await wait_until(pilot, lambda: "data class Habit" in view.answer_text)
        assert view.answer_text.startswith("Here is the file:")
        assert app.workbench.streaming
        assert app.screen.query_one("#spec-tree", SpecTree).task_state("T1") == TaskState.RUNNING
        session.stop_stream()


async def test_reasoning_shown_apart():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()), reasoning=["Let me think ", "about it."])
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        view = app.screen.query_one(TaskView)
        assert view.reasoning_text == "Let me think about it."
        assert "think" not in view.answer_text


async def test_markup_is_not_interpreted():
    session = FakeSession(
        plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()),
        answer=["[bold red]x[/] and \x1b[31mred\x1b[0m\x07 done\n"],
    )
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        view = app.screen.query_one(TaskView)
        assert "[bold red]x[/]" in view.answer_text
        assert "\x1b" not in view.answer_text
        assert "\x07" not in view.answer_text
        rendered = app.screen.query_one("#answer-log", Log).render_line(0).text
        assert "[bold red]x[/]" in rendered
        assert "\x1b" not in rendered


def test_clean_model_text_keeps_newline_and_tab():
    assert clean_model_text("a\tb\r\nc\x1b[2Jd\u202ee") == "a\tb\nc[2Jde"


async def test_gauge_shows_exact_usage():
    app = build_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        gauge = app.screen.query_one(GaugePane)
        assert gauge.usage.context_tokens == 1020
        assert gauge.usage.exact
        assert gauge.query_one("#context-bar", GaugeBar).level == "safe"
        numbers = str(gauge.query_one("#context-numbers").render())
        assert "1020 / 4096" in numbers
        assert "exact" in numbers
        counts = str(gauge.query_one("#token-counts").render())
        assert "31.5" in counts
        assert "44.8 MiB" in counts  # 1020 tokens × 46080 bytes
        memory = str(gauge.query_one("#memory-numbers").render())
        assert "18.0 GiB available of 24.0 GiB" in memory


def test_gauge_level_thresholds():
    from sddtui.app.widgets.gauge import level_for

    assert level_for(0.5) == "safe"
    assert level_for(0.8) == "warning"
    assert level_for(0.95) == "danger"


# Keys


async def test_approve_applies_task():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()))
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        await pilot.press("a")
        tree = app.screen.query_one(SpecTree)
        await wait_until(pilot, lambda: tree.task_state("T1") == TaskState.APPLIED)
        assert ("approve", "T1") in session.calls
        assert "applied" in tree.task_label_text("T1")


async def test_reject_rejects_task():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()))
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        await pilot.press("r")
        tree = app.screen.query_one(SpecTree)
        await wait_until(pilot, lambda: tree.task_state("T1") == TaskState.REJECTED)
        assert ("reject", "T1", "rejected in the workbench") in session.calls
        await pilot.press("a")
        await pilot.pause()
        assert ("approve", "T1") not in session.calls


async def test_retry_passes_note():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()))
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, NoteScreen))
        await pilot.press(*"use a Long id")
        await pilot.press("enter")
        await wait_until(pilot, lambda: ("run_task", "T1", "use a Long id") in session.calls)
        await wait_until(pilot, lambda: proposed(app) and not app.workbench.streaming)
        detail = str(app.screen.query_one("#task-detail").render())
        assert "use a Long id" in detail


async def test_retry_cancel_runs_nothing():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()))
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, NoteScreen))
        await pilot.press("escape")
        await pilot.pause()
        assert [call for call in session.calls if call[0] == "run_task"] == [("run_task", "T1", "")]


async def test_stop_calls_stop_stream():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()), wait_for_stop=True)
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.query_one(TaskView)
        await wait_until(pilot, lambda: "data class Habit" in view.answer_text)
        await pilot.press("s")
        assert session.stop_calls == 1
        await wait_until(pilot, lambda: proposed(app))
        assert "data class Habit" in view.answer_text


async def test_stop_without_stream_warns():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()))
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app) and not app.workbench.streaming)
        await pilot.press("s")
        assert session.stop_calls == 0


async def test_blocked_proposal_cannot_be_approved():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()), findings=[BLOCKING_FINDING])
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        await pilot.press("a")
        await pilot.pause()
        assert ("approve", "T1") not in session.calls
        assert app.screen.query_one(SpecTree).task_state("T1") == TaskState.PROPOSED
        findings = app.screen.query_one(FindingsView).findings
        assert findings == [BLOCKING_FINDING]


async def test_blocked_approve_says_why(monkeypatch):
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()), findings=[BLOCKING_FINDING])
    app = build_app(session)
    messages: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        monkeypatch.setattr(app.workbench, "notify", lambda message, **options: messages.append(message))
        await pilot.press("a")
        assert len(messages) == 1
        assert "outside the allowed roots" in messages[0]


async def test_next_runs_next_pending_task():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()))
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        await pilot.press("a")
        tree = app.screen.query_one(SpecTree)
        await wait_until(pilot, lambda: tree.task_state("T1") == TaskState.APPLIED)
        await pilot.press("n")
        await wait_until(pilot, lambda: tree.task_state("T2") == TaskState.PROPOSED)
        assert ("run_task", "T2", "") in session.calls


async def test_quit_closes_session():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()), wait_for_stop=True)
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.query_one(TaskView)
        await wait_until(pilot, lambda: "data class Habit" in view.answer_text)
        await pilot.press("q")
        await pilot.pause()
    assert session.stop_calls == 1
    assert session.closed
    assert app.return_code == 0


# Errors


async def test_connect_failure_shows_error():
    async def failing_connect():
        raise SddtuiError("llm.connect_failed", url="http://127.0.0.1:9/v1", reason="connection refused")

    app = build_app(connect=failing_connect)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "http://127.0.0.1:9/v1" in app.screen.message
        assert "connection refused" in app.screen.message
        await pilot.press("escape")
        assert isinstance(app.screen, ErrorScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 1


async def test_task_error_marks_task_failed():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()))

    async def failing_run(task, note=""):
        yield TaskStarted(task=task, prompt_tokens=900, prompt_tokens_exact=False, max_tokens=1024, n_ctx=4096)
        yield ErrorOccurred(error=SddtuiError("llm.stream_empty", url="http://127.0.0.1:8765/v1"), task=task)

    session.run_task = failing_run
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        tree = app.screen.query_one(SpecTree)
        await wait_until(pilot, lambda: tree.task_state("T1") == TaskState.FAILED)
        assert not app.workbench.streaming


async def test_unexpected_worker_error_shows_dialog():
    session = FakeSession(plan=Plan(spec_path="specs/habit.md", tasks=make_tasks()))

    async def broken_plan():
        raise RuntimeError("planner crashed")
        yield  # pragma: no cover

    session.make_plan = broken_plan
    app = build_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "planner crashed" in app.screen.message
        assert "RuntimeError" in app.screen.message


# Language and themes


async def test_japanese_labels():
    app = build_app(lang="ja")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        labels = _all_labels(app.screen.query_one(SpecTree))
        assert "要件" in labels
        assert "ユーザーができないこと" in labels
        footer_keys = {key.description for key in app.screen.query("FooterKey")}
        assert "承認" in footer_keys
        assert "却下" in footer_keys
        assert "提案あり" in app.screen.query_one(SpecTree).task_label_text("T1")


def test_unknown_theme_raises():
    with pytest.raises(SddtuiError) as raised:
        build_app(theme="no-such-theme")
    assert "no-such-theme" in raised.value.render("en")


def test_bundled_themes_load():
    names = {theme.name for theme in load_themes([REPO_ROOT / "themes"])}
    assert {"sddtui-dark", "sddtui-light"} <= names
    for theme in load_themes([REPO_ROOT / "themes"]):
        assert set(theme.variables) >= {"diff-added", "diff-removed", "gauge-safe", "gauge-warning", "gauge-danger"}


def test_invalid_theme_file_names_field(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "broken"\nprimary = "not-a-colour"\n[variables]\ndiff-added = "#00ff00"\n', encoding="utf-8")
    with pytest.raises(SddtuiError) as raised:
        load_theme_file(path)
    message = raised.value.render("en")
    assert "broken.toml" in message
    assert "primary" in message
    assert "diff-removed" in message


async def test_light_theme_colours_diff():
    app = build_app(theme="sddtui-light")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: proposed(app))
        diff = app.screen.query_one(DiffView)
        added = diff.get_component_rich_style("diff--added")
        assert added.color is not None
        assert added.color.triplet.hex == "#1a7f37"


# Batching


async def test_relay_batches_text():
    async def events():
        for index in range(100):
            yield TextReceived(text=f"{index} ")
        yield UsageUpdated(prompt_tokens=1, completion_tokens=100, reasoning_tokens=0, exact=False, n_ctx=None, tokens_per_second=None)
        yield TaskRejected(task=make_tasks()[0], reason="x")

    posted = []
    await relay_events(events(), posted.append, interval=60.0)
    texts = [message for message in posted if isinstance(message, StreamTextBatched)]
    assert len(texts) == 1
    assert texts[0].answer == "".join(f"{index} " for index in range(100))
    assert isinstance(posted[1], UsageBatched)
    assert isinstance(posted[2], SessionEventReceived)


async def test_relay_flushes_while_stalled():
    release = asyncio.Event()
    posted = []

    async def events():
        yield TextReceived(text="first")
        await release.wait()
        yield TextReceived(text="second")

    relay = asyncio.ensure_future(relay_events(events(), posted.append, interval=0.01))
    while not posted:
        await asyncio.sleep(0.005)
    assert posted[0].answer == "first"
    release.set()
    await relay
    assert "".join(message.answer for message in posted) == "firstsecond"


def test_usage_message_replaces_older():
    usage = UsageUpdated(prompt_tokens=1, completion_tokens=2, reasoning_tokens=0, exact=False, n_ctx=None, tokens_per_second=None)
    assert UsageBatched(usage).can_replace(UsageBatched(usage))
    assert not StreamTextBatched("a", "").can_replace(StreamTextBatched("b", ""))


def test_theme_short_names_select_shipped_themes():
    from sddtui.spec.parse import load_spec
    from sddtui.project import resolve_project

    spec = load_spec(Path(__file__).resolve().parent.parent / "specs" / "habit.md")
    project = resolve_project(spec, Path(__file__).resolve().parent, Path.cwd())

    async def never():
        raise AssertionError("not connected in this test")

    for short, full in (("dark", "sddtui-dark"), ("light", "sddtui-light")):
        app = create_app(spec, project, connect=never, lang="en", theme=short)
        assert app.theme == full
