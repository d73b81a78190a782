"""One run per output: an exclusive lock on a file beside the output, held for the run.

Two runs writing the same output would share one work folder and overwrite each other's
segments, so the second refuses at once (`OutputBusyError`, naming the first's process).
The lock is `flock` on `.NAME.ghost-lock`: the kernel drops it when its holder dies, so a
killed run never blocks the next one. The holder removes the file when it is done; a run
that opened a file its previous holder had just removed tries again on the new one.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ghost_engine.errors import OutputBusyError, one_line
from ghost_engine.video.output import own_path, translate_write_error

try:
    import fcntl
except ImportError:  # not a POSIX system: runs are not serialised there
    fcntl = None  # type: ignore[assignment]

_ATTEMPTS = 5


def lock_path_for(output: Path) -> Path:
    return own_path(Path(output), "ghost-lock")


class OutputLock:
    """`with OutputLock(output):` holds the output's lock or raises OutputBusyError.

    Not re-entrant: a second lock on the same output, even in this process, is refused
    (flock locks belong to the open file, not the process).
    """

    def __init__(self, output: Path) -> None:
        self.output = Path(output)
        self.path = lock_path_for(self.output)
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        if fcntl is None or self._fd is not None:
            return self
        for _ in range(_ATTEMPTS):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise translate_write_error(exc, self.path) from exc
                who = f" (process {holder})" if holder else ""
                raise OutputBusyError(
                    f"another ghost-engine run{who} is writing {one_line(str(self.output))}; "
                    "wait for it to finish or choose another output",
                    path=self.output,
                ) from exc
            if self._still_current(fd):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return self
            os.close(fd)  # its holder removed it between our open and our lock
        raise OutputBusyError(
            f"the lock of {one_line(str(self.output))} keeps changing; another run is "
            "starting on it: wait for it or choose another output",
            path=self.output,
        )

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: no one else holds it
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise translate_write_error(exc, self.path) from exc

    def _still_current(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def check_output_free(output: Path) -> None:
    """Refuse now, before any model loads, if another run holds the output's lock (the
    run itself takes the lock later and holds it to the end)."""
    with OutputLock(output):
        pass


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
