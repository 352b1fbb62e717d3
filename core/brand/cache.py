"""Cache folders keyed by a dump's bytes (the history index, the likes model), written so no reader sees half of one.

Several processes may build the same entry at once (a batch's Ray workers, two app visitors, the CLI beside
the app): each saves into a temporary sibling, marks it complete, and renames it into place; whoever comes
second drops its copy. A folder without the mark, or one that fails to load, is rebuilt, never trusted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

COMPLETE = ".complete"  # written last, so its presence means every file of the entry is there


def is_complete(root: Path) -> bool:
    return (root / COMPLETE).exists()


def discard(root: Path) -> None:
    """Drop a damaged entry so the next build can take its place."""
    shutil.rmtree(root, ignore_errors=True)


def publish(root: Path, save: Callable[[Path], None], source: str | Path) -> None:
    """``save`` the entry into a temporary folder, then move it to ``root`` in one rename. A cache that cannot be
    written is no error: the caller keeps what it built, and builds it again next time."""
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        save(tmp)
        (tmp / COMPLETE).write_text(str(source))
        if root.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # another process cached it meanwhile
        else:
            tmp.rename(root)
    except OSError:
        pass
