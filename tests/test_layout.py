"""The package's shape: imports run one way (no cycles), the public API is small, every command has help."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.__main__ import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported (not those imported lazily inside functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {name for name in found if name == "core" or name.startswith("core.")}


def test_core_has_no_import_cycle() -> None:
    modules = {_module_name(p): p for p in CORE.rglob("*.py")}
    graph = {name: {m for m in _top_level_imports(path) if m in modules and m != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_core_imports_no_streamlit() -> None:
    for path in CORE.rglob("*.py"):
        assert "streamlit" not in {n.split(".")[0] for n in _all_imports(path)}, path


def _all_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_public_api_is_small_and_lazy() -> None:
    code = ("import sys, core; assert 'torch' not in sys.modules, 'import core pulled in torch'; "
            "from core import Pipeline, PredictRequest, load_media, resolve, UserError; print(sorted(core.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "Pipeline" in out.stdout and "load_media" in out.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage: m2t " + name in capsys.readouterr().out


@pytest.mark.parametrize(("old", "new"), [("transcribe", "asr"), ("captioning", "caption")])
def test_old_command_names_are_aliases(old: str, new: str) -> None:
    args = build_parser().parse_args([old, "x.wav"])
    assert args.command == new


def test_installed_command_works_from_any_directory(tmp_path: Path) -> None:
    """``m2t`` is the console script that ``pip install -e .`` put beside the interpreter."""
    m2t = Path(sys.executable).with_name("m2t")
    if not m2t.exists():
        pytest.skip("the project is not pip-installed in this interpreter's environment (run install.sh)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(m2t), "models", "--json"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert '"llm": "gemma-3-270m"' in out.stdout
