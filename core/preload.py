"""Load models before anyone asks for them: the server at start-up, a command beside its stages.

Why: a model loads on first use, so the first visitor of a freshly started app waited 4.9 times as
long as the next one, and most of a one-tweet ``m2t predict`` was loading. Loads go through
:mod:`core.model_cache`, so whoever asks later (a page, the pipeline) gets the very same object, or
waits for the load in progress instead of starting a second copy.

Loads run in two lanes (threads): the LLM (CTranslate2 and the ``tokenizers`` library: native code)
beside the media models (caption, OCR, speech) in the order a prediction uses them; without their ONNX
exports the caption and OCR models share torch's import. The LLM's lane also fills its few-shot prefix
cache (:func:`prime_llm`). A model on torch (or an LLM on transformers) is slower on its first call than
on later ones (kernel selection for the shapes it sees), so when one is loaded, one small prediction
runs through them (:func:`warm_up`) and that first call is not a visitor's. The offline profile's
ONNX Runtime models are as fast on their first call as on later ones (measured: see
:func:`needs_warm_up`), so the server skips that prediction, which would otherwise only compete with
an early visitor's for the CPU. The server loads the speech model last: most tweets start from an
image, and the first visitor should not wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from core import model_cache
from core.env import switched_on
from core.errors import first_line
from core.registry import TASKS, ModelSpec, resolve

PRELOAD_ENV = "M2T_PRELOAD"  # 0/off/false/no: load each model on first use instead (small machines)
# Loaded after the image models (and their warm-up): most tweets start from an image, so the first visitor should
# not wait for speech.
AFTER_WARM_UP = ("asr",)
WARM_UP_TEXT = "GRAND OPENING this Saturday"
WARM_UP_TOKENS = 8  # enough to run the LLM's decode loop once the few-shot prefix is cached
Log = Callable[[str], None]


def enabled(environ: dict[str, str] | None = None) -> bool:
    """False when ``M2T_PRELOAD`` says off (``m2t serve --no-preload`` sets it)."""
    return switched_on(PRELOAD_ENV, environ)


def lanes(specs: Iterable[ModelSpec]) -> list[list[ModelSpec]]:
    """The LLM in a lane of its own, the media models together in use order (on torch they share its import)."""
    llm = [s for s in specs if s.task == "llm"]
    rest = sorted((s for s in specs if s.task != "llm"), key=lambda s: TASKS.index(s.task))
    return [lane for lane in (llm, rest) if lane]


def prefetch(
    specs: Iterable[ModelSpec],
    *,
    by: str = "prefetch",
    on_loaded: Callable[[ModelSpec, float], None] | None = None,
    on_error: Callable[[ModelSpec, BaseException], None] | None = None,
    prime: bool = False,
) -> list[threading.Thread]:
    """Start loading ``specs`` in the background (one thread per lane); the caller later gets them from the cache.
    ``prime``: the LLM's lane then also fills the LLM's prefix cache (:func:`prime_llm`).

    A failed load is handed to ``on_error`` (if given) and otherwise left for the caller: the cache forgets
    it, so asking for that model again raises the error where it can be reported."""

    def run(lane: list[ModelSpec]) -> None:
        for spec in lane:
            start = time.monotonic()
            try:
                model = model_cache.get(spec, by=by)
            except Exception as exc:  # reported by whoever asks for the model, or by on_error
                if on_error is not None:
                    on_error(spec, exc)
                continue
            if on_loaded is not None:
                on_loaded(spec, time.monotonic() - start)
            if prime and spec.task == "llm":
                prime_llm(model)

    threads = [threading.Thread(target=run, args=(lane,), daemon=True, name=f"m2t-{by}-{lane[0].task}")
               for lane in lanes(list(specs))]
    for thread in threads:
        thread.start()
    return threads


def prime_llm(llm: Any) -> None:
    """One token on a few-shot prompt, so CTranslate2 computes and caches the decoder state of the few-shot
    prefix (the same for every post) here, in the LLM's lane, while the image stages still load and run,
    instead of inside the first tweet. A cached prefix gives the same tokens as one computed in the call."""
    from core.stages.llm import GenerationConfig, generate
    from core.stages.prompt import TweetContext, build_prompt

    if getattr(llm, "engine", "") != "ctranslate2" or llm.prompt_style != "few-shot":
        return
    try:
        prompt = build_prompt(TweetContext("Media2Tweet", "media2tweet", "2024-01-01 12:00"), llm.prompt_style)
        generate(llm, [prompt], GenerationConfig(max_new_tokens=1))
    except Exception:  # priming only saves time; a real problem shows in the real call
        return


def tasks_for(media: Any) -> list[str]:
    """The models a prediction on ``media`` (a decoded ``Media`` or None) runs, in the pipeline's order:
    caption and OCR for images, speech for an audio track, the LLM always."""
    has_images = media is not None and bool(media.images)
    has_audio = media is not None and media.audio is not None
    return [t for t, used in (("caption", has_images), ("ocr", has_images), ("asr", has_audio), ("llm", True)) if used]


class Prefetch:
    """A command's background loads and the loader its pipeline waits on.

    A load that failed in the background is raised where the pipeline asks for that model (once), rather
    than tried a second time."""

    def __init__(self, *, by: str = "prefetch", on_loaded: Callable[[ModelSpec, float], None] | None = None) -> None:
        self.by = by
        self.on_loaded = on_loaded
        self.errors: dict[model_cache.Key, BaseException] = {}
        self.threads: list[threading.Thread] = []

    def start(self, specs: Iterable[ModelSpec]) -> None:
        self.threads += prefetch(specs, by=self.by, on_loaded=self.on_loaded, prime=True,
                                 on_error=lambda spec, exc: self.errors.__setitem__(model_cache.key(spec), exc))

    def get(self, spec: ModelSpec) -> object:
        failed = self.errors.pop(model_cache.key(spec), None)
        if failed is not None:
            raise failed
        return model_cache.get(spec, by=self.by)


def warm_up_image():
    """A small poster with a line of text: enough for every image stage to run once."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (640, 360), (245, 240, 230))
    ImageDraw.Draw(image).text((40, 150), WARM_UP_TEXT, fill=(20, 20, 20), font=ImageFont.load_default(size=40))
    return image


def warm_up(specs: dict[str, ModelSpec]) -> float:
    """One prediction on :func:`warm_up_image` through the cached models; its seconds. Its output is dropped."""
    from core.media.decode import Media
    from core.pipeline import Pipeline, PredictRequest
    from core.stages.llm import GenerationConfig

    start = time.monotonic()
    pipeline = Pipeline(specs, loader=lambda spec: model_cache.get(spec, by="preload"))
    request = PredictRequest("Media2Tweet", "media2tweet", "2024-01-01 12:00",
                             media=Media(kind="image", images=[warm_up_image()], source="warm-up"))
    pipeline.predict(request, GenerationConfig(max_new_tokens=WARM_UP_TOKENS))
    return time.monotonic() - start


def needs_warm_up(models: dict[str, Any]) -> bool:
    """Whether a loaded model is slower on its first call than on later ones: a captioner or OCR on torch, an LLM
    on transformers. On the offline profile's ONNX Runtime captioner and OCR and the primed CTranslate2 LLM the
    first poster took as long as the next three (caption 0.016 s vs 0.014-0.022, OCR 1.44 s vs 1.18-1.47,
    AMD EPYC 2 cores), so a warm-up prediction would only spend a second of CPU an early visitor could use."""
    for task, model in models.items():
        if task in ("caption", "ocr") and getattr(model, "runtime", "torch") != "onnx":
            return True
        if task == "llm" and getattr(model, "engine", "") != "ctranslate2":
            return True
    return False


@dataclass
class Preload:
    """The server's preload: what it loads, how far it got, what failed."""

    specs: dict[str, ModelSpec]
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    seconds: dict[str, float] = field(default_factory=dict)  # task → load seconds
    errors: dict[str, str] = field(default_factory=dict)  # task → one line
    warm_s: float | None = None
    warming: bool = False  # the warm-up prediction is running (only where a model needs one: needs_warm_up)
    # Set once a visitor's prediction asks for a model (app.models): a warm-up not yet started would then only
    # compete with that prediction for the CPU, and that prediction makes the models' first calls anyway.
    visitor: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return not self.done.is_set()

    def pending(self) -> list[ModelSpec]:
        """Models not loaded yet (in use order)."""
        return [s for t, s in self.specs.items() if t not in self.seconds and t not in self.errors]

    def elapsed(self) -> float:
        return time.monotonic() - self.started


_CURRENT: Preload | None = None
_START_LOCK = threading.Lock()


def current() -> Preload | None:
    """This process's preload, if one was started."""
    return _CURRENT


def default_specs(profile: str | None = None) -> dict[str, ModelSpec]:
    """What a visitor who changes nothing in the sidebar uses: the profile's model for every task."""
    return {task: resolve(task, profile=profile) for task in TASKS}


def start(specs: dict[str, ModelSpec] | None = None, *, log: Log = print, warm: bool = True) -> Preload:
    """Start the preload once per process (a second call returns the first one); returns at once."""
    global _CURRENT
    with _START_LOCK:
        if _CURRENT is not None:
            return _CURRENT
        preload = _CURRENT = Preload(specs=specs if specs is not None else default_specs())
    names = ", ".join(f"{t} {s.model}" for t, s in preload.specs.items())
    log(f"preload: loading {names} in the background")

    def loaded(spec: ModelSpec, seconds: float) -> None:
        preload.seconds[spec.task] = seconds
        log(f"preload: {spec.task} model {spec.model} ready ({seconds:.1f} s)")

    def failed(spec: ModelSpec, exc: BaseException) -> None:
        preload.errors[spec.task] = first_line(exc)
        log(f"preload: {spec.task} model {spec.model} failed to load: {first_line(exc)}")

    def run() -> None:
        try:
            first = [s for t, s in preload.specs.items() if t not in AFTER_WARM_UP]
            for thread in prefetch(first, by="preload", on_loaded=loaded, on_error=failed, prime=True):
                thread.join()
            loaded_models = {s.task: model_cache.get(s, by="preload") for s in first if s.task in preload.seconds}
            if warm and not preload.errors and preload.visitor.is_set():
                log("preload: no warm-up prediction: a visitor's prediction already made the first calls")
            elif warm and not preload.errors and not needs_warm_up(loaded_models):
                log("preload: no warm-up prediction needed: these models are as fast on their first call")
            elif warm and not preload.errors:
                preload.warming = True
                try:
                    preload.warm_s = warm_up(preload.specs)
                except Exception as exc:  # a warm-up failure costs speed, never the server
                    log(f"preload: warm-up prediction failed ({first_line(exc)}); models stay loaded")
                finally:
                    preload.warming = False
            later = [s for t, s in preload.specs.items() if t in AFTER_WARM_UP]
            for thread in prefetch(later, by="preload", on_loaded=loaded, on_error=failed):
                thread.join()
            state = "with errors" if preload.errors else "and warmed up" if preload.warm_s is not None else ""
            log(f"Models ready: {len(preload.seconds)} of {len(preload.specs)} loaded {state} "
                f"{preload.elapsed():.1f} s after start".replace("  ", " "))
        finally:
            preload.done.set()

    threading.Thread(target=run, daemon=True, name="m2t-preload").start()
    return preload
