"""Check that writes stay inside the project, are atomic, detect conflicts and survive OS errors."""

import errno
import os
import stat
from pathlib import Path

import pytest

from sddtui.edits import apply as apply_module
from sddtui.edits.apply import apply_atomic, read_text_or_none, resolve_inside, sha256_text
from sddtui.errors import SddtuiError


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_bytes(b"print('old')\n")
    return root


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*") if path.name.endswith(".sddtui-tmp"))


def test_sha256_text_is_utf8_digest():
    assert sha256_text("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_text("é") != sha256_text("e")


def test_read_text_or_none(project):
    assert read_text_or_none(project / "src" / "app.py") == "print('old')\n"
    assert read_text_or_none(project / "missing.py") is None


def test_read_keeps_crlf(project):
    (project / "win.txt").write_bytes(b"a\r\nb\r\n")

    assert read_text_or_none(project / "win.txt") == "a\r\nb\r\n"


def test_read_rejects_non_utf8(project):
    (project / "latin1.txt").write_bytes(b"caf\xe9\n")

    with pytest.raises(SddtuiError) as raised:
        read_text_or_none(project / "latin1.txt")
    assert raised.value.key == "apply_not_utf8"
    assert "latin1.txt" in str(raised.value)


@pytest.mark.parametrize(
    ("rel_path", "key"),
    [
        ("", "path_empty"),
        ("   ", "path_empty"),
        ("src/a\0.py", "path_nul"),
        ("/etc/passwd", "path_absolute"),
        ("C:\\Windows\\x.txt", "path_absolute"),
        ("C:x.txt", "path_absolute"),
        ("\\\\server\\share\\x", "path_absolute"),
        ("../outside.py", "path_parent"),
        ("src/../../outside.py", "path_parent"),
        ("src\\..\\..\\outside.py", "path_parent"),
        (".", "path_is_project"),
    ],
)
def test_resolve_inside_rejects(project, rel_path, key):
    with pytest.raises(SddtuiError) as raised:
        resolve_inside(project, rel_path)
    assert raised.value.key == key
    assert raised.value.render("ja")


def test_resolve_inside_accepts_nested_new_path(project):
    resolved = resolve_inside(project, "src/new/deep/file.py")

    assert resolved == project.resolve() / "src" / "new" / "deep" / "file.py"


def test_symlink_folder_escape_rejected(project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(SddtuiError) as raised:
        resolve_inside(project, "link/evil.py")
    assert raised.value.key == "path_symlink_escape"
    assert str(outside) in str(raised.value)


def test_symlink_file_escape_rejected(project, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("keep\n")
    (project / "notes.txt").symlink_to(secret)

    with pytest.raises(SddtuiError):
        apply_atomic(project, "notes.txt", "overwritten\n", None)
    assert secret.read_text() == "keep\n"


def test_symlink_inside_project_writes_target(project):
    (project / "alias.py").symlink_to(project / "src" / "app.py")
    old_sha = sha256_text("print('old')\n")

    apply_atomic(project, "alias.py", "print('new')\n", old_sha)

    assert (project / "alias.py").is_symlink()
    assert (project / "src" / "app.py").read_text() == "print('new')\n"


def test_apply_replaces_file(project):
    written = apply_atomic(project, "src/app.py", "print('new')\n", sha256_text("print('old')\n"))

    assert written == len(b"print('new')\n")
    assert (project / "src" / "app.py").read_bytes() == b"print('new')\n"
    assert _leftovers(project) == []


def test_apply_keeps_newlines_exactly(project):
    content = "a\r\nb\nc\r\nno final newline"

    written = apply_atomic(project, "mixed.txt", content, None)

    assert (project / "mixed.txt").read_bytes() == content.encode()
    assert written == len(content.encode())


def test_apply_writes_utf8(project):
    apply_atomic(project, "ja.md", "日本語\n", None)

    assert (project / "ja.md").read_bytes() == "日本語\n".encode("utf-8")


def test_apply_creates_parent_folders(project):
    apply_atomic(project, "src/new/deep/file.py", "x = 1\n", None)

    assert (project / "src" / "new" / "deep" / "file.py").read_text() == "x = 1\n"


def test_apply_keeps_permission_bits(project):
    script = project / "run.sh"
    script.write_text("echo old\n")
    script.chmod(0o750)

    apply_atomic(project, "run.sh", "echo new\n", sha256_text("echo old\n"))

    assert stat.S_IMODE(script.stat().st_mode) == 0o750


def test_new_file_mode_follows_umask(project):
    previous = os.umask(0o027)
    try:
        apply_atomic(project, "fresh.txt", "x\n", None)
    finally:
        os.umask(previous)

    assert stat.S_IMODE((project / "fresh.txt").stat().st_mode) == 0o640


def test_conflict_when_file_changed(project):
    expected = sha256_text("print('old')\n")
    (project / "src" / "app.py").write_text("print('edited by hand')\n")

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "src/app.py", "print('new')\n", expected)

    assert raised.value.key == "apply_conflict_changed"
    assert (project / "src" / "app.py").read_text() == "print('edited by hand')\n"
    assert _leftovers(project) == []


def test_conflict_when_file_created(project):
    (project / "new.py").write_text("someone else\n")

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "new.py", "mine\n", None)

    assert raised.value.key == "apply_conflict_created"
    assert (project / "new.py").read_text() == "someone else\n"
    assert _leftovers(project) == []


def test_conflict_when_file_deleted(project):
    expected = sha256_text("print('old')\n")
    (project / "src" / "app.py").unlink()

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "src/app.py", "print('new')\n", expected)

    assert raised.value.key == "apply_conflict_deleted"
    assert not (project / "src" / "app.py").exists()
    assert _leftovers(project) == []


def test_conflict_leaves_no_new_folders(project):
    (project / "a").mkdir()
    (project / "a" / "b.py").mkdir()

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "a/b.py", "x\n", None)
    assert raised.value.key == "apply_path_is_directory"


def test_replace_failure_leaves_original(project, monkeypatch):
    def failing_replace(source, destination):
        raise PermissionError(errno.EACCES, "Permission denied", str(destination))

    monkeypatch.setattr(apply_module.os, "replace", failing_replace)

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "src/app.py", "print('new')\n", sha256_text("print('old')\n"))

    assert raised.value.key == "apply_failed_permission"
    message = str(raised.value)
    assert "src/app.py" in message
    assert "Permission denied" in message
    assert "permissions" in message
    assert (project / "src" / "app.py").read_bytes() == b"print('old')\n"
    assert _leftovers(project) == []


def test_disk_full_leaves_original(project, monkeypatch):
    def failing_write(descriptor, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(apply_module.os, "write", failing_write)

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "src/app.py", "print('new')\n" * 1000, sha256_text("print('old')\n"))

    assert raised.value.key == "apply_failed_no_space"
    assert "ENOSPC" in str(raised.value)
    assert "disk space" in str(raised.value)
    assert (project / "src" / "app.py").read_bytes() == b"print('old')\n"
    assert _leftovers(project) == []


def test_partial_write_then_failure(project, monkeypatch):
    real_write = os.write
    calls = []

    def write_once_then_fail(descriptor, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(descriptor, bytes(data[:5]))
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(apply_module.os, "write", write_once_then_fail)

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "src/app.py", "print('new')\n", sha256_text("print('old')\n"))

    assert raised.value.key == "apply_failed"
    assert len(calls) == 2
    assert (project / "src" / "app.py").read_bytes() == b"print('old')\n"
    assert _leftovers(project) == []


def test_read_only_folder_new_file(project, monkeypatch):
    real_open = os.open

    def read_only_open(path, flags, mode=0o777, **kwargs):
        if str(path).endswith(".sddtui-tmp"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(apply_module.os, "open", read_only_open)

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "docs/new/guide.md", "# Guide\n", None)

    assert raised.value.key == "apply_failed_read_only"
    assert "read-only" in str(raised.value)
    assert not (project / "docs").exists()
    assert _leftovers(project) == []


def test_folder_creation_failure(project, monkeypatch):
    real_mkdir = Path.mkdir

    def failing_mkdir(self, *args, **kwargs):
        if self.name == "deep":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", failing_mkdir)

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "pkg/deep/x.py", "x\n", None)

    assert raised.value.key == "apply_failed_permission"
    assert not (project / "pkg").exists()


def test_unencodable_content_rejected(project):
    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, "src/app.py", "bad \ud800 text\n", sha256_text("print('old')\n"))

    assert raised.value.key == "apply_not_encodable"
    assert (project / "src" / "app.py").read_bytes() == b"print('old')\n"


def test_escape_rejected_before_any_write(project, tmp_path):
    with pytest.raises(SddtuiError):
        apply_atomic(project, "../escaped.py", "x\n", None)

    assert not (tmp_path / "escaped.py").exists()


@pytest.mark.parametrize("rel_path", ["app/Main.kt", "app/src/main/Main.kt"])
def test_read_below_file_names_the_file(project, rel_path):
    (project / "app").write_text("not a folder\n")

    with pytest.raises(SddtuiError) as raised:
        read_text_or_none(resolve_inside(project, rel_path))

    error = raised.value
    assert error.key == "apply_read_not_directory"
    assert error.params["blocker"] == str(project.resolve() / "app")
    assert "Move or rename the file" in str(error)
    assert "readable" not in str(error)
    assert str(project.resolve() / "app") in error.render("ja")


@pytest.mark.parametrize("rel_path", ["app/Main.kt", "app/src/main/Main.kt"])
def test_write_below_file_names_the_file(project, rel_path):
    (project / "app").write_text("not a folder\n")

    with pytest.raises(SddtuiError) as raised:
        apply_atomic(project, rel_path, "class Main\n", None)

    error = raised.value
    assert error.key == "apply_failed_not_directory"
    assert error.params["blocker"] == "app"
    assert "Move or rename the file app" in str(error)
    assert (project / "app").read_text() == "not a folder\n"
    assert _leftovers(project) == []
