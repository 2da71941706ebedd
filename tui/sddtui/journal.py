"""Provide the append-only JSON-lines journal in `.sddtui/` and the path of the plan file beside it."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

from pydantic import BaseModel

from sddtui.errors import SddtuiError

logger = logging.getLogger(__name__)

STATE_FOLDER_NAME = ".sddtui"
JOURNAL_FILE_NAME = "journal.jsonl"
PLAN_FILE_NAME = "plan.json"
_RESERVED_FIELDS = {"ts", "kind"}


def state_folder(project_dir: Path) -> Path:
    """Return the folder that contains sddtui's journal and plan for a project."""
    return project_dir / STATE_FOLDER_NAME


def make_state_folder(project_dir: Path) -> Path:
    """Create the state folder if it is missing and return it, or raise SddtuiError when a file has its name.

    Other OS errors propagate, so that each caller reports them in its own words.
    """
    folder = state_folder(project_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        not_a_folder = _not_a_folder_error(folder)
        if not_a_folder is None:
            raise
        raise not_a_folder from error
    return folder


def _not_a_folder_error(folder: Path) -> SddtuiError | None:
    """Return the error for a state folder path taken by a file or other non-folder, or None when it is a folder."""
    if os.path.lexists(folder) and not folder.is_dir():
        return SddtuiError("state_folder_is_file", path=str(folder), name=STATE_FOLDER_NAME)
    return None


def plan_path(project_dir: Path) -> Path:
    """Return the path of the plan file, `<project>/.sddtui/plan.json`."""
    return state_folder(project_dir) / PLAN_FILE_NAME


class Journal:
    """An append-only record of prompts, answers, findings, decisions and writes for one project.

    Each record is one JSON object on one line, written to disk before the caller acts on it.
    """

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self.path = state_folder(project_dir) / JOURNAL_FILE_NAME
        self.skipped_lines: list[int] = []
        """1-based numbers of the lines the last `read` skipped because they were not complete JSON."""

    def append(self, kind: str, /, **fields: Any) -> None:
        """Append one record with a UTC timestamp and `kind`, and flush it to disk before returning.

        Pydantic models, dataclasses, enums, paths and datetimes in `fields` are converted to
        JSON. Raises SddtuiError when the journal cannot be written, so that the caller stops
        rather than acts without a record.
        """
        reserved = _RESERVED_FIELDS & fields.keys()
        if reserved:
            raise ValueError(f"journal fields {sorted(reserved)} are set by Journal.append itself")

        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "kind": kind, **fields}
        line = _encode_line(record)
        try:
            make_state_folder(self.project_dir)
            with open(self.path, "ab") as journal_file:
                if not _ends_with_line_break(journal_file):
                    # A crash cut the last record short; end it so that this record gets its own line.
                    journal_file.write(b"\n")
                journal_file.write(line)
                journal_file.flush()
                os.fsync(journal_file.fileno())
        except OSError as error:
            raise SddtuiError("journal_write_failed", path=str(self.path), error=error.strerror or str(error)) from error

    def read(self) -> list[dict[str, Any]]:
        """Return every complete record in order, skipping lines that are not complete JSON objects.

        A crash during `append` can leave a torn line. The numbers of skipped lines are stored in
        `skipped_lines` and logged, and `skipped_lines_message` returns the warning for the user.
        """
        self.skipped_lines = []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except NotADirectoryError as error:
            not_a_folder = _not_a_folder_error(self.path.parent)
            if not_a_folder is None:
                raise SddtuiError("journal_read_failed", path=str(self.path), error=error.strerror or str(error)) from error
            raise not_a_folder from error
        except OSError as error:
            raise SddtuiError("journal_read_failed", path=str(self.path), error=error.strerror or str(error)) from error

        records: list[dict[str, Any]] = []
        for number, raw_line in enumerate(data.split(b"\n"), start=1):
            if not raw_line.strip():
                continue
            try:
                record = json.loads(raw_line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                self.skipped_lines.append(number)

        if self.skipped_lines:
            logger.warning("skipped incomplete journal lines %s in %s", self.skipped_lines, self.path)
        return records

    def skipped_lines_message(self) -> SddtuiError | None:
        """Return the warning about lines the last `read` skipped, or None when it skipped none."""
        if not self.skipped_lines:
            return None
        lines = ", ".join(str(number) for number in self.skipped_lines)
        return SddtuiError("journal_lines_skipped", path=str(self.path), count=len(self.skipped_lines), lines=lines)


def _encode_line(record: dict[str, Any]) -> bytes:
    """Return the record as one line of UTF-8 JSON ending in a line break.

    Text that cannot be encoded as UTF-8 (a lone surrogate from a model's output) falls back to
    ASCII escapes, so the record is still written.
    """
    text = json.dumps(record, ensure_ascii=False, default=_to_json, separators=(",", ":"))
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record, ensure_ascii=True, default=_to_json, separators=(",", ":"))
        return (text + "\n").encode("ascii")


def _to_json(value: Any) -> Any:
    """Convert a value that the json module cannot encode into one it can."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot write a {type(value).__name__} to the journal; convert it to JSON-compatible data first")


def _ends_with_line_break(journal_file: Any) -> bool:
    """Return True when the file opened for appending is empty or ends with a line break."""
    size = os.fstat(journal_file.fileno()).st_size
    if size == 0:
        return True
    with open(journal_file.name, "rb") as reader:
        reader.seek(size - 1)
        return reader.read(1) == b"\n"
