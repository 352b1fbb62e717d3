"""Switches read from the environment: one reading of "off" for every ``M2T_*`` switch that is on by default.

Why one place: the server's preload (``M2T_PRELOAD``) and each ONNX Runtime export (``M2T_CAPTION_ONNX``,
``M2T_OCR_ONNX``) are turned off the same way, and a person who learns one should not find another spelling
ignored by the next.
"""

from __future__ import annotations

import os

OFF_VALUES = ("0", "off", "false", "no")


def switched_on(name: str, environ: dict[str, str] | None = None) -> bool:
    """False only where ``name`` is set to 0/off/false/no (any case, spaces ignored); unset or anything else: on."""
    value = (os.environ if environ is None else environ).get(name, "").strip().lower()
    return value not in OFF_VALUES
