"""``pip install .`` (a wheel, as a GPU box or a Docker image installs it) gives a working package.

The wheel is built from a copy of the checkout with the project's own build backend (setuptools, no
network: ``--no-build-isolation``). Its contents are checked against the source tree: every module of
the packages, the pages the app's navigation lists, the entry scripts ``m2t serve`` runs, the model
registry, the evaluation data and the Streamlit settings. The slow test installs it into a fresh venv
(dependencies come from the project venv through a ``.pth`` line, which is not processed for the project's
own editable install, so nothing of the checkout leaks in) and serves the app from an unrelated folder.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from email.parser import Parser
from pathlib import Path

import psutil
import pytest

import core
from core.serve import server as serve

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "app", "app_pages", "training")
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
                                     ".ruff_cache")
ROOT_OUTPUTS = {"data", "artifacts"}  # generated sets and outputs at the top of the checkout (core/eval/data is source)


def _not_source(folder: str, names: list[str]) -> set[str]:
    top = {n for n in names if n in ROOT_OUTPUTS} if Path(folder) == ROOT else set()
    return set(_NOT_SOURCE(folder, names)) | top
SERVE_TIMEOUT_S = 120.0
POLL_S = 0.5


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the checkout (building in place would leave build/ there)."""
    src = tmp_path_factory.mktemp("src") / "media2tweet"
    shutil.copytree(ROOT, src, ignore=_not_source)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, capture_output=True, text=True, timeout=300)
    [built] = out.glob("media2tweet-*.whl")
    return built


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_every_module_of_the_packages_is_in_the_wheel(wheel: Path) -> None:
    names = wheel_files(wheel)
    source = {p.relative_to(ROOT).as_posix() for package in PACKAGES for p in (ROOT / package).rglob("*.py")
              if "__pycache__" not in p.parts}
    assert source <= names, sorted(source - names)
    assert "app_pages/__init__.py" in names


def test_the_app_its_pages_and_its_data_are_in_the_wheel(wheel: Path) -> None:
    names = wheel_files(wheel)
    # What m2t serve runs (found through the installed package) and the script it serves.
    assert {serve.DEFAULT_APP.name, serve.LAUNCHER.name} <= names
    pages = re.findall(r'st\.Page\("([^"]+)"', (ROOT / "streamlit_app.py").read_text(encoding="utf-8"))
    assert len(pages) >= 5 and set(pages) <= names, sorted(set(pages) - names)
    data = {"core/models.toml", "core/serve/streamlit.toml", "core/eval/data/english.json",
            "core/eval/data/LICENSE-whisper.txt"}
    assert data <= names, sorted(data - names)
    assert not any(name.startswith(("tests/", "docs/", ".venv/")) for name in names)


def test_the_wheel_carries_the_one_version_and_the_m2t_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        [entry_points] = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        version = Parser().parsestr(archive.read(metadata).decode())["Version"]
        scripts = archive.read(entry_points).decode()
    assert version == core.__version__ == "0.3.0"
    assert wheel.name.startswith(f"media2tweet-{core.__version__}-")
    assert "m2t = core.__main__:main" in scripts
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"] and pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "core.__version__"}


# --------------------------------------------------------------------------- a fresh venv serves the app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (urllib.error.URLError, OSError):
        return 0, b""


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with nothing but the wheel installed; the dependencies come from the project venv."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    return venv


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["M2T_PRELOAD"] = "0"  # the server's start-up model preload is not what this test is about
    return env


@pytest.mark.slow
def test_the_installed_package_comes_from_the_wheel_not_the_checkout(fresh_venv: Path, tmp_path: Path) -> None:
    probe = ("import importlib.util, app, app_pages, core, training; from core.serve import server; "
             "print(core.__file__, app.__file__, app_pages.__file__, training.__file__, "
             "importlib.util.find_spec('streamlit_app').origin, server.DEFAULT_APP, server.LAUNCHER, sep='\\n')")
    out = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=_clean_env(),
                         check=True, capture_output=True, text=True, timeout=120)
    paths = out.stdout.split()
    assert len(paths) == 7 and all(p.startswith(str(fresh_venv)) for p in paths), paths
    assert not any(str(ROOT) in p for p in paths)


@pytest.mark.slow
def test_m2t_serve_from_the_wheel_answers_from_any_folder(fresh_venv: Path, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(fresh_venv / "bin" / "m2t"), "serve", "--port", str(port)], cwd=tmp_path,
                                env=_clean_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(int(SERVE_TIMEOUT_S / POLL_S)):  # a bound on waiting, not a claim about speed
            if _get(f"http://127.0.0.1:{port}/_stcore/health") == (200, b"ok"):
                break
            assert proc.poll() is None, log.read_text()
            time.sleep(POLL_S)
        else:
            pytest.fail(f"m2t serve did not answer /_stcore/health:\n{log.read_text()}")
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b'<div id="root">' in page
        commands = [" ".join(c.cmdline()) for c in psutil.Process(proc.pid).children(recursive=True)]
        [command] = [c for c in commands if "streamlit" in c]
        assert str(fresh_venv) in command and str(ROOT) not in command, command  # the installed scripts run
        assert "--server.maxUploadSize 500" in command and "--browser.gatherUsageStats false" in command
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
def test_the_installed_app_renders_its_first_page(fresh_venv: Path, tmp_path: Path) -> None:
    script = ("import importlib.util; from streamlit.testing.v1 import AppTest; "
              "app = importlib.util.find_spec('streamlit_app').origin; "
              "at = AppTest.from_file(app, default_timeout=120).run(); "
              "assert not at.exception, [e.message for e in at.exception]; print(app)")
    out = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", script], cwd=tmp_path, env=_clean_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().startswith(str(fresh_venv))
