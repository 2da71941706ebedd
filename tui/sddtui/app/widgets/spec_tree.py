"""Provide the tree of the spec's sections and the plan's tasks, with each task's live state."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from sddtui.i18n import translate
from sddtui.spec.model import Spec
from sddtui.tasks.model import Task, TaskState

STATE_MARKERS: dict[TaskState, str] = {
    TaskState.PENDING: "○",
    TaskState.RUNNING: "▶",
    TaskState.PROPOSED: "◆",
    TaskState.APPLIED: "✓",
    TaskState.REJECTED: "✗",
    TaskState.FAILED: "!",
}


def _first_line(text: str, limit: int = 200) -> str:
    """Return the first non-empty line of `text`, cut to `limit` characters."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


class SpecTree(Tree[str]):
    """The spec's sections and a Tasks node whose children show id, path and state."""

    def __init__(self, spec: Spec, project: Any, lang: str, *, id: str | None = None) -> None:
        super().__init__(Text(spec.path.name), id=id)
        self._spec = spec
        self._project = project
        self._lang = lang
        self._task_nodes: dict[str, TreeNode[str]] = {}
        self._task_states: dict[str, TaskState] = {}
        self._tasks_node: TreeNode[str] | None = None

    def on_mount(self) -> None:
        """Fill the tree from the spec."""
        self._add_spec_sections()
        self.root.expand()

    def _section(self, key: str, lines: list[str], expand: bool = False) -> None:
        """Add one section node with a leaf per line, as Text so that brackets in the spec stay literal."""
        node = self.root.add(Text(translate(key, self._lang)), expand=expand)
        for line in lines:
            node.add_leaf(Text(line))

    def _add_spec_sections(self) -> None:
        """Add the spec's sections and the (empty) Tasks node."""
        spec = self._spec
        # The project directory is where approved files land, so it stays in sight at the top.
        project_line = translate(
            "app.tree.project", self._lang, directory=str(self._project.directory),
            origin=translate(f"project_origin.{self._project.origin}", self._lang),
        )
        self.root.add_leaf(Text(project_line, style="bold"))
        objective = [_first_line(spec.objective)] if spec.objective.strip() else []
        self._section("app.tree.objective", objective)
        self._section(
            "app.tree.requirements",
            [f"{requirement.id} {_first_line(requirement.text)}" for requirement in spec.requirements],
            expand=True,
        )
        self._section("app.tree.prohibitions", [_first_line(item) for item in spec.prohibitions])
        mvp = [", ".join(spec.mvp_ids)] if spec.mvp_ids else []
        if spec.mvp_text.strip():
            mvp.append(_first_line(spec.mvp_text))
        self._section("app.tree.mvp", mvp)
        facts = spec.architecture.model_dump(exclude={"extra"}, exclude_none=True)
        facts.update(spec.architecture.extra)
        self._section("app.tree.architecture", [f"{name}: {value}" for name, value in facts.items()])
        self._section("app.tree.constraints", [_first_line(item) for item in spec.constraints])
        roots = [translate("app.tree.source_root", self._lang, root=root) for root in spec.source_roots]
        roots += [translate("app.tree.test_root", self._lang, root=root) for root in spec.test_roots]
        self._section("app.tree.roots", roots)

        self._tasks_node = self.root.add(Text(translate("app.tree.tasks", self._lang)), expand=True)
        self._tasks_node.add_leaf(Text(translate("app.tree.no_plan", self._lang), style="dim"))

    def _task_label(self, task: Task, state: TaskState) -> Text:
        """Build a task's label: marker, id, state and path."""
        label = Text(f"{STATE_MARKERS[state]} ", style="bold")
        label.append(f"{task.id} ", style="bold")
        label.append(f"{translate(f'app.state.{state.value}', self._lang)} · ", style="italic")
        # The file name first: the pane is narrow and every path shares the same long root.
        folder, _, name = task.path.rpartition("/")
        label.append(name)
        if folder:
            label.append(f"  {folder}", style="dim")
        return label

    def show_tasks(self, tasks: list[Task]) -> None:
        """Replace the Tasks node's children with `tasks` in their current state."""
        assert self._tasks_node is not None
        self._tasks_node.remove_children()
        self._task_nodes.clear()
        for task in tasks:
            node = self._tasks_node.add_leaf(self._task_label(task, task.state), data=task.id)
            self._task_nodes[task.id] = node
            self._task_states[task.id] = task.state
        self._tasks_node.expand()

    def set_task_state(self, task: Task, state: TaskState) -> None:
        """Show `state` on the task's node, adding the node if the plan did not list the task."""
        node = self._task_nodes.get(task.id)
        if node is None:
            assert self._tasks_node is not None
            node = self._tasks_node.add_leaf(self._task_label(task, state), data=task.id)
            self._task_nodes[task.id] = node
        node.set_label(self._task_label(task, state))
        self._task_states[task.id] = state

    def task_state(self, task_id: str) -> TaskState | None:
        """Return the state shown for a task, or None when the tree has no such task."""
        return self._task_states.get(task_id)

    def task_label_text(self, task_id: str) -> str:
        """Return the plain label of a task's node ("" when the tree has no such task)."""
        node = self._task_nodes.get(task_id)
        return node.label.plain if node is not None else ""
