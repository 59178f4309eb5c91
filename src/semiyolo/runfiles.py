"""A run folder: its layout, one writer at a time, and write failures said in one line (no Ultralytics)."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from .errors import ConfigError, UserInputError

LOCK_NAME = ".semiyolo.lock"
WEIGHTS = "weights"  # the run folder's checkpoints, Ultralytics' and ours
LAST_WEIGHTS = "last.pt"  # Ultralytics' latest checkpoint (the EMA weights in half precision, the training arguments)
TRAIN_STATE = "train_state.pt"  # exact resume's full-precision state, written beside last.pt
SEMI_STATE = "semi_state.pt"  # the online trainer's: teacher, filters, unlabeled stream, reviewed images


def weights_dir(run_dir: str | Path) -> Path:
    """The folder of a run's checkpoints: ``<run_dir>/weights``."""
    return Path(run_dir) / WEIGHTS


def last_weights(run_dir: str | Path) -> Path:
    """A run's latest checkpoint: ``<run_dir>/weights/last.pt``."""
    return weights_dir(run_dir) / LAST_WEIGHTS


def train_state(run_dir: str | Path) -> Path:
    """A run's exact-resume state: ``<run_dir>/weights/train_state.pt``."""
    return weights_dir(run_dir) / TRAIN_STATE


class OutputError(UserInputError):
    """A run's output could not be written: no space left, or a folder that is not writable."""


class RunLock:
    """An exclusive claim on a run folder: an advisory lock (``flock``) on ``<folder>/.semiyolo.lock`` (or
    ``lock_name``), which holds the owner's process id for messages. The kernel drops the lock when its process
    ends, so a killed run's claim is free at once, and two processes can never both hold it (a lock file removed
    and made again between one's open and its lock is noticed, and tried again). Within one process the claim is
    re-entrant: a trainer inside an ablation that holds its run folder shares the claim, and the lock file goes only
    when the last holder releases it."""

    def __init__(self, folder: str | Path, lock_name: str = LOCK_NAME) -> None:
        self.folder = Path(folder)
        self.path = self.folder / lock_name
        self.held = False

    def acquire(self) -> None:
        owner = self.try_acquire()
        if owner is not None:
            raise ConfigError(
                f"{self.folder}: another run (process {owner}) is writing to this folder; give train.name "
                "another value, or wait for that run to finish"
            )

    def try_acquire(self) -> int | None:
        """Claim the folder; ``None`` when this process holds it now, else the process that does (0 if it has
        not written its id yet)."""
        if self.held:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        key = self._key()
        if key in _HELD_HERE:
            _HELD_HERE[key][1] += 1
            self.held = True
            return None
        while True:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return self._owner()
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file while we opened it: lock the one there now
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        _HELD_HERE[key] = [fd, 1]
        self.held = True
        return None

    def release(self) -> None:
        if not self.held:
            return
        key = self._key()
        fd, count = _HELD_HERE[key]
        if count > 1:
            _HELD_HERE[key][1] = count - 1
        else:
            del _HELD_HERE[key]
            self.path.unlink(missing_ok=True)  # before the unlock: a waiting process then finds the file gone
            os.close(fd)
        self.held = False

    def _key(self) -> Path:
        return self.folder.resolve() / self.path.name

    def _owner(self, wait: float = 1.0) -> int:
        """The holder's process id from the lock file (it writes it just after locking: wait that long)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                return int(self.path.read_text().strip())
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    return 0
                time.sleep(0.02)


_HELD_HERE: dict[Path, list[int]] = {}  # the lock files this process holds: [open descriptor, RunLock holders]


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open ``fd`` is still the file at ``path``."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def describe_write_error(err: BaseException, path: str | Path) -> OutputError | None:
    """The one-line :class:`OutputError` for a failed write to ``path``, or ``None`` if ``err`` is not about
    space or permissions. torch's zip writer reports a full disk as a ``RuntimeError`` ("unexpected pos")."""
    code = getattr(err, "errno", None)
    if code == errno.ENOSPC or (isinstance(err, RuntimeError) and "unexpected pos" in str(err)):
        return OutputError(f"no space left on the device of {path}; free some space, then resume the run")
    if code in (errno.EACCES, errno.EROFS, errno.EPERM):
        return OutputError(f"{path} is not writable ({os.strerror(code)}); give train.project a writable folder")
    return None
