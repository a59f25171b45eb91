"""The one way steertui writes a user's file: atomically.

The new content goes to a temporary file in the same folder (``.NAME.XXXX.tmp``, so the final move never
crosses a file system), is flushed and fsynced, gets the permissions the file would have had if written plainly
(the old file's, else 0o666 minus the umask), and is moved over the old file with ``os.replace``; then the
folder is fsynced so the rename itself survives a power cut. On any failure, or when the process is killed, the
old file stays as it was and the temporary file is removed (or, after a kill, left with a name no reader takes,
and removed by the next save of the same file).
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "finite_json", "publish",
           "remove_stale_temps"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> Path:
    """Write ``path`` atomically: ``write(tmp_path)`` fills a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def finite_json(value: Any) -> Any:
    """The data with every NaN or infinity replaced by null: JSON has no such numbers (a mean over no files, a
    ratio of an unmeasured row)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """``data`` as indented JSON (NaN and infinities as null, :func:`finite_json`), atomically."""
    return atomic_write_text(path, json.dumps(finite_json(data), indent=1, allow_nan=False) + "\n")


STALE_SECONDS = 300  # a save takes well under a second; a temporary file this old was left by a killed save


def remove_stale_temps(path: str | os.PathLike[str], now: float | None = None) -> list[Path]:
    """Remove the temporary files a killed save of ``path`` left beside it (``.NAME.*.tmp`` older than
    :data:`STALE_SECONDS`); younger ones may belong to a save in progress and stay. Returns what was removed."""
    import time

    path = Path(path)
    now = time.time() if now is None else now
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if tmp.is_file() and not tmp.is_symlink() and now - tmp.stat().st_mtime > STALE_SECONDS:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Move a finished temporary file or folder onto ``path`` (same folder) and fsync that folder."""
    os.replace(tmp, path)
    _fsync_dir(Path(path).parent)


def _mode_for(path: Path) -> int:
    """The permissions the file would get if written plainly: the old file's, else 0o666 minus the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask, read once (setting it to read it is not thread-safe, so it is done only once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
