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
PACKAGES = ("core", "app", "app_pages", "training")

# The layers, lowest first: a module may import its own layer and those below, never one above, at module
# level, inside a function or under TYPE_CHECKING alike. A prefix names a package and everything in it; the
# longest matching prefix wins (``core.eval.command`` is a command although ``core.eval`` is beside the stages).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("core.errors", "core.env", "core.devices", "core.outputs", "core.tables", "core.console", "core.registry",
              "core.model_files")),
    ("media", ("core.media",)),
    ("shared by the stages", ("core.stages.onnx_files",)),
    ("stages and metrics", ("core.stages", "core.eval")),
    ("brand", ("core.brand",)),
    ("pipeline", ("core.pipeline",)),
    ("batch and protocols", ("core.batch", "core.eval.brand", "core.eval.likes", "core")),
    ("commands", ("core.commands", "core.eval.command", "core.devtools", "core.serve", "core.__main__",
                  "core.likes_command")),
    ("app and training", ("app", "app_pages", "training", "streamlit_app")),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules() -> dict[str, Path]:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")] + [ROOT / "streamlit_app.py"]
    return {_module_name(p): p for p in files if p.exists()}


def _layer(module: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS"
    return rank


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """Every project module ``path`` imports anywhere in the file (``from a import b`` counts ``a.b`` if a module)."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add((name, node.lineno))
    return sorted(found)


def _graph() -> dict[str, list[tuple[str, int]]]:
    modules = _project_modules()
    return {name: [(m, line) for m, line in _imports(path, modules) if m != name] for name, path in modules.items()}


def test_every_module_has_a_layer() -> None:
    for name in _project_modules():
        _layer(name)


def test_imports_run_down_the_layers() -> None:
    modules = _project_modules()
    back_edges = [
        f"{modules[name].relative_to(ROOT)}:{line}: {name} ({LAYERS[_layer(name)][0]}) imports {target} "
        f"({LAYERS[_layer(target)][0]})"
        for name, edges in _graph().items() for target, line in edges if _layer(target) > _layer(name)
    ]
    assert not back_edges, "imports against the layers:\n" + "\n".join(back_edges)


def test_no_import_cycle_by_any_reading() -> None:
    """Function-level and TYPE_CHECKING imports count too: a cycle hidden inside a function is still a cycle."""
    graph = {name: sorted({m for m, _ in edges}) for name, edges in _graph().items()}
    # A package's __init__ re-exporting its own modules is how a package is built, not a cycle.
    graph = {name: [m for m in targets if not name.startswith(m + ".")] for name, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_layer_test_catches_a_back_edge(tmp_path: Path) -> None:
    """The checker itself: a stage importing the pipeline inside a function is reported with its file and line."""
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from core.pipeline import Pipeline\n")
    edges = _imports(fake, _project_modules())
    assert edges == [("core.pipeline", 2)]
    assert _layer("core.pipeline") > _layer("core.stages.llm")


# One package (or module) per model stage; a stage never reaches into another stage's package.
STAGES = ("core.stages.caption", "core.stages.ocr", "core.stages.asr", "core.stages.llm")


def _stage(module: str) -> str | None:
    return next((s for s in STAGES if module == s or module.startswith(s + ".")), None)


def test_each_model_stage_has_its_package_and_imports_no_other_stage() -> None:
    modules = _project_modules()
    for stage in ("core.stages.caption", "core.stages.ocr", "core.stages.llm"):
        assert modules[stage].name == "__init__.py", f"{stage} is a package"
    crossings = [f"{modules[name].relative_to(ROOT)}:{line}: {name} imports {target}"
                 for name, edges in _graph().items() if _stage(name)
                 for target, line in edges if _stage(target) not in (None, _stage(name))]
    assert not crossings, "stages importing each other:\n" + "\n".join(crossings)
    flat = sorted(p.name for p in (ROOT / "core" / "stages").glob("*.py"))
    strays = [n for n in flat if n.split("_")[0] in ("ocr", "llm", "caption")]
    assert not strays, f"a stage's module outside its package: {strays}"


def test_llm_base_imports_no_torch() -> None:
    code = ("import sys; import core.stages.llm, core.batch, core.commands; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# The browser-free load harness speaks Streamlit's websocket protocol, so it needs Streamlit's own message classes
# (streamlit.proto) and nothing else of it; it is a dev tool that no model path imports.
STREAMLIT_PROTOCOL_CLIENTS = {"core/devtools/ws_visitors.py": {"streamlit.proto"}}


def test_core_imports_no_streamlit() -> None:
    for path in (ROOT / "core").rglob("*.py"):
        allowed = STREAMLIT_PROTOCOL_CLIENTS.get(path.relative_to(ROOT).as_posix(), set())
        used = {n for n in _all_imports(path) if n.split(".")[0] == "streamlit"}
        assert all(any(n == a or n.startswith(a + ".") for a in allowed) for n in used), (path, used)


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
