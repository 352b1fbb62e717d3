"""The docs tell the truth about the tree: links resolve, every `m2t` command and option they show exists,
and the README stays a front door (at most 2,500 words).

Docs drift silently: a renamed heading breaks every link to it, a renamed flag leaves a command that fails
when pasted. Each failure names the file and line, so whoever changed the code or the doc can fix it.
The parser is built in-process (``core.__main__.build_parser``), which is what ``m2t … --help`` prints.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from core.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_WORDS = 2500


def _doc_files() -> list[Path]:
    """README.md, every page under docs/, and the trainers' README."""
    return [README, *sorted((ROOT / "docs").rglob("*.md")), ROOT / "training" / "README.md"]


DOCS = _doc_files()
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
COMMAND = re.compile(r"(?:(?<![\w.\-])m2t|python3? -m core)[ \t]+(?P<sub>[a-z][\w-]*)")
OPTION = re.compile(r"(?<![\w-])(--[A-Za-z0-9][\w-]*)")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line number, text, inside a fenced code block) for every line; the fence lines themselves are code."""
    in_code = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if FENCE.match(line):
            in_code = not in_code
            yield number, line, True
            continue
        yield number, line, in_code


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower case, punctuation dropped, spaces to hyphens."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"[*_]{1,3}(\S[^*_]*?)[*_]{1,3}", r"\1", text)  # emphasis markers
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def _anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 … suffixes for repeated headings."""
    seen: dict[str, int] = {}
    anchors = set()
    for _, line, in_code in _lines(path):
        match = None if in_code else HEADING.match(line)
        if not match:
            continue
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(anchors)


def _link_problems(path: Path) -> list[str]:
    problems = []
    for number, line, in_code in _lines(path):
        if in_code:
            continue
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if SCHEME.match(target):
                continue  # http(s), mailto: outside this repository
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            where = f"{_rel(path)}:{number}: link ({target})"
            if not resolved.is_relative_to(ROOT):
                problems.append(f"{where} leaves the repository")
            elif not resolved.exists():
                problems.append(f"{where}: no file {_rel(resolved)}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                problems.append(f"{where}: {_rel(resolved)} has no heading with anchor #{anchor}")
    return problems


def _code_segments(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, code, fenced): each fenced line (backslash continuations joined) and each inline code span."""
    pending: tuple[int, str] | None = None
    for number, line, in_code in _lines(path):
        if in_code:
            if FENCE.match(line):
                continue
            start, text = pending if pending else (number, "")
            text += line
            if text.endswith("\\"):
                pending = (start, text[:-1] + " ")
                continue
            pending = None
            yield start, text, True
        else:
            for match in INLINE_CODE.finditer(line):
                yield number, match.group(2), False


def _until_command_ends(rest: str, fenced: bool) -> str:
    """The part of a command line that belongs to it: up to a shell comment, pipe, `&&` or `;`.

    A `|` inside `[...]` is a usage alternative (`[--actors N | --actors ocr=2]`) and `\\|` a table's
    escaped pipe, so neither ends the command."""
    if fenced and " #" in rest:
        rest = rest.split(" #", 1)[0]
    depth = 0
    for i, char in enumerate(rest):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif depth == 0 and (char == ";" or rest.startswith("&&", i)
                             or (char == "|" and (i == 0 or rest[i - 1] != "\\"))):
            return rest[:i]
    return rest


@cache
def _subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every `m2t` subcommand and alias, mapped to its parser."""
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _command_problems(path: Path) -> list[str]:
    problems = []
    commands = _subcommands()
    for number, code, fenced in _code_segments(path):
        matches = list(COMMAND.finditer(code))
        for i, match in enumerate(matches):
            sub = match.group("sub")
            end = matches[i + 1].start() if i + 1 < len(matches) else len(code)
            shown = _until_command_ends(code[match.end():end], fenced)
            where = f"{_rel(path)}:{number}: `{' '.join(['m2t', sub, *shown.split()])}`"
            if sub not in commands:
                problems.append(f"{where}: no command {sub!r} (m2t has: {', '.join(sorted(commands))})")
                continue
            known = commands[sub]._option_string_actions
            problems += [f"{where}: `m2t {sub}` has no option {option}"
                         for option in OPTION.findall(shown) if option not in known]
    return problems


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_every_relative_link_resolves(path: Path) -> None:
    problems = _link_problems(path)
    assert not problems, "broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_every_command_and_option_shown_exists(path: Path) -> None:
    problems = _command_problems(path)
    assert not problems, "commands or options that `m2t … --help` does not have:\n" + "\n".join(problems)


def test_readme_is_a_front_door() -> None:
    words = len(README.read_text().split())
    assert words <= README_MAX_WORDS, f"README.md has {words} words (at most {README_MAX_WORDS}); move detail to docs/"


def test_the_docs_index_lists_every_page() -> None:
    """docs/README.md links to every page in docs/, so none is reachable only by browsing the folder."""
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / t.partition("#")[0]).resolve()
              for _, line, code in _lines(index) if not code for t in LINK.findall(line)}
    missing = [_rel(p) for p in DOCS if p.parent.is_relative_to(index.parent) and p != index and p not in linked]
    assert not missing, f"docs/README.md does not link to: {missing}"


def test_the_checks_catch_what_they_are_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A made-up command, option, file and anchor are each reported with their line; real ones are not."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "other.md").write_text("# A `code` heading: yes\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-code-heading-yes) [ok](other.md#twice-1) [web](https://example.com)\n"  # 1
        "[gone](missing.md) [bad anchor](other.md#nope)\n"  # 2
        "```bash\n"  # 3
        "m2t predict --company C \\\n"  # 4
        "    --no-such-flag --json | jq --raw-output   # a comment: --x\n"  # 5
        "m2t batch in.csv --out o.csv --engine ray [--actors N | --actors ocr=2]\n"  # 6
        "```\n"  # 7
        "`m2t transcribe --format srt`, `m2t frobnicate --top 3`, `.venv/bin/m2t serve --tunnel --nope`\n"  # 8
        "`m2t asr AUDIO [--format txt\\|srt] [--bogus]` and `M2T_PROFILE=hub`\n"  # 9
    )
    links = _link_problems(page)
    assert [p.split(": ", 1)[0] for p in links] == ["page.md:2", "page.md:2"]
    assert "no file missing.md" in links[0] and "no heading with anchor #nope" in links[1]
    found = _command_problems(page)
    assert len(found) == 4, found
    assert found[0].startswith("page.md:4: ") and found[0].endswith("`m2t predict` has no option --no-such-flag")
    assert found[1].startswith("page.md:8: ") and "no command 'frobnicate'" in found[1]
    assert found[2].startswith("page.md:8: ") and found[2].endswith("`m2t serve` has no option --nope")
    assert found[3].startswith("page.md:9: ") and found[3].endswith("`m2t asr` has no option --bogus")
