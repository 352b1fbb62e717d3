"""``core.env``: every on-by-default ``M2T_*`` switch reads "off" the same way."""

from __future__ import annotations

import pytest

from core import preload
from core.env import switched_on
from core.stages.caption import onnx_model as caption_onnx
from core.stages.ocr import detector_onnx as ocr_onnx


@pytest.mark.parametrize(("value", "on"), [("", True), ("1", True), ("yes", True), ("0", False), ("off", False),
                                           ("NO", False), (" False ", False)])
def test_the_switch(value: str, on: bool) -> None:
    assert switched_on("M2T_X_ONNX", {"M2T_X_ONNX": value}) is on
    assert switched_on("M2T_X_ONNX", {}) is True, "unset is on"


@pytest.mark.parametrize("module", [preload, caption_onnx, ocr_onnx])
def test_each_switch_reads_off_alike(module) -> None:
    name = getattr(module, "PRELOAD_ENV", None) or module.ONNX_ENV
    assert module.enabled({name: "off"}) is False and module.enabled({name: "1"}) is True
