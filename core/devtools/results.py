"""The benchmark results file (``bench/results.json``): each ``m2t bench`` part adds its section to it.

Its own module so every bench part (models, engines, batch, history index, likes) writes it the same way
without importing another part's module.
"""

from __future__ import annotations

import json
from pathlib import Path


def merge_results(path: str | Path, parts: dict) -> Path:
    """Add ``parts`` to the results file, keeping what other bench parts wrote there (an unreadable file starts
    afresh); returns its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        results = json.loads(out.read_text()) if out.is_file() else {}
    except ValueError:
        results = {}
    results.update(parts)
    out.write_text(json.dumps(results, indent=2))
    return out
