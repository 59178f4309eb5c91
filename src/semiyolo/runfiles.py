"""A run folder's safety: one writer at a time, and write failures said in one line (no Ultralytics)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import ConfigError, UserInputError

LOCK_NAME = ".semiyolo.lock"


class OutputError(UserInputError):
    """A run's output could not be written: no space left, or a folder that is not writable."""


class RunLock:
    """An exclusive claim on a run folder: ``<folder>/.semiyolo.lock`` holds the owner's process id. A lock
    whose process is gone (a killed run) is taken over; one whose process is alive is refused."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        while not self.held:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self._owner()
                if owner == os.getpid():
                    self.held = True
                elif owner is not None and _alive(owner):
                    raise ConfigError(
                        f"{self.folder}: another run (process {owner}) is writing to this folder; give train.name "
                        "another value, or wait for that run to finish"
                    ) from None
                else:
                    self.path.unlink(missing_ok=True)  # left by a run that was killed
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.held = True

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _owner(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def describe_write_error(err: BaseException, path: str | Path) -> OutputError | None:
    """The one-line :class:`OutputError` for a failed write to ``path``, or ``None`` if ``err`` is not about
    space or permissions. torch's zip writer reports a full disk as a ``RuntimeError`` ("unexpected pos")."""
    code = getattr(err, "errno", None)
    if code == errno.ENOSPC or (isinstance(err, RuntimeError) and "unexpected pos" in str(err)):
        return OutputError(f"no space left on the device of {path}; free some space, then resume the run")
    if code in (errno.EACCES, errno.EROFS, errno.EPERM):
        return OutputError(f"{path} is not writable ({os.strerror(code)}); give train.project a writable folder")
    return None
