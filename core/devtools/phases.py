"""One measured phase of a bench in a fresh Python process: its peak memory (``ru_maxrss``) is then its own.

The phase is a script that prints one JSON object as its last line; a failing phase raises with the end of its
stderr, so a bench never reports numbers from a run that did not finish.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_phase(script: str, *args: object, what: str = "bench phase") -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *(str(a) for a in args)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
