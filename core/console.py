"""Terminal output and exit codes shared by every command.

Machine-readable results go to stdout (``--json``), progress and errors to stderr, so
``m2t predict … --json | jq`` works. Errors a person can fix are one line and a non-zero
exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from core.errors import UserError

EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran, but some inputs failed (each reported on stderr)
EXIT_USER_ERROR = 2  # bad arguments or inputs: nothing was done
EXIT_INTERRUPTED = 130


def say(message: str) -> None:
    """A progress or error line on stderr (stdout stays clean for ``--json``)."""
    print(message, file=sys.stderr, flush=True)


def emit(data: Any, as_json: bool, human: str) -> None:
    """The command's result on stdout: JSON for machines, ``human`` for people."""
    print(json.dumps(data, ensure_ascii=False, indent=2) if as_json else human)


def progress(iterable: Iterable, desc: str, total: int | None = None, unit: str = "file"):
    """A tqdm bar on stderr that hides itself when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, unit=unit, disable=None)


def quiet_libraries(offline: bool) -> None:
    """Keep stderr for our progress; stop hub lookups when the profile is offline.

    Environment variables only: importing transformers here would add seconds to every command,
    including those that fail on a bad argument before any model loads.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")


def run_guarded(run: Callable[[], int]) -> int:
    """Run a command, turning the errors a person can act on into one line and an exit code."""
    try:
        return run()
    except UserError as exc:
        say(f"error: {exc}")
        return EXIT_USER_ERROR
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not an error worth a traceback
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    except MemoryError:
        say("error: out of memory; try a smaller model (--model smollm2-135m) or fewer candidates")
        return EXIT_FAILURE


# --------------------------------------------------------------------------- argparse types shared by every command


def _number(text: str, kind: type, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    """A whole number of at least 1 (0 tokens or a batch of 0 is a typo, not a request)."""
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of 0 or more (e.g. ``--examples 0``: the no-history baseline)."""
    value = _number(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value
