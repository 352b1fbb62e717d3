"""Choose device and dtype the way a T4, an A100 and a laptop each need.

A T4 reports bf16 support it does not have at useful speed, so bf16 is used only from compute
capability 8 (Ampere) on; CPUs get fp32 because fp16 matmuls there are slow or unsupported.
"""

from __future__ import annotations

import glob
import os
import sys
from typing import TYPE_CHECKING

from core.errors import UserError

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions: modules that only carry a device name (the LLM base, batch
# planning, the CLI) must not pay torch's ~1.5 s import for it.
_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
           "bfloat16": "bfloat16", "bf16": "bfloat16"}


# Where a GPU driver shows itself on Linux without asking torch: NVIDIA's proc entry and device nodes, ROCm's
# kernel driver (torch.cuda covers ROCm too), WSL2's GPU node.
_GPU_MARKS = ("/proc/driver/nvidia/version", "/dev/nvidia[0-9]*", "/dev/kfd", "/dev/dxg")


def _no_gpu_driver(environ: dict[str, str] | None = None, marks: tuple[str, ...] = _GPU_MARKS) -> bool:
    """True only where no GPU can be visible, decided without importing torch (~2.5 s, most of a cold
    command that needs no torch: the ONNX captioner and OCR, faster-whisper, CTranslate2)."""
    env = os.environ if environ is None else environ
    if env.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return True
    if not sys.platform.startswith("linux"):
        return False  # no cheap check elsewhere: ask torch
    return not any(glob.glob(mark) for mark in marks)


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, without importing torch on a machine that has no GPU driver at all."""
    if "torch" not in sys.modules and _no_gpu_driver():
        return False
    import torch

    return torch.cuda.is_available()


def pick_device(preference: str = "auto") -> str:
    if preference in ("", "auto", None):
        return "cuda" if cuda_available() else "cpu"
    if preference.startswith("cuda") and not cuda_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
    return preference


def supports_bf16(device: str) -> bool:
    if not device.startswith("cuda"):
        return False
    import torch

    major, _ = torch.cuda.get_device_capability(torch.device(device))
    return major >= 8


def pick_dtype(device: str, preference: str = "auto") -> torch.dtype:
    import torch

    if preference not in ("", "auto", None):
        try:
            return getattr(torch, _DTYPES[preference])
        except KeyError:
            raise UserError(f"unknown dtype {preference!r}; use one of {', '.join(_DTYPES)}") from None
    if device.startswith("cuda"):
        return torch.bfloat16 if supports_bf16(device) else torch.float16
    return torch.float32
