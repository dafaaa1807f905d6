"""Atomic writes: a file or a whole folder appears complete or not at all, never half-written.

Run directories' metadata (:mod:`mtbench.rundir`), checkpoints (:mod:`mtbench.checkpoint`) and
reports (:mod:`mtbench.report`) all write through here: into a temporary sibling, flushed to disk, then
renamed into place (a rename within one folder is atomic on POSIX). A crash leaves the previous
content; what a killed write left behind is a dot-name ending in ``.tmp-*`` (:func:`leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def leftovers(folder: Path) -> list[Path]:
    """What interrupted atomic writes left in ``folder`` (safe to delete once no write is running)."""
    return sorted(folder.glob(".*.tmp-*"))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path))
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be read by others
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_with(path: Path, write: Callable[[Path], None]) -> None:
    """Let ``write`` fill a temporary file beside ``path`` (with its suffix: SB3's ``save`` keeps a
    ``.zip``), then flush it and rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
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
