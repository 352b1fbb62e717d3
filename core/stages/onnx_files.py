"""What the ONNX Runtime exports share: their cache folder, the weights' content hash, the session, the softmax.

Why one module: the OCR detector and recogniser (:mod:`core.stages.ocr.detector_onnx`,
:mod:`core.stages.ocr.recogniser_onnx`) and the captioner (:mod:`core.stages.caption.onnx_model`) are exported the
same way (once, at ``m2t prepare``, named by the hash of the weights they came from) and must run with the same
thread settings, or one stage's spinning threads slow the next. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from core.errors import ModelUnavailableError, first_line
from core.registry import cache_dir


def require_exporter(what: str, meanwhile: str) -> None:
    """torch's exporter writes through the ``onnx`` package: without it, say what keeps running instead."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ModelUnavailableError(f"exporting {what} to ONNX needs the onnx package (pip install onnx); "
                                    f"{meanwhile} meanwhile") from None


T = TypeVar("T")


def open_export(open_: Callable[[], T], *files: Path) -> T:
    """``open_()`` on a cached export's ``files``. One that fails to load (truncated, damaged) is removed, never
    trusted, and reported as :class:`ModelUnavailableError`, so the stage falls back to torch and the next
    ``m2t prepare`` exports it again (it skips an export whose file exists)."""
    try:
        return open_()
    except Exception as exc:  # ONNX Runtime's load errors subclass Exception only; numpy and json raise their own
        for file in files:
            Path(file).unlink(missing_ok=True)
        raise ModelUnavailableError(f"the cached ONNX export {Path(files[0]).name} could not be loaded "
                                    f"({first_line(exc)}); it was removed and `m2t prepare` makes it again") from None


def folder() -> Path:
    return cache_dir() / "onnx"


def content_hash(weights: Path) -> str:
    """sha256 of the weights file, remembered per (path, size, mtime) so a load does not re-read 80 MB."""
    stat = weights.stat()
    stamp = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = folder() / "hashes.json"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if stamp not in known:
        digest = hashlib.sha256()
        with weights.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        known[stamp] = digest.hexdigest()
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".hashes.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(memo)
    return known[stamp]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in float32 (torch's to an ulp or two), shifted by the max so ``exp`` cannot
    overflow: the captioner's scores, the OCR recogniser's per-step probabilities, and the exports' checks of both."""
    shifted = logits.astype(np.float32) - logits.max(axis=-1, keepdims=True).astype(np.float32)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def session(path: Path) -> Any:
    """An ONNX Runtime CPU session using every core this process may run on, one op at a time, threads blocking."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    try:
        options.intra_op_num_threads = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        options.intra_op_num_threads = max(1, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    # Threads that spin after a run steal the CPU from whatever runs next (the recogniser, the LLM, another
    # visitor): with spinning on, a torch stage right after detection ran 2.3x slower on 2 cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
