"""Calibrate the caption gate and measure what it changes: ``python -m core.devtools.caption_gate``.

The offline captioner is an ImageNet classifier: its top label is sometimes right ("espresso", 0.94) and
sometimes a weak wrong guess ("bobsled" for an astronaut, 0.29), and a tweet written about the guess is
written about the wrong thing. The gate (``core.stages.caption.CONFIDENT_SCORE``) lets the label be the
subject only above a probability threshold. Real photos cannot be downloaded here, so the labelled set is
made of what is on disk:

* the sample photos shipped inside scikit-image (installed with EasyOCR) and scikit-learn, each labelled by
  hand with the ImageNet classes that name what it shows (none for a moon, a microscope slide, an astronaut:
  ImageNet-1k has no class for them), in 7 views each (whole, mirrored, four 80 % corner crops, a 70 % centre
  crop; the subject stays in view);
* rendered posters (text on a plain ground) and drawn shapes: no ImageNet class names them.

A view's top-1 is *right* when it is one of its photo's classes. The threshold is the lowest probability at
which at least ``PRECISION`` of the views it lets through are right. Then, with the real LLM, every whole photo
and poster gets a tweet with the gate off and on, and a tweet names a wrong subject when it names one of the
top-5 labels that shares no word with what the photo shows (``grounding.labels_named``).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.devtools.brand_dump import sample_photo
from core.devtools.synthetic import make_caption_set, render_text_image

PRECISION = 0.9
CATS = ("Egyptian cat", "tiger cat", "tabby", "Persian cat", "Siamese cat")
# Sample photo → (words that say what it shows, the ImageNet classes that name it). Labelled by looking at each.
PHOTOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "astronaut.png": ("astronaut space suit flag shuttle", ()),
    "brick.png": ("brick wall", ()),
    "camera.png": ("photographer camera tripod man coat", ("tripod", "reflex camera", "Polaroid camera")),
    "cell.png": ("cell microscope", ()),
    "chelsea.png": ("cat kitten tabby", CATS),
    "chessboard_RGB.png": ("chessboard squares", ()),
    "clock_motion.png": ("clock wall blur", ("wall clock", "analog clock")),
    "coffee.png": ("coffee espresso cup saucer", ("espresso", "cup", "coffee mug")),
    "coins.png": ("coins money", ()),
    "color.png": ("colour circles", ()),
    "grass.png": ("grass lawn", ()),
    "gravel.png": ("gravel stones path", ()),
    "horse.png": ("horse silhouette", ("sorrel",)),
    "hubble_deep_field.jpg": ("galaxies stars space sky", ()),
    "ihc.png": ("tissue stain microscope", ()),
    "logo.png": ("logo snake", ()),
    "microaneurysms.png": ("retina eye", ()),
    "moon.png": ("moon crater surface", ()),
    "motorcycle_left.png": ("motorcycle motorbike bike", ("moped", "motor scooter")),
    "motorcycle_right.png": ("motorcycle motorbike bike", ("moped", "motor scooter")),
    "page.png": ("page text book", ()),
    "phantom.png": ("phantom scan", ()),
    "retina.jpg": ("retina eye fundus", ()),
    "rocket.jpg": ("rocket launch pad", ()),
    "text.png": ("text letters", ()),
    "china.jpg": ("temple palace building roof", ("palace", "monastery")),
    "flower.jpg": ("dahlia flower petals", ()),  # ImageNet's only flower near it is "daisy": another flower
}
POSTER_LINES = (
    "SUMMER SALE 20% OFF", "GRAND OPENING SATURDAY", "AUTHOR TALK THURSDAY 6PM", "OAT MILK AT NO EXTRA COST",
    "BUY TWO BOOKS GET ONE FREE", "NEW MENU FROM MONDAY", "LIVE MUSIC TONIGHT", "HALF PRICE HELMETS",
    "ADOPTION DAY SUNDAY 11AM", "FREE DELIVERY ALL MONTH", "STARGAZING NIGHT 9PM", "SEED SWAP SATURDAY",
)


@dataclass
class View:
    """One image of the labelled set, what it shows, and the classes that would be a right subject."""

    name: str
    image: Image.Image
    shows: str
    classes: tuple[str, ...]
    whole: bool  # the photo as published (the views measured with the LLM)


def _views(name: str, image: Image.Image) -> list[tuple[str, Image.Image]]:
    w, h = image.size
    cw, ch = int(w * 0.8), int(h * 0.8)
    cx, cy = int(w * 0.7), int(h * 0.7)
    return [
        ("whole", image),
        ("mirrored", image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        ("top-left", image.crop((0, 0, cw, ch))),
        ("top-right", image.crop((w - cw, 0, w, ch))),
        ("bottom-left", image.crop((0, h - ch, cw, h))),
        ("bottom-right", image.crop((w - cw, h - ch, w, h))),
        ("centre", image.crop(((w - cx) // 2, (h - cy) // 2, (w + cx) // 2, (h + cy) // 2))),
    ]


def labelled_set(seed: int = 0) -> list[View]:
    """Every view of the sample photos found on disk, plus 12 posters and 8 drawn shapes."""
    views = []
    for name, (shows, classes) in PHOTOS.items():
        path = sample_photo(name)
        if path is None:
            continue
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        views += [View(f"{name}:{how}", img, shows, classes, how == "whole") for how, img in _views(name, rgb)]
    rng = random.Random(seed)
    for i, line in enumerate(POSTER_LINES):
        fg = tuple(rng.randint(0, 80) for _ in range(3))
        bg = tuple(rng.randint(190, 255) for _ in range(3))
        image = render_text_image(line, size=(640, 360), font_size=52, fg=fg, bg=bg, seed=i)
        views.append(View(f"poster:{line}", image, line.lower(), (), True))
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = make_caption_set(tmp, n=8, seed=seed)
        for line in csv_path.read_text().splitlines()[1:]:
            rel, caption = line.split(",", 1)
            with Image.open(Path(tmp) / rel) as im:
                views.append(View(f"shape:{caption}", im.convert("RGB"), caption, (), True))
    return views


def classify(captioner, views: Sequence[View]) -> list[tuple[list[tuple[str, float]], bool]]:
    """Each view's top-5 labels (gate off) and whether its top-1 names what it shows."""
    from core.stages.caption import caption_images

    old = captioner.min_confidence
    captioner.min_confidence = 0.0
    try:
        found = [caption_images(captioner, [v.image])[0].labels for v in views]
    finally:
        captioner.min_confidence = old
    return [(labels, labels[0][0] in v.classes) for labels, v in zip(found, views, strict=True)]


def calibrate(scored: Sequence[tuple[float, bool]], precision: float = PRECISION) -> dict:
    """The lowest threshold whose accepted views are at least ``precision`` right, and the curve around it."""
    candidates = sorted({round(s, 2) for s, _ in scored} | {0.0})
    curve = []
    for t in candidates:
        accepted = [right for s, right in scored if s >= t]
        kept = sum(accepted)
        curve.append({"threshold": t, "accepted": len(accepted), "right": kept,
                      "precision": kept / len(accepted) if accepted else 1.0,
                      "recall": kept / max(1, sum(r for _, r in scored))})
    chosen = next((c for c in curve if c["precision"] >= precision and c["accepted"]), curve[-1])
    return {"threshold": chosen["threshold"], "chosen": chosen, "curve": curve}


def subject_errors(pipeline, views: Sequence[View], min_confidence: float, max_new_tokens: int = 40) -> dict:
    """Tweets for the whole photos and posters with the gate at ``min_confidence``: how many name a wrong subject."""
    from core.pipeline import PredictRequest
    from core.stages.grounding import labels_named
    from core.stages.llm import GenerationConfig

    captioner = pipeline.model("caption")
    old = captioner.min_confidence
    captioner.min_confidence = min_confidence
    rows = []
    try:
        for v in (v for v in views if v.whole):
            request = PredictRequest(company="Corner Shop", username="cornershop", date="2023-06-02 10:00",
                                     brand_kit=False)
            with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
                v.image.save(tmp.name)
                request.media = tmp.name
                prediction = pipeline.predict(request, GenerationConfig(max_new_tokens=max_new_tokens))
            a = prediction.analysis
            # A label of the photo's own classes ("moped" for the motorcycle) names what it shows: not wrong.
            allowed = " ".join([v.shows, *v.classes, a.ocr])
            wrong = labels_named(prediction.tweet, [label for label, _ in a.labels], allowed)
            rows.append({"view": v.name, "caption": a.caption, "guess": a.caption_guess, "tweet": prediction.tweet,
                         "wrong_subject": wrong})
    finally:
        captioner.min_confidence = old
    return {"min_confidence": min_confidence, "n": len(rows),
            "wrong": sum(bool(r["wrong_subject"]) for r in rows), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.devtools.caption_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/caption_gate.json"))
    parser.add_argument("--tweets", action="store_true", help="also write tweets with the gate off and on (LLM)")
    args = parser.parse_args(argv)
    from core.pipeline import Pipeline
    from core.stages.caption import CONFIDENT_SCORE

    pipeline = Pipeline(profile="offline")
    views = labelled_set()
    classified = classify(pipeline.model("caption"), views)
    result = calibrate([(labels[0][1], right) for labels, right in classified])
    result["views"] = [{"view": v.name, "top1": labels[0][0], "score": labels[0][1], "right": right}
                       for v, (labels, right) in zip(views, classified, strict=True)]
    result["n_views"], result["n_right"] = len(views), sum(r for _, r in classified)
    print(f"{len(views)} views, {result['n_right']} with a right top-1; threshold {result['threshold']} "
          f"(lets through {result['chosen']['accepted']}, {result['chosen']['precision']:.0%} right, "
          f"{result['chosen']['recall']:.0%} of the right ones); shipped CONFIDENT_SCORE = {CONFIDENT_SCORE}")
    if args.tweets:
        result["before"] = subject_errors(pipeline, views, 0.0)
        result["after"] = subject_errors(pipeline, views, CONFIDENT_SCORE)
        for key in ("before", "after"):
            r = result[key]
            print(f"gate {'off' if key == 'before' else 'on'}: {r['wrong']} of {r['n']} tweets name a wrong subject")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
