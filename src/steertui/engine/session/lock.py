"""One writer per session file: a lock file beside it, ``NAME.toml.lock``.

The lock is created with ``O_CREAT | O_EXCL`` (so exactly one process gets it) and holds the writer's pid, host
and start time as JSON. A lock whose pid no longer runs on this host was left by a killed writer: it is stale
and taken over. A lock of another host, or one that cannot be read, is never taken over (its holder cannot be
checked): the error names it, to delete by hand. The lock is removed by :meth:`SessionLock.release`, when its
object is collected, and at interpreter exit; never by a forked child.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from steertui.engine.session.store import SessionSaveError, lock_path

_HELD: set[str] = set()  # the lock files this process holds
_HELD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says (``None`` where the file could not be read)."""

    pid: int | None
    host: str | None
    since: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "an unknown process (the lock file cannot be read)"
        return f"pid {self.pid} on {self.host}" + (f", since {self.since}" if self.since else "")

    @property
    def this_host(self) -> bool:
        return self.host == socket.gethostname()

    @property
    def this_process(self) -> bool:
        return self.this_host and self.pid == os.getpid()


class SessionLockedError(SessionSaveError):
    """Another writer holds the session file: ``<file>: is being written by pid N on HOST — what to do``."""

    def __init__(self, path: str | os.PathLike[str], lock: Path, holder: Holder) -> None:
        self.lock = lock
        self.holder = holder
        if holder.this_process:
            hint = "close the recorder that has it open first"
        else:
            hint = "quit that steertui first, or open a copy of the file"
            if holder.this_host and holder.pid is not None:
                hint += f"; the lock {lock} is taken over once that process has ended"
            else:
                where = f" on {holder.host}" if holder.host else ""
                hint += f"; if no steertui{where} is using it, delete {lock}"
        problem = "is already open for writing in this process" if holder.this_process else \
            f"is being written by another steertui ({holder.describe()})"
        super().__init__(path, "", problem, hint)


def _read(lock: Path) -> tuple[Holder, bytes] | None:
    """The holder a lock file names and its raw bytes; None when there is no lock file (any more)."""
    try:
        raw = lock.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return Holder(None, None, None), b""
    try:
        data = json.loads(raw)
        holder = Holder(int(data["pid"]), str(data["host"]), data.get("since"))
    except (ValueError, TypeError, KeyError):
        holder = Holder(None, None, None)
    return holder, raw


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's process runs under that pid
        return True
    return True


def _stale(lock: Path, holder: Holder) -> bool:
    """The lock was left by a writer that has ended: its pid no longer runs on this host (or is this process's
    own pid, reused, while this process does not hold the lock)."""
    if holder.pid is None or not holder.this_host:
        return False
    if holder.pid == os.getpid():
        with _HELD_LOCK:
            return str(lock) not in _HELD
    return not _running(holder.pid)


def _release(lock: Path, raw: bytes, pid: int) -> None:
    if os.getpid() != pid:  # a forked child never releases its parent's lock
        return
    with _HELD_LOCK:
        _HELD.discard(str(lock))
    try:
        if lock.read_bytes() == raw:
            lock.unlink()
    except OSError:
        pass


def _cannot_create(path: Path, lock: Path, err: OSError) -> SessionSaveError:
    return SessionSaveError(path, "", f"could not create the lock file {lock} ({err.strerror or type(err).__name__})",
                            "free some space or make the folder writable, or record into another folder "
                            "(STEERTUI_SESSIONS)")


class SessionLock:
    """The lock of one session file, held by this process until :meth:`release`."""

    def __init__(self, path: Path, lock: Path, raw: bytes) -> None:
        self.path, self.lock, self._raw = path, lock, raw
        self._finalizer = weakref.finalize(self, _release, lock, raw, os.getpid())

    @classmethod
    def acquire(cls, path: str | os.PathLike[str]) -> "SessionLock":
        """Take the lock of the session file ``path``. Raises :class:`SessionLockedError` naming the holder when
        another writer has it, :class:`SessionSaveError` when the lock file cannot be created."""
        path = Path(path)
        lock = lock_path(path).absolute()
        holder = Holder(None, None, None)
        for _ in range(5):  # a stale lock taken over, or a lock released, between two looks: look again
            try:
                lock.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                found = _read(lock)
                if found is None:
                    continue
                holder, raw = found
                if _stale(lock, holder):
                    again = _read(lock)
                    if again is not None and again[1] == raw:  # still the same stale lock: remove it
                        try:
                            lock.unlink()
                        except FileNotFoundError:
                            pass
                    continue
                raise SessionLockedError(path, lock, holder) from None
            except OSError as err:
                raise _cannot_create(path, lock, err) from err
            since = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
            raw = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode() + b"\n"
            try:
                if os.write(fd, raw) != len(raw):
                    raise OSError(28, os.strerror(28))
            except OSError as err:
                lock.unlink(missing_ok=True)  # never leave a lock that names no one
                raise _cannot_create(path, lock, err) from err
            finally:
                os.close(fd)
            with _HELD_LOCK:
                _HELD.add(str(lock))
            return cls(path, lock, raw)
        raise SessionLockedError(path, lock, holder)

    @property
    def held(self) -> bool:
        """Not released, and the lock file still is this lock (not deleted, nor taken by another writer)."""
        if not self._finalizer.alive:
            return False
        try:
            return self.lock.read_bytes() == self._raw
        except OSError:
            return False

    def release(self) -> None:
        """Remove the lock file (only if it is still this lock). Safe to call twice."""
        self._finalizer()
