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

__all__ = ["atomic_write", "atomic_write_text", "check_folder_path", "file_in_folder",
           "make_folder", "remove_stale_temporaries", "temporary_name"]

#: Image formats a figure or a sample grid may be written as (matplotlib and PIL both write them).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".tif", ".tiff", ".webp", ".bmp")


def check_folder_path(name: str, path: object) -> Path:
    """Argument ``name`` as a folder path, checked without creating anything: a non-empty path
    (``""`` would silently be the working directory) that is not an existing file.

    Examples:
        >>> check_folder_path("out_dir", "")
        Traceback (most recent call last):
        ...
        ValueError: out_dir: expected a folder path, got an empty string
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"{name}: expected a folder path, got {type(path).__name__}")
    if isinstance(path, str) and not path.strip():
        raise ValueError(f"{name}: expected a folder path, got an empty string")
    folder = Path(path)
    for above in (folder, *folder.parents):
        if above.exists():
            if not above.is_dir():
                raise ValueError(f"{name}: {str(above)!r} exists and is not a folder")
            break
    return folder


def make_folder(name: str, path: object) -> Path:
    """Create folder ``path`` (argument ``name``) with its parents; any failure (an existing file
    in the way, a read-only or virtual file system such as ``/proc``, no permission) is one
    ``ValueError`` naming the argument.

    Examples:
        >>> import tempfile
        >>> make_folder("out", Path(tempfile.mkdtemp()) / "a" / "b").is_dir()
        True
        >>> make_folder("out", "/proc/ppdgm")
        Traceback (most recent call last):
        ...
        ValueError: out: cannot create the folder '/proc/ppdgm': No such file or directory
    """
    folder = check_folder_path(name, path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{name}: cannot create the folder {str(folder)!r}: "
                         f"{err.strerror or err}") from err
    return folder


def file_in_folder(name: str, path: object, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path:
    """Argument ``name`` as a file to write: its suffix one of ``suffixes`` (the format is read
    from it), its folder created as :func:`make_folder` does.

    Examples:
        >>> try:
        ...     file_in_folder("path", "samples.gif")
        ... except ValueError as err:
        ...     print(str(err)[:47])
        path: expected a file name ending in .png, .jpg
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"{name}: expected a file path, got {type(path).__name__}")
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        listed = ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
        raise ValueError(f"{name}: expected a file name ending in {listed}, got {str(path)!r}")
    if target.is_dir():
        raise ValueError(f"{name}: {str(path)!r} is a folder; expected a file path")
    make_folder(name, target.parent)
    return target


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
    if path.is_dir():
        raise ValueError(f"path: {str(path)!r} is a folder; expected a file path")
    make_folder("path", path.parent)
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
