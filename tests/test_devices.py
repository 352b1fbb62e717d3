"""``core.devices``: device and dtype choice, and a GPU check that costs no torch import on a machine without one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core import devices
from core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def test_no_driver_is_decided_from_the_files_a_driver_leaves(tmp_path: Path) -> None:
    mark = tmp_path / "nvidia0"
    marks = (str(tmp_path / "nvidia[0-9]*"),)
    assert devices._no_gpu_driver({}, marks) is sys.platform.startswith("linux")
    mark.write_text("")
    assert devices._no_gpu_driver({}, marks) is False
    assert devices._no_gpu_driver({"CUDA_VISIBLE_DEVICES": ""}, marks) is True
    assert devices._no_gpu_driver({"CUDA_VISIBLE_DEVICES": "-1"}, marks) is True
    assert devices._no_gpu_driver({"CUDA_VISIBLE_DEVICES": "0"}, marks) is False


def test_the_cheap_check_agrees_with_torch() -> None:
    import torch

    assert devices.cuda_available() is torch.cuda.is_available()
    assert devices.pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_auto_on_a_machine_without_a_gpu_driver_imports_no_torch() -> None:
    if not devices._no_gpu_driver():
        pytest.skip("this machine has a GPU driver: torch must be asked")
    code = "import sys; from core.devices import pick_device; print(pick_device('auto'), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cpu", "False"]


def test_asking_for_cuda_without_a_gpu_is_a_one_line_error(monkeypatch) -> None:
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    with pytest.raises(UserError, match="no CUDA GPU is visible"):
        devices.pick_device("cuda")
    assert devices.pick_device("cpu") == "cpu"


def test_dtypes_follow_the_device() -> None:
    import torch

    assert devices.pick_dtype("cpu") is torch.float32
    assert devices.pick_dtype("cpu", "bf16") is torch.bfloat16
    with pytest.raises(UserError, match="unknown dtype"):
        devices.pick_dtype("cpu", "int3")
