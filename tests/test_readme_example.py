"""The README's worked example runs as shown: its commands, its progress lines, its stage lines.

The example is real output pasted from a run; this test runs the same commands in a fresh process (the
``.venv/bin/…`` paths mapped to this interpreter) and compares what does not depend on the CPU: the progress lines
on stderr, the OCR line (rendered text, read exactly), the transcript line and that the tweet opens with the
poster's words (the facts-first opening). The tweet's continuation is the model's own and is not compared.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _example() -> tuple[list[list[str]], list[str]]:
    """The worked example's commands (``$`` lines, continuations joined) and the output lines that follow them."""
    section = README.split("## Worked example", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    commands, output, current = [], [], ""
    for line in block.splitlines():
        if line.startswith("$ ") or current:
            current += line.removeprefix("$ ").rstrip("\\").strip() + " "
            if not line.endswith("\\"):
                commands.append(shlex.split(current))
                current = ""
        else:
            output.append(line)
    return commands, output


def _argv(command: list[str]) -> list[str]:
    program, *args = command
    if program == ".venv/bin/python":
        return [sys.executable, *args]
    if program == ".venv/bin/m2t":
        return [sys.executable, "-m", "core", *args]
    raise AssertionError(f"the README's example runs {program!r}, which this test does not know")


def test_the_example_parses_into_commands_and_output() -> None:
    commands, output = _example()
    assert [c[0] for c in commands][-1] == ".venv/bin/m2t" and "predict" in commands[-1]
    assert any(line.startswith("ocr:") for line in output) and any(line.startswith("caption:") for line in output)


@pytest.mark.slow
def test_the_worked_example_runs_as_the_readme_shows(tmp_path: Path) -> None:
    commands, output = _example()
    runs = [subprocess.run(_argv(c), cwd=tmp_path, capture_output=True, text=True, timeout=600) for c in commands]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    predict = runs[-1]
    stdout, stderr = predict.stdout.splitlines(), predict.stderr.splitlines()
    shown_progress = [line for line in output if line.startswith(("loading ", "preparing ")) or line.endswith(": done")]
    assert shown_progress and [line for line in stderr if line in shown_progress] == shown_progress, predict.stderr
    for label in ("ocr: ", "transcript: "):
        shown = next(line for line in output if line.startswith(label) and not line.endswith(": done"))
        assert shown in stdout, (shown, predict.stdout)
    shown_tweet = output[output.index("") + 1] if "" in output else ""
    got_tweet = stdout[stdout.index("") + 1]
    opening = " ".join(shown_tweet.split()[:4])
    assert opening and got_tweet.startswith(opening), (shown_tweet, got_tweet)
