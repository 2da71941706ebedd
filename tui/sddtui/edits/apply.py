"""Provide the checks that keep a write inside the project, and the atomic write with conflict detection."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

from sddtui.errors import SddtuiError

logger = logging.getLogger(__name__)

_TEMPORARY_SUFFIX = ".sddtui-tmp"
_TEMPORARY_NAME_ATTEMPTS = 8


def sha256_text(text: str) -> str:
    """Return the SHA-256 hex digest of the text encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_text_or_none(path: Path) -> str | None:
    """Return a file's text decoded as UTF-8 with its line endings kept, or None when it does not exist.

    Raises SddtuiError when the file is not valid UTF-8 or cannot be read.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise SddtuiError("apply_path_is_directory", path=str(path)) from None
    except OSError as error:
        blocker = _file_in_the_way(path) if error.errno == errno.ENOTDIR else None
        if blocker is not None:
            raise SddtuiError("apply_read_not_directory", path=str(path), blocker=str(blocker)) from error
        raise SddtuiError("apply_read_failed", path=str(path), error=_describe(error)) from error

    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SddtuiError("apply_not_utf8", path=str(path), offset=error.start) from error


def resolve_inside(project_dir: Path, rel_path: str) -> Path:
    """Return the real path of `rel_path` inside the project, or raise SddtuiError when it would leave it.

    Rejects an empty path, NUL bytes, an absolute path (POSIX or Windows form), any ".."
    component, the project folder itself, and a path whose existing symlinks lead outside
    the project. The result has its symlinks resolved, so a write replaces the link's target
    and never the link.
    """
    if "\0" in rel_path:
        raise SddtuiError("path_nul", path=rel_path.replace("\0", "\\0"))
    if not rel_path.strip():
        raise SddtuiError("path_empty")
    if PurePosixPath(rel_path).is_absolute() or PureWindowsPath(rel_path).is_absolute() or PureWindowsPath(rel_path).drive:
        raise SddtuiError("path_absolute", path=rel_path)
    if ".." in PurePosixPath(rel_path.replace("\\", "/")).parts:
        raise SddtuiError("path_parent", path=rel_path)

    root = project_dir.resolve()
    target = (root / rel_path).resolve()
    if target == root:
        raise SddtuiError("path_is_project", path=rel_path)
    if not target.is_relative_to(root):
        raise SddtuiError("path_symlink_escape", path=rel_path, target=str(target), project=str(root))
    return target


def apply_atomic(project_dir: Path, rel_path: str, content: str, expected_sha256: str | None) -> int:
    """Write `content` to a file in the project atomically and return the number of bytes written.

    The bytes go to a temporary file in the same folder, which is flushed to disk. It replaces
    the file only if the file still has `expected_sha256`, or still does not exist when that is
    None. The old file's permission bits are kept. On a conflict or any OS error nothing is
    replaced, the temporary file and any folders created for it are removed, and SddtuiError
    is raised.
    """
    # NOTE: another process can still change the file, or swap a folder for a symlink, between
    # the conflict check and os.replace; the window is a few system calls wide.
    target = resolve_inside(project_dir, rel_path)
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError as error:
        raise SddtuiError("apply_not_encodable", path=rel_path, offset=error.start) from error
    if target.is_dir():
        raise SddtuiError("apply_path_is_directory", path=rel_path)

    root = project_dir.resolve()
    created_folders = _make_parent_folders(target.parent, rel_path, root)
    temporary: Path | None = None
    replaced = False
    try:
        temporary = _write_temporary(target, data)
        _check_unchanged(target, rel_path, expected_sha256)
        _copy_permissions(target, temporary)
        os.replace(temporary, target)
        replaced = True
    except OSError as error:
        raise _write_error(rel_path, error, target, root) from error
    finally:
        if not replaced:
            if temporary is not None:
                _remove_quietly(temporary)
            _remove_empty_folders(created_folders)

    _sync_folder(target.parent)
    return len(data)


def _make_parent_folders(parent: Path, rel_path: str, root: Path) -> list[Path]:
    """Create the missing folders above a new file and return them, deepest last."""
    missing: list[Path] = []
    folder = parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    missing.reverse()

    created: list[Path] = []
    try:
        for folder in missing:
            folder.mkdir()
            created.append(folder)
    except OSError as error:
        _remove_empty_folders(created)
        raise _write_error(rel_path, error, parent, root) from error
    return created


def _write_temporary(target: Path, data: bytes) -> Path:
    """Write the bytes to a new file beside the target, flush them to disk, and return its path.

    The file is created with mode 0o666 so that the umask applies as it would to a new file.
    """
    for _ in range(_TEMPORARY_NAME_ATTEMPTS):
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}{_TEMPORARY_SUFFIX}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary file name", str(target.parent))

    try:
        view = memoryview(data)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
        os.fsync(descriptor)
    except OSError:
        os.close(descriptor)
        _remove_quietly(temporary)
        raise
    os.close(descriptor)
    return temporary


def _check_unchanged(target: Path, rel_path: str, expected_sha256: str | None) -> None:
    """Raise a conflict SddtuiError unless the file on disk still matches the proposal's view of it."""
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        current = None

    if expected_sha256 is None:
        if current is not None:
            raise SddtuiError("apply_conflict_created", path=rel_path)
        return
    if current is None:
        raise SddtuiError("apply_conflict_deleted", path=rel_path)
    if hashlib.sha256(current).hexdigest() != expected_sha256:
        raise SddtuiError("apply_conflict_changed", path=rel_path)


def _copy_permissions(target: Path, temporary: Path) -> None:
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return
    os.chmod(temporary, mode)


def _sync_folder(folder: Path) -> None:
    """Flush the folder entry of the renamed file to disk where the platform allows it."""
    if os.name != "posix":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError as error:
        logger.warning("could not open %s to flush the rename to disk: %s", folder, error)
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        # The file is already replaced; only its durability after a power loss is uncertain.
        logger.warning("could not flush the rename in %s to disk: %s", folder, error)
    finally:
        os.close(descriptor)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        logger.warning("could not remove the temporary file %s: %s", path, error)


def _remove_empty_folders(folders: list[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError as error:
            logger.warning("could not remove the folder %s created for a failed write: %s", folder, error)
            return


def _describe(error: OSError) -> str:
    name = errno.errorcode.get(error.errno, "") if error.errno is not None else ""
    text = error.strerror or str(error)
    return f"{text} ({name})" if name else text


def _file_in_the_way(path: Path) -> Path | None:
    """Return the first folder above `path` that exists but is not a folder, or None when there is none.

    Such a component makes every access below it fail with ENOTDIR.
    """
    for ancestor in reversed(path.parents):
        if os.path.lexists(ancestor) and not ancestor.is_dir():
            return ancestor
    return None


def _write_error(rel_path: str, error: OSError, target: Path, root: Path) -> SddtuiError:
    """Return the error for a failed write to `target` in the project at `root`, with the next step that fits the OS error."""
    if error.errno == errno.ENOTDIR:
        blocker = _file_in_the_way(target)
        if blocker is not None:
            blocker_text = blocker.relative_to(root).as_posix() if blocker.is_relative_to(root) else str(blocker)
            return SddtuiError("apply_failed_not_directory", path=rel_path, blocker=blocker_text)
    if error.errno in {errno.ENOSPC, errno.EDQUOT}:
        key = "apply_failed_no_space"
    elif error.errno in {errno.EACCES, errno.EPERM}:
        key = "apply_failed_permission"
    elif error.errno == errno.EROFS:
        key = "apply_failed_read_only"
    else:
        key = "apply_failed"
    return SddtuiError(key, path=rel_path, error=_describe(error))
