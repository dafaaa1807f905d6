"""Atomic writes: a file or a whole folder appears complete or not at all, never half-written.

Run directories' metadata (`mtbench.run.rundir`), checkpoints (`mtbench.run.checkpoint`) and
reports (`mtbench.report`) all write through here: into a temporary sibling, flushed to disk, then
renamed into place (a rename within one folder is atomic on POSIX). A crash leaves the previous
content; what a killed write left behind is a dot-name ending in ``.tmp-*`` (`leftovers`).

A write the disk refuses (full, over quota, read-only, an I/O error) removes its temporary and
raises `mtbench.settings.errors.WriteFailed`, which names the file, the cause, the free space and
the fix; the previous content stays.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from mtbench.settings.errors import WriteFailed

STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}
"""What the disk, not the program, is to blame for."""


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def leftovers(folder: Path) -> list[Path]:
    """What interrupted atomic writes left in ``folder`` (safe to delete once no write is running)."""
    return sorted(folder.glob(".*.tmp-*"))


@contextlib.contextmanager
def _storage_errors(path: Path) -> Iterator[None]:
    """Turn the disk's refusal to write ``path`` into `WriteFailed` with the fix."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in STORAGE_ERRORS:
            raise
        existing = next(p for p in (path, *path.parents) if p.exists())
        free = shutil.disk_usage(existing).free / 2**20
        code = errno.errorcode.get(exc.errno or 0, exc.errno)
        raise WriteFailed(
            f"could not write {path}: {exc.strerror or exc} ({code}; "
            f"{free:.0f} MiB free there). What was written before is intact: free some space (or fix the "
            "disk) and run the same command again; an unfinished run resumes from its last checkpoint"
        ) from exc


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    write_with(path, lambda tmp: tmp.write_text(text))


def write_with(path: Path, write: Callable[[Path], object]) -> None:
    """Let ``write`` fill a temporary file beside ``path`` (with its suffix: SB3's ``save`` keeps a
    ``.zip``), then flush it and rename it to ``path``."""
    with _storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=path.suffix)
        os.close(fd)
        tmp = Path(name)
        try:
            write(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read by others
            _fsync(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def folder(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; when the block ends without an exception,
    its files are flushed to disk and it replaces ``path`` (an earlier ``path`` is removed only
    once the new one is in place). On an exception nothing changes and the temporary is removed."""
    with _storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_tmp_prefix(path)))
        try:
            yield tmp
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700
            for file in (p for p in tmp.rglob("*") if p.is_file()):
                _fsync(file)
            _fsync(tmp)
            _swap_in(tmp, path)
            _fsync(path.parent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, out: Path) -> None:
    """Rename ``new`` to ``out``; an earlier ``out`` is removed only once ``new`` is in place."""
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old.tmp-"))
    os.replace(out, old / out.name)
    try:
        os.replace(new, out)
    except OSError:
        os.replace(old / out.name, out)  # put the earlier content back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
