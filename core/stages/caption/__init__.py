"""The caption stage: an ImageNet classifier's labels phrased as a caption (``classify``), its subject named at
the level of the WordNet tree it is sure of (``hierarchy``, from the tree ``wordnet`` writes), on ONNX Runtime
when ``m2t prepare`` exported it (``onnx_model``).
"""

from core.stages.caption.classify import (
    CLASS_SCORE,
    CONFIDENT_SCORE,
    TOP_K,
    UNSURE_CAPTION,
    Caption,
    Captioner,
    caption_images,
    class_probabilities,
    load_captioner,
    phrase_label,
)

__all__ = [
    "CLASS_SCORE",
    "CONFIDENT_SCORE",
    "TOP_K",
    "UNSURE_CAPTION",
    "Caption",
    "Captioner",
    "caption_images",
    "class_probabilities",
    "load_captioner",
    "phrase_label",
]
