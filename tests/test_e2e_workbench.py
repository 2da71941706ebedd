"""Drive the workbench against the real embedded engine: plan, stream with exact counts, approve, write."""

from pathlib import Path

import pytest

from sddtui.app.app import create_app
from sddtui.app.widgets.gauge import GaugePane
from sddtui.connect import connect_session
from sddtui.settings import Settings
from sddtui.tasks.model import TaskState

pytestmark = pytest.mark.e2e

SOURCE_ROOT = "app/src/main/java/com/example/habittracker/"


async def wait_for(pilot, condition, description: str, rounds: int = 2400) -> None:
    """Let the app run until `condition()` holds; fail after `rounds` pauses of 50 ms (two minutes)."""
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting until {description}")


async def test_workbench_streams_exact_counts_and_applies(habit_spec, project):
    settings = Settings(embedded=True, max_answer_tokens=512, lang="en")
    app = create_app(habit_spec, project, connect=lambda: connect_session(habit_spec, project, settings), lang="en", theme=None)
    exact_while_streaming = []

    async with app.run_test(size=(140, 42)) as pilot:
        workbench = app.workbench
        await wait_for(pilot, lambda: workbench.streaming, "the first task streams")
        gauge = workbench.query_one(GaugePane)
        await wait_for(pilot, lambda: gauge.usage.completion_tokens > 0 or not workbench.streaming, "tokens arrive")
        if workbench.streaming:
            exact_while_streaming.append(gauge.usage.exact)
        await wait_for(pilot, lambda: workbench.proposal is not None and not workbench.streaming, "the proposal is shown")

        assert gauge.usage.exact is True
        assert gauge.usage.prompt_tokens > 0
        proposal = workbench.proposal
        if proposal.blocked:
            pytest.fail(f"the bundled model's proposal was blocked: {[finding.kind for finding in proposal.blocking_findings]}")
        await pilot.press("a")
        task = workbench.current_task
        await wait_for(pilot, lambda: workbench.spec_tree.task_state(task.id) == TaskState.APPLIED, "the file is applied")
        await pilot.press("q")

    assert exact_while_streaming in ([], [True])
    written = [
        path.relative_to(project.directory).as_posix()
        for path in Path(project.directory).rglob("*")
        if path.is_file() and ".sddtui" not in path.parts
    ]
    assert written == [proposal.path]
    assert proposal.path.startswith(SOURCE_ROOT)
    assert (project.directory / proposal.path).read_text(encoding="utf-8") == proposal.new_content
