"""Check the JSON-lines journal: one durable line per record, torn lines skipped, write errors raised."""

import dataclasses
import json
import os
from enum import StrEnum
from pathlib import Path

import pytest

from sddtui import journal as journal_module
from sddtui.errors import SddtuiError
from sddtui.guards.model import Finding, Severity
from sddtui.journal import Journal, make_state_folder, plan_path


class Colour(StrEnum):
    RED = "red"


@dataclasses.dataclass
class Decision:
    task_id: str
    approved: bool
    finding: Finding


def test_plan_path(tmp_path):
    assert plan_path(tmp_path) == tmp_path / ".sddtui" / "plan.json"


def test_append_creates_folder_and_line(tmp_path):
    journal = Journal(tmp_path)

    journal.append("prompt", task_id="T1", text="Write the file.\nOnly the file.")

    lines = (tmp_path / ".sddtui" / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert list(record)[:2] == ["ts", "kind"]
    assert record["kind"] == "prompt"
    assert record["task_id"] == "T1"
    assert record["text"] == "Write the file.\nOnly the file."
    assert record["ts"].endswith("+00:00")


def test_records_read_back_in_order(tmp_path):
    journal = Journal(tmp_path)
    for number in range(5):
        journal.append("answer", number=number)

    records = Journal(tmp_path).read()

    assert [record["number"] for record in records] == [0, 1, 2, 3, 4]


def test_models_and_dataclasses_serialised(tmp_path):
    journal = Journal(tmp_path)
    finding = Finding(kind="truncated", severity=Severity.BLOCK, message="cut short", path="a.py", line=3)

    journal.append(
        "decision",
        decision=Decision(task_id="T1", approved=False, finding=finding),
        findings=[finding],
        colour=Colour.RED,
        where=Path("src") / "a.py",
        tags={"b", "a"},
    )

    record = journal.read()[0]
    assert record["findings"][0]["severity"] == "block"
    assert record["decision"]["finding"]["line"] == 3
    assert record["decision"]["approved"] is False
    assert record["colour"] == "red"
    assert record["where"] == "src/a.py"
    assert record["tags"] == ["a", "b"]


def test_japanese_text_readable(tmp_path):
    journal = Journal(tmp_path)

    journal.append("answer", text="日本語の回答")

    assert "日本語の回答" in journal.path.read_text(encoding="utf-8")


def test_lone_surrogate_still_written(tmp_path):
    journal = Journal(tmp_path)

    journal.append("answer", text="bad \ud800 text")

    assert journal.read()[0]["text"] == "bad \ud800 text"


def test_unserialisable_value_raises_type_error(tmp_path):
    with pytest.raises(TypeError):
        Journal(tmp_path).append("answer", value=object())


def test_reserved_field_rejected(tmp_path):
    with pytest.raises(ValueError):
        Journal(tmp_path).append("answer", ts="yesterday")


def test_append_fsyncs_before_returning(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(journal_module.os, "fsync", recording_fsync)

    Journal(tmp_path).append("apply", path="a.py")

    assert len(synced) == 1


def test_torn_last_line_skipped_and_reported(tmp_path):
    journal = Journal(tmp_path)
    journal.append("prompt", task_id="T1")
    journal.append("answer", task_id="T1")
    with open(journal.path, "ab") as journal_file:
        journal_file.write(b'{"ts":"2025-01-01T00:00:00+00:00","kind":"apply","pa')

    records = journal.read()

    assert [record["kind"] for record in records] == ["prompt", "answer"]
    assert journal.skipped_lines == [3]
    warning = journal.skipped_lines_message()
    assert warning is not None
    assert warning.key == "journal_lines_skipped"
    assert "3" in str(warning)
    assert warning.render("ja")


def test_append_after_torn_line_starts_new_line(tmp_path):
    journal = Journal(tmp_path)
    journal.append("prompt", task_id="T1")
    with open(journal.path, "ab") as journal_file:
        journal_file.write(b'{"kind":"answ')

    journal.append("resume", task_id="T1")
    records = journal.read()

    assert [record["kind"] for record in records] == ["prompt", "resume"]
    assert journal.skipped_lines == [2]


def test_clean_read_reports_nothing(tmp_path):
    journal = Journal(tmp_path)
    journal.append("prompt")

    journal.read()

    assert journal.skipped_lines == []
    assert journal.skipped_lines_message() is None


def test_missing_journal_reads_empty(tmp_path):
    assert Journal(tmp_path).read() == []


def test_non_object_line_skipped(tmp_path):
    journal = Journal(tmp_path)
    journal.path.parent.mkdir(parents=True)
    journal.path.write_bytes(b'[1, 2]\n{"kind": "prompt"}\n\xff\xfe\n')

    records = journal.read()

    assert records == [{"kind": "prompt"}]
    assert journal.skipped_lines == [1, 3]


def test_unwritable_journal_raises(tmp_path, monkeypatch):
    def failing_fsync(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_module.os, "fsync", failing_fsync)

    with pytest.raises(SddtuiError) as raised:
        Journal(tmp_path).append("apply", path="a.py")

    assert raised.value.key == "journal_write_failed"
    assert "journal.jsonl" in str(raised.value)
    assert "No space left on device" in str(raised.value)


def test_journal_folder_blocked_by_file(tmp_path):
    (tmp_path / ".sddtui").write_text("not a folder")

    with pytest.raises(SddtuiError) as raised:
        Journal(tmp_path).append("prompt")

    message = str(raised.value)
    assert raised.value.key == "state_folder_is_file"
    assert f"{tmp_path / '.sddtui'} is a file" in message
    assert "Move or rename the file .sddtui" in message
    assert "disk space" not in message
    assert (tmp_path / ".sddtui").read_text() == "not a folder"


def test_journal_read_blocked_by_file(tmp_path):
    (tmp_path / ".sddtui").write_text("not a folder")

    with pytest.raises(SddtuiError) as raised:
        Journal(tmp_path).read()
    assert raised.value.key == "state_folder_is_file"
    assert ".sddtui" in raised.value.render("ja")


def test_make_state_folder(tmp_path):
    assert make_state_folder(tmp_path) == tmp_path / ".sddtui"
    assert (tmp_path / ".sddtui").is_dir()
    assert make_state_folder(tmp_path) == tmp_path / ".sddtui"


def test_make_state_folder_blocked_by_symlink_to_file(tmp_path):
    (tmp_path / "elsewhere").write_text("x")
    (tmp_path / ".sddtui").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(SddtuiError) as raised:
        make_state_folder(tmp_path)
    assert raised.value.key == "state_folder_is_file"
