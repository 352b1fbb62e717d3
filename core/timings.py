"""Where a command's cold seconds go: start-up, each model load, each stage, and the whole run.

Why: a one-tweet ``m2t predict`` took ~4x a warm tweet, and the only way to shorten that is to know
which part is which. Model loads run in background threads and overlap the stages, so the table
gives each load's own duration and, apart, how long the prediction actually waited for models;
the parts therefore do not add up to the total, which is the wall clock from process start.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field


def process_age() -> float:
    """Seconds since this process started (interpreter start-up and imports included)."""
    try:
        import psutil

        return max(0.0, time.time() - psutil.Process(os.getpid()).create_time())
    except Exception:  # no psutil or no process table: unknown, reported as 0
        return 0.0


def load_label(task: str, name: str, model: object, backend: str = "") -> str:
    """``caption (efficientnet-lite0, onnx)``: which model, and what runs it (its ``runtime``, else its LLM
    ``engine``, else the registry's backend), since a load's seconds differ by that more than by anything else."""
    runs_on = getattr(model, "runtime", "") or getattr(model, "engine", "") or backend
    return f"{task} ({name}, {runs_on})" if runs_on else f"{task} ({name})"


@dataclass
class Timings:
    """Named durations, filled from any thread; ``kind`` groups them (start-up, load, stage, total)."""

    rows: list[tuple[str, str, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, name: str, seconds: float) -> None:
        with self._lock:
            self.rows.append((kind, name, seconds))

    def to_dict(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        with self._lock:
            for kind, name, seconds in self.rows:
                out.setdefault(kind, {})[name] = round(seconds, 3)
        return out

    def table(self) -> str:
        """One line per part, grouped by kind in the order first added; loads are marked as overlapping."""
        with self._lock:
            rows = list(self.rows)
        kinds = list(dict.fromkeys(kind for kind, _, _ in rows))
        width = max((len(name) for _, name, _ in rows), default=10) + 2
        lines = ["where the seconds went:"]
        for kind in kinds:
            note = " (in the background, overlapping the stages)" if kind == "load" else ""
            lines.append(f"  {kind}{note}")
            lines += [f"    {name:<{width}}{seconds:7.2f} s" for k, name, seconds in rows if k == kind]
        return "\n".join(lines)
