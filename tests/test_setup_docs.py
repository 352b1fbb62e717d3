"""The README's set-up is the whole set-up: CI runs nothing the README does not name."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()
INSTALL = (ROOT / "install.sh").read_text()

# Lines of .ci/run that are control flow around the README's commands, not set-up steps.
CONTROL = re.compile(r"^(set [-+][a-z ]+|cd \"\$\(dirname \"\$0\"\)/\.\.\"|status=\$\?|if \[.*|fi|exit .*|"
                     r"echo .*|then|else)$")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _commands(block: str) -> list[str]:
    """Shell commands in a section's ```bash blocks, comments removed."""
    found = []
    for code in re.findall(r"```bash\n(.*?)```", block, re.S):
        for line in code.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


def _ci_steps() -> list[str]:
    steps = []
    for line in CI.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#") or CONTROL.match(line):
            continue
        steps.append(line)
    return steps


def test_ci_runs_only_the_readme_commands() -> None:
    readme = _commands(_section("Set up")) + _commands(_section("Tests"))
    assert readme[0] == "bash install.sh" and ".venv/bin/python -m pytest" in readme
    extra = [step for step in _ci_steps() if step not in readme]
    assert not extra, f".ci/run runs set-up steps the README does not name: {extra}"
    assert _ci_steps() == ["bash install.sh", ".venv/bin/python -m pytest"]


def test_ci_fails_when_pytest_collects_nothing() -> None:
    assert '"$status" -eq 5' in CI and "exit 1" in CI


def test_readme_names_every_debian_package_install_sh_installs() -> None:
    match = re.search(r'^APT_PACKAGES="([^"]+)"', INSTALL, re.M)
    assert match, "install.sh keeps its Debian packages in APT_PACKAGES"
    setup = _section("Set up")
    for package in shlex.split(match.group(1)):
        assert f"`{package}`" in setup, f"README's Set up does not name {package}"


def test_fonts_the_fixtures_use_come_from_packages_install_sh_installs() -> None:
    from core.devtools.synthetic import _LEGIBLE_FONTS, font_package

    packages = shlex.split(re.search(r'^APT_PACKAGES="([^"]+)"', INSTALL, re.M).group(1))
    for font in _LEGIBLE_FONTS:
        assert font_package(font) in packages, font


def test_the_default_llm_is_the_one_the_docs_measurement_chose():
    """docs/brand-voice.md's model-choice table marks one row as the default; the registry must agree with it."""
    from core.registry import resolve

    doc = (ROOT / "docs" / "brand-voice.md").read_text()
    table = re.search(r"^## Which LLM is the default \(measured\)\n(.*?)(?=^#{1,3} )", doc, re.S | re.M)
    assert table, "docs/brand-voice.md has no '## Which LLM is the default (measured)' section"
    chosen = re.findall(r"^\| \*\*([\w.-]+) \(default\)\*\* \|", table.group(1), re.M)
    assert len(chosen) == 1, "exactly one row of the table is marked (default)"
    assert resolve("llm", profile="offline").model == chosen[0]
