"""Where commands write, checked before any model loads.

A typo in ``--out`` or an output folder on a read-only disk should cost a second, not a model load
and a whole run: every command that writes a file (batch, evaluate's store, bench, the trainers)
calls these first. Writability is probed by creating and removing a file, because ``os.access``
answers "yes" to root on a read-only file system and to everyone on some network mounts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.errors import UserError


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _probe_writable(folder: Path, what: str) -> None:
    """Create and remove a file in ``folder``; a refusal becomes one line naming ``what``."""
    try:
        fd, name = tempfile.mkstemp(prefix=".m2t-write-check-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {folder} ({exc.strerror or exc.__class__.__name__})") from None


def writable_file(path: str | Path, flag: str, *, make_parents: bool = False) -> Path:
    """``path`` as a file this process can create or replace; otherwise a one-line :class:`UserError`.

    ``make_parents=False`` (batch ``--out``): a missing folder is an error, because a typo in the folder
    name would otherwise scatter results into a new tree. ``True`` (bench results, the results store):
    missing folders below an existing, writable one are created when the file is written.
    """
    path = Path(path).expanduser()
    label = f"{flag} {path}"
    try:
        if path.is_dir():
            raise UserError(f"{label}: is a folder; give a file name, e.g. {path / 'out.csv'}")
        parent = path.parent
        if not parent.exists():
            ancestor = _existing_ancestor(parent)
            if not make_parents:
                raise UserError(f"{label}: the folder {parent} does not exist; create it first")
            if not ancestor.is_dir():
                raise UserError(f"{label}: {ancestor} is a file, not a folder")
            _probe_writable(ancestor, label)
            return path
        if not parent.is_dir():
            raise UserError(f"{label}: {parent} is a file, not a folder")
        _probe_writable(parent, label)
        if path.exists() and not os.access(path, os.W_OK):
            raise UserError(f"{label}: the file exists and is read-only")
    except OSError as exc:  # a name too long, a path through a file, …
        raise UserError(f"{label}: not a usable path ({exc.strerror or exc.__class__.__name__})") from None
    return path


def writable_folder(path: str | Path, flag: str) -> Path:
    """``path`` as a folder this process can create (with its parents) or write into."""
    path = Path(path).expanduser()
    label = f"{flag} {path}"
    try:
        if path.exists():
            if not path.is_dir():
                raise UserError(f"{label}: is a file, not a folder")
            _probe_writable(path, label)
            return path
        ancestor = _existing_ancestor(path)
        if not ancestor.is_dir():
            raise UserError(f"{label}: {ancestor} is a file, not a folder")
        _probe_writable(ancestor, label)
    except OSError as exc:
        raise UserError(f"{label}: not a usable path ({exc.strerror or exc.__class__.__name__})") from None
    return path
