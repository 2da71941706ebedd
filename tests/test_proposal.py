"""Check how a proposal is built from an answer: block choice, findings and the diff."""

from pathlib import Path

import pytest

from sddtui.edits.apply import sha256_text
from sddtui.edits.proposal import build_proposal
from sddtui.errors import SddtuiError
from sddtui.tasks.model import Task, TaskAction

SHARED_CASES = Path(__file__).resolve().parent.parent.parent / "shared" / "cases"
HABIT_PATH = "app/src/main/java/com/example/habittracker/Habit.kt"


@pytest.fixture
def shared_cases() -> Path:
    return SHARED_CASES


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    habit = root / HABIT_PATH
    habit.parent.mkdir(parents=True)
    habit.write_text("data class Habit(val name: String)\n")
    return root


def _task(path: str = HABIT_PATH, action: TaskAction = TaskAction.MODIFY) -> Task:
    return Task(id="T1", path=path, action=action, requirement_ids=["FUNC-1"], instruction="Add an id.")


def _kinds(proposal) -> list[str]:
    return [finding.kind for finding in proposal.findings]


NEW_HABIT = "data class Habit(val id: Long, val name: String)\n"


@pytest.mark.parametrize(
    "heading",
    [
        HABIT_PATH,
        f"`{HABIT_PATH}`",
        "Habit.kt",
        "com/example/habittracker/Habit.kt",
        f"b/{HABIT_PATH}",
        f"Updated `{HABIT_PATH}`",
    ],
)
def test_task_block_chosen_by_path(project, heading):
    answer = f"{heading}\n```kotlin\n{NEW_HABIT}```\n"
    proposal = build_proposal(_task(), answer, project)

    assert proposal.new_content == NEW_HABIT
    assert proposal.old_content == "data class Habit(val name: String)\n"
    assert proposal.old_sha256 == sha256_text(proposal.old_content)
    assert proposal.findings == []
    assert "+data class Habit(val id: Long, val name: String)" in proposal.diff
    assert proposal.diff.startswith(f"--- a/{HABIT_PATH}\n")


def test_folder_suffix_must_start_at_boundary(project):
    answer = f"abit.kt\n```kotlin\n{NEW_HABIT}```\n"

    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task(), answer, project)
    assert raised.value.key == "answer_other_files"
    assert "abit.kt" in str(raised.value)


def test_absolute_path_inside_project(project):
    absolute = (project / HABIT_PATH).resolve()
    answer = f"{absolute}\n```kotlin\n{NEW_HABIT}```\n"

    proposal = build_proposal(_task(), answer, project)

    assert proposal.new_content == NEW_HABIT
    assert proposal.not_applied == []


def test_absolute_path_outside_project_not_applied(project, tmp_path):
    elsewhere = tmp_path / "other" / HABIT_PATH
    answer = f"{elsewhere}\n```kotlin\n{NEW_HABIT}```\n\n{HABIT_PATH}\n```kotlin\n{NEW_HABIT}```\n"

    proposal = build_proposal(_task(), answer, project)

    assert len(proposal.not_applied) == 1
    assert proposal.not_applied[0].start_line == 2
    assert _kinds(proposal) == ["other_file"]


def test_single_block_without_path(project):
    answer = f"Here is the file:\n```kotlin\n{NEW_HABIT}```\n"

    proposal = build_proposal(_task(), answer, project)

    assert proposal.new_content == NEW_HABIT


def test_pathless_blocks_chosen_by_language(project):
    answer = f"Run:\n```bash\n./gradlew test\n```\nThe file:\n```kotlin\n{NEW_HABIT}```\n"

    proposal = build_proposal(_task(), answer, project)

    assert proposal.new_content == NEW_HABIT
    assert [block.content for block in proposal.not_applied] == ["./gradlew test\n"]


def test_pathless_blocks_ambiguous(project):
    answer = f"```kotlin\n{NEW_HABIT}```\n```kotlin\n{NEW_HABIT}```\n"

    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task(), answer, project)
    assert raised.value.key == "answer_ambiguous"


def test_other_file_not_applied(project):
    answer = (
        f"{HABIT_PATH}\n```kotlin\n{NEW_HABIT}```\n\n"
        "app/src/main/java/com/example/habittracker/HabitDao.kt\n```kotlin\ninterface HabitDao\n```\n"
    )

    proposal = build_proposal(_task(), answer, project)

    assert proposal.new_content == NEW_HABIT
    assert [block.content for block in proposal.not_applied] == ["interface HabitDao\n"]
    finding = proposal.findings[0]
    assert finding.kind == "other_file"
    assert finding.severity == "warn"
    assert "HabitDao.kt" in finding.message
    assert "not applied" in finding.message
    assert finding.feedback
    assert finding.not_applied is True
    assert finding.evidence == "interface HabitDao"
    assert not proposal.blocked


def test_no_answer_block_raises_with_path(project):
    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task(), "I think the change is simple: add an id field.", project)

    assert raised.value.key == "answer_no_file"
    assert HABIT_PATH in str(raised.value)
    assert "no code block at all" in str(raised.value)
    assert "Retry" in str(raised.value)
    assert HABIT_PATH in raised.value.render("ja")


def test_no_task_block_lists_named_paths(project):
    answer = "Other.kt\n```kotlin\nclass Other\n```\n\n/etc/passwd\n```\nroot:x:0:0\n```\n"

    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task(), answer, project)

    message = str(raised.value)
    assert raised.value.key == "answer_other_files"
    assert HABIT_PATH in message
    assert "Other.kt, /etc/passwd" in message
    assert "Other.kt, /etc/passwd" in raised.value.render("ja")


def test_named_paths_are_capped_and_shortened(project):
    long_path = "src/" + "deep/" * 30 + "Long.kt"
    names = [f"File{number}.kt" for number in range(6)] + [long_path, "File0.kt"]
    answer = "".join(f"{name}\n```kotlin\nclass X\n```\n\n" for name in names)

    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task(), answer, project)

    named = raised.value.params["named"]
    assert named == "File0.kt, File1.kt, File2.kt, File3.kt, File4.kt (+2)"
    assert long_path not in str(raised.value)


def test_long_named_path_keeps_its_end(project):
    long_path = "src/" + "deep/" * 30 + "Long.kt"
    answer = f"{long_path}\n```kotlin\nclass X\n```\n"

    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task(), answer, project)

    named = raised.value.params["named"]
    assert named.startswith("…")
    assert named.endswith("deep/Long.kt")
    assert len(named) == 60


def test_truncated_block_blocks(project):
    answer = f"{HABIT_PATH}\n```kotlin\ndata class Habit(\n    val id: Long,"

    proposal = build_proposal(_task(), answer, project)

    assert _kinds(proposal) == ["truncated"]
    assert proposal.findings[0].severity == "block"
    assert proposal.blocked


def test_first_complete_copy_wins(project):
    answer = (
        f"{HABIT_PATH}\n```kotlin\n{NEW_HABIT}```\n\n"
        f"{HABIT_PATH}\n```kotlin\ndata class Habit(val id: Long, val 名前: String)\n```\n"
    )

    proposal = build_proposal(_task(), answer, project)

    assert proposal.new_content == NEW_HABIT
    assert _kinds(proposal) == ["duplicate_block"]
    assert len(proposal.not_applied) == 1


def test_empty_file_for_modify_blocks(project):
    answer = f"{HABIT_PATH}\n```kotlin\n```\n"

    proposal = build_proposal(_task(), answer, project)

    assert "empty_file" in _kinds(proposal)
    assert proposal.blocked


def test_empty_file_for_create_allowed(project):
    answer = "pkg/__init__.py\n```python\n```\n"

    proposal = build_proposal(_task("pkg/__init__.py", TaskAction.CREATE), answer, project)

    assert proposal.findings == []
    assert proposal.old_content is None
    assert proposal.old_sha256 is None
    assert proposal.diff == "--- /dev/null\n+++ b/pkg/__init__.py\n"


def test_identical_content_warns(project):
    answer = f"{HABIT_PATH}\n```kotlin\ndata class Habit(val name: String)\n```\n"

    proposal = build_proposal(_task(), answer, project)

    assert _kinds(proposal) == ["no_change"]
    assert proposal.findings[0].severity == "warn"
    assert proposal.diff == ""


def test_task_block_marked_no_changes(project):
    answer = f"{HABIT_PATH} (no changes needed)\n```kotlin\ndata class Habit(val name: String)\n```\n"

    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task(), answer, project)
    assert raised.value.key == "answer_no_changes"


def test_new_file_diff_from_dev_null(project):
    answer = "src/new.py\n```python\nx = 1\n```\n"

    proposal = build_proposal(_task("src/new.py", TaskAction.CREATE), answer, project)

    assert proposal.diff.startswith("--- /dev/null\n+++ b/src/new.py\n")
    assert proposal.old_content is None


def test_crlf_file_keeps_crlf(project):
    (project / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    answer = "win.txt\n```text\none\nthree\n```\n"

    proposal = build_proposal(_task("win.txt"), answer, project)

    assert proposal.new_content == "one\r\nthree\r\n"


def test_missing_final_newline_kept(project):
    (project / "a.txt").write_bytes(b"one\ntwo")
    answer = "a.txt\n```text\none\nthree\n```\n"

    proposal = build_proposal(_task("a.txt"), answer, project)

    assert proposal.new_content == "one\nthree"
    assert "\\ No newline at end of file" in proposal.diff


def test_task_path_escape_rejected(project):
    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task("../outside.py"), "```python\nx = 1\n```\n", project)
    assert raised.value.key == "path_parent"


def test_japanese_messages(project):
    answer = f"{HABIT_PATH}\n```kotlin\n{NEW_HABIT}```\nother.kt\n```kotlin\nx\n```\n"

    proposal = build_proposal(_task(), answer, project, lang="ja")

    assert "適用していません" in proposal.findings[0].message
    assert proposal.findings[0].feedback.startswith("Write only")


def test_nested_fences_readme_case(shared_cases, tmp_path):
    answer = (shared_cases / "outputs" / "nested-fences-readme.md").read_text(encoding="utf-8")
    (tmp_path / "README.md").write_text("# Widget\n")

    proposal = build_proposal(_task("README.md"), answer, tmp_path)

    assert proposal.findings == []
    assert "```bash\npip install widget\n```" in proposal.new_content
    assert proposal.new_content.endswith("Run `widget --help` for options.\n")


@pytest.fixture
def svelte_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src" / "lib").mkdir(parents=True)
    (root / "src" / "routes").mkdir(parents=True)
    (root / "src" / "lib" / "schemas.ts").write_text("export const Item = z.object({});\n")
    (root / "src" / "routes" / "+layout.svelte").write_text("<slot />\n")
    (root / "src" / "routes" / "+page.svelte").write_text("<p>hi</p>\n")
    return root


def test_decorated_paths_task_schema(shared_cases, svelte_project):
    answer = (shared_cases / "outputs" / "decorated-paths.md").read_text(encoding="utf-8")

    proposal = build_proposal(_task("src/lib/schemas.ts"), answer, svelte_project)

    assert proposal.new_content == "export const Item = z.object({ id: z.string() });\n"
    assert proposal.path == "src/lib/schemas.ts"
    # The "no changes" block is shown as not applied without a warning; the three patches warn.
    assert len(proposal.not_applied) == 4
    assert _kinds(proposal) == ["unsupported_format"] * 3
    warned_paths = [finding.path for finding in proposal.findings]
    assert warned_paths == ["app.py", "security.md", "/home/user/project/src/routes/+page.svelte"]
    assert all("db.ts" not in (block.path or "") for block in proposal.not_applied)
    assert not proposal.blocked


def test_decorated_paths_no_changes_task(shared_cases, svelte_project):
    answer = (shared_cases / "outputs" / "decorated-paths.md").read_text(encoding="utf-8")

    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task("src/routes/+layout.svelte"), answer, svelte_project)
    assert raised.value.key == "answer_no_changes"


def test_decorated_paths_patch_only_task(shared_cases, svelte_project):
    answer = (shared_cases / "outputs" / "decorated-paths.md").read_text(encoding="utf-8")

    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task("src/routes/+page.svelte"), answer, svelte_project)
    assert raised.value.key == "answer_patch_only"


def test_decorated_paths_prose_mention_not_edit(shared_cases, svelte_project):
    answer = (shared_cases / "outputs" / "decorated-paths.md").read_text(encoding="utf-8")
    (svelte_project / "src" / "lib" / "db.ts").write_text("export {}\n")

    with pytest.raises(SddtuiError) as raised:
        build_proposal(_task("src/lib/db.ts"), answer, svelte_project)
    assert raised.value.key == "answer_patch_only"
