"""One lock per output name, so that two runs sharing an output folder never write the same file.

Two `track` runs into one folder (the same batch started twice, two machines
on a shared disk, Ray workers) would otherwise write the same `.part` files
and rename interleaved bytes to a final name. `hold_output_lock(OUT/v1.lock)`
takes an exclusive `flock` on that file and writes the holder's process id and
host into it, so a second run is told who writes `v1` and can go on with other
inputs. The kernel drops the lock when its process dies (killed, second
Ctrl-C, a Ray worker out of memory), so a lock file left on disk is never
stale: only a live process holds one. Network filesystems that implement
`flock` (NFS through its lock manager) share it between machines.

Platforms without `fcntl` (Windows) fall back to creating the file
exclusively; such a file outlives a killed process and the message says to
remove it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_SUFFIX = ".lock"


class OutputBusyError(OSError):
    """Another process holds an output's lock; `holder` is its "pid N on HOST" (or "" when unknown)."""

    def __init__(self, path: Path, holder: str) -> None:
        who = f"another hrtrack ({holder})" if holder else "another hrtrack"
        super().__init__(errno.EBUSY, f"{who} is writing these outputs (lock {path})")
        self.path = path
        self.holder = holder


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        return ""
    return f"pid {text[0]} on {text[1]}" if len(text) >= 2 else ""


def _acquire(path: Path) -> int:
    """The open, locked descriptor of `path` with this process written into it; OutputBusyError if held."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover - Windows
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise OutputBusyError(path, f"or a killed run: remove {path} if none is running") from None
            break
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # another run removed the folder it had made for its lock: make it again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _holder(fd)
            os.close(fd)
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OutputBusyError(path, holder) from None
            raise
        # The previous holder removes the file as it lets go: a lock taken on a file that is
        # no longer at `path` guards nothing, so open the path again.
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def hold_output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold `path` exclusively for the block (see the module doc); OutputBusyError naming the holder if taken.

    The file is removed when the block ends, while still locked, so that no one
    locks a file on its way out, and so are the folders made for it that are
    still empty (an input that failed leaves no folder behind).
    """
    path = Path(path)
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    fd = _acquire(path)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)
        for folder in made:  # deepest first
            try:
                folder.rmdir()
            except OSError:  # holds outputs, or another run's lock
                break
