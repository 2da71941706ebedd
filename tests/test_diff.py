"""Check the unified diff of a proposal against the file on disk, and its line counts."""

import shutil
import subprocess

import pytest

from sddtui.edits.diff import diff_stats, split_lines, unified_diff


def test_modified_file_headers_and_hunk():
    diff = unified_diff("a\nb\nc\n", "a\nB\nc\n", "src/x.py")

    assert diff == "--- a/src/x.py\n+++ b/src/x.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"


def test_new_file_from_dev_null():
    diff = unified_diff(None, "x\ny\n", "src/new.py")

    assert diff.startswith("--- /dev/null\n+++ b/src/new.py\n@@ -0,0 +1,2 @@\n")
    assert diff_stats(diff) == (2, 0)


def test_new_empty_file_has_headers_only():
    assert unified_diff(None, "", "empty.txt") == "--- /dev/null\n+++ b/empty.txt\n"


def test_unchanged_file_gives_empty_diff():
    assert unified_diff("same\n", "same\n", "a.txt") == ""


def test_missing_final_newline_marker_old():
    diff = unified_diff("a\nb", "a\nb\n", "a.txt")

    assert diff.endswith("-b\n\\ No newline at end of file\n+b\n")


def test_missing_final_newline_marker_new():
    diff = unified_diff("a\nb\n", "a\nc", "a.txt")

    assert diff.endswith("+c\n\\ No newline at end of file\n")
    assert diff_stats(diff) == (1, 1)


def test_three_lines_of_context():
    old = "".join(f"line {number}\n" for number in range(1, 21))
    new = old.replace("line 10\n", "line ten\n")
    diff = unified_diff(old, new, "a.txt")

    assert "@@ -7,7 +7,7 @@" in diff
    assert " line 6\n" not in diff
    assert " line 7\n" in diff
    assert " line 13\n" in diff
    assert " line 14\n" not in diff


def test_form_feed_does_not_split_lines():
    assert split_lines("a\x0cb\nc\u2028d") == ["a\x0cb\n", "c\u2028d"]


def test_crlf_change_shows():
    diff = unified_diff("a\r\n", "a\n", "a.txt")

    assert diff_stats(diff) == (1, 1)


def test_stats_count_dashed_content():
    diff = unified_diff("-- comment\n++x\nkeep\n", "keep\n", "q.sql")

    assert diff_stats(diff) == (0, 2)


def test_stats_several_hunks():
    old_lines = [f"line {number}\n" for number in range(40)]
    new_lines = list(old_lines)
    new_lines[5] = "line five\n"
    new_lines[35:35] = ["extra\n"]
    del new_lines[30]
    diff = unified_diff("".join(old_lines), "".join(new_lines), "n.txt")

    assert diff.count("@@ -") == 2
    assert diff_stats(diff) == (2, 2)


def test_stats_of_empty_diff():
    assert diff_stats("") == (0, 0)


@pytest.mark.skipif(shutil.which("patch") is None, reason="the patch tool is not installed")
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("a\nb\nc", "a\nB\nc\n"),
        ("a\nb\nc\n", "a\nb\nc"),
        ("x\n" * 30, "x\n" * 10 + "y\n" + "x\n" * 19),
        ("one\r\ntwo\r\n", "one\r\nthree\r\n"),
    ],
)
def test_patch_tool_applies_diff(tmp_path, old, new):
    target = tmp_path / "f.txt"
    target.write_bytes(old.encode())
    diff = unified_diff(old, new, "f.txt")

    result = subprocess.run(
        ["patch", "-p1", "--binary", "-s"], input=diff.encode(), cwd=tmp_path, capture_output=True, check=False
    )

    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    assert target.read_bytes() == new.encode()
