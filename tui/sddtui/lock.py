"""Provide the project lock that keeps two sddtui sessions from writing one project at once."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from sddtui.errors import SddtuiError
from sddtui.journal import make_state_folder

try:
    import fcntl
except ImportError:  # Windows has no fcntl: there the file only records the pid and does not lock.
    fcntl = None


class ProjectLock:
    """An exclusive lock on `<project>/.sddtui/lock`, held while a session runs and freed when its process ends."""

    def __init__(self, project_dir: Path) -> None:
        self.path = project_dir / ".sddtui" / "lock"
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise SddtuiError naming the process that holds it."""
        make_state_folder(self.path.parent.parent)
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise SddtuiError("project_lock_failed", path=str(self.path), reason=error.strerror or str(error)) from error

        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = os.read(descriptor, 32).decode("ascii", "replace").strip() or "?"
                os.close(descriptor)
                if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
                    raise SddtuiError("project_locked", path=str(self.path.parent.parent), pid=holder) from error
                raise SddtuiError("project_lock_failed", path=str(self.path), reason=error.strerror or str(error)) from error

        os.ftruncate(descriptor, 0)
        os.write(descriptor, str(os.getpid()).encode("ascii"))
        self._descriptor = descriptor

    def release(self) -> None:
        """Free the lock; the file stays, since removing it could race with a new holder."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
