"""Writing files so that a crash, a kill or a full disk never leaves a half-written one.

Every file ppdgm writes goes to a temporary name in the same folder first, is flushed to disk and
then renamed over the old one: readers see the old file or the new one, never a mix.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_text", "remove_stale_temporaries", "temporary_name"]


def temporary_name(path: Path) -> Path:
    """Where :func:`atomic_write` stages ``path`` in this process (``.NAME.tmp-PID``)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then rename it to ``path``.

    On any failure (an exception in ``write``, a full disk, Ctrl-C) the temporary file is
    removed and ``path`` keeps its previous contents. A full disk or a quota is reported as an
    ``OSError`` that names the file and says so.

    Examples:
        >>> import tempfile
        >>> p = atomic_write(Path(tempfile.mkdtemp()) / "a.bin", lambda f: f.write(b"ok"))
        >>> p.read_bytes()
        b'ok'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(err.errno, f"no space left to write {str(path)!r}; the previous version "
                                     "of the file is intact (free some space and run again)") from err
        raise
    except RuntimeError as err:
        # torch.save reports a failed write (a full disk) as a RuntimeError from its zip writer.
        raise OSError(f"could not write {str(path)!r} ({str(err).splitlines()[0] if str(err) else err!r}); "
                      "the previous version of the file is intact") from err
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_directory(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove temporaries of ``path`` left by processes that no longer run (killed mid-write).

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / ".c.pt.tmp-999999999").write_bytes(b"half")
        >>> [p.name for p in remove_stale_temporaries(folder / "c.pt")]
        ['.c.pt.tmp-999999999']
    """
    path = Path(path)
    removed = []
    for candidate in path.parent.glob(f".{path.name}.tmp-*"):
        pid = candidate.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            try:
                candidate.unlink()
                removed.append(candidate)
            except OSError:
                pass  # another process cleaned it first, or it is not ours to remove
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists but belongs to someone else, or cannot be asked: leave it
    return True


def _fsync_directory(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk; not every OS allows this.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
