"""Media2Tweet core: media + metadata → tweet, usable from the CLI, the app and training (no Streamlit here).

The small public API::

    from core import Pipeline, PredictRequest, load_media, resolve, UserError
    tweet = Pipeline().predict(PredictRequest("Bean Town", "beantown", "2023-05-06 09:00", media="poster.png")).tweet

Names load on first use, so ``import core`` (and ``m2t --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"  # the one version source: pyproject.toml reads it

_PUBLIC = {
    "Pipeline": "core.pipeline",
    "PredictRequest": "core.pipeline",
    "Prediction": "core.pipeline",
    "load_media": "core.media",
    "Media": "core.media",
    "resolve": "core.registry",
    "UserError": "core.errors",
}
__all__ = ["Media", "Pipeline", "PredictRequest", "Prediction", "UserError", "load_media", "resolve"]

if TYPE_CHECKING:
    from core.errors import UserError
    from core.media import Media, load_media
    from core.pipeline import Pipeline, Prediction, PredictRequest
    from core.registry import resolve


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
