"""A cold ``m2t predict`` (a new process) loads and imports only what its input needs, and ``--timings`` says
where its seconds went. Checked on which models the process loaded and which libraries it imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, sys
from core import model_cache
from core.__main__ import main
code = main(sys.argv[1:])
print("PROBE " + json.dumps({"code": code, "loaded": sorted({k[0] for k in model_cache.LOADS}),
      "modules": sorted(m for m in ("torch", "transformers", "easyocr", "faster_whisper") if m in sys.modules)}))
"""
BASE = ["predict", "--company", "Bean Town", "--username", "beantown", "--date", "2023-05-06 09:00",
        "--max-new-tokens", "12", "--json", "--timings"]

pytestmark = pytest.mark.slow


def cold_predict(*extra: str) -> tuple[dict, dict, str]:
    """``m2t predict`` in a new process: (its probe: loads and imports; its JSON output; its stderr)."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *BASE, *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    probe = json.loads(next(line for line in lines if line.startswith("PROBE "))[6:])
    output = json.loads("\n".join(line for line in lines if not line.startswith("PROBE ")))
    return probe, output, proc.stderr


def test_without_media_only_the_llm_loads_and_no_torch_is_imported() -> None:
    probe, output, _ = cold_predict()
    assert probe["loaded"] == ["llm"]
    assert probe["modules"] == [], "no torch, transformers, easyocr or faster-whisper for a text-only tweet"
    assert output["tweet"].strip()


def test_an_image_loads_no_speech_model_and_the_ct2_path_no_transformers(poster_path: Path) -> None:
    probe, output, stderr = cold_predict("--media", str(poster_path))
    assert probe["loaded"] == ["caption", "llm", "ocr"]
    assert "faster_whisper" not in probe["modules"] and "transformers" not in probe["modules"]
    # the ONNX exports `m2t prepare` (install.sh) made: caption and OCR without torch, torchvision or easyocr
    assert "torch" not in probe["modules"] and "easyocr" not in probe["modules"], probe["modules"]
    assert "SUMMER" in output["ocr"]
    cold = output["cold_timings"]
    assert set(cold["load"]) == {"caption (efficientnet-lite0, onnx)", "ocr (easyocr-en, onnx)",
                                 "llm (gemma-3-270m, ctranslate2)"}, "each load says what runs the model"
    assert {"caption", "ocr", "llm"} <= set(cold["stage"]) and set(cold["waited for a model"]) == {"caption", "ocr",
                                                                                                    "llm"}
    assert cold["start-up"]["interpreter, imports, arguments"] > 0
    assert cold["total"]["process start to tweet"] >= max(cold["stage"].values())
    assert "where the seconds went:" in stderr and "in the background" in stderr
    assert stderr.index("loading caption model") < stderr.index("where the seconds went")


def test_speech_loads_the_speech_model_and_no_image_model(speech_path: Path) -> None:
    probe, output, _ = cold_predict("--media", str(speech_path))
    assert probe["loaded"] == ["asr", "llm"]
    assert "easyocr" not in probe["modules"] and "torch" not in probe["modules"], "faster-whisper needs no torch"
    assert output["transcript"].strip()
