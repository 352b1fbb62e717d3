"""Media + metadata → tweet, with every intermediate kept for the person to inspect.

The pipeline loads each model the first time a request needs it (a text-only request never
loads OCR or ASR) and keeps it. Callers that cache models elsewhere (Streamlit's
``st.cache_resource``) pass their own ``loader``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.brand.kit import BrandKit, apply_kit
from core.errors import MediaError, UserError
from core.media.decode import Media, load_media
from core.registry import TASKS, ModelSpec, resolve
from core.stages.asr import Segment, load_asr, transcribe
from core.stages.caption import Caption, caption_images, load_captioner
from core.stages.grounding import (
    MIN_CONTENT_WORDS,
    NEAR_COPY_RATIO,
    Evidence,
    GroundingReport,
    check,
    cut_run_on,
    is_thin,
    near_copy,
    own_words,
    rank_key,
    salient_words,
    without_invented,
)
from core.stages.llm import GenerationConfig, generate_scored, load_llm
from core.stages.ocr import OcrBox, load_ocr, read_images
from core.stages.opening import facts_opening, read_clearly
from core.stages.prompt import TweetContext, build_prompt

if TYPE_CHECKING:
    from core.brand.retrieval import Examples, HistoryIndex

LOADERS: dict[str, Callable[[ModelSpec], object]] = {
    "caption": load_captioner,
    "ocr": load_ocr,
    "asr": load_asr,
    "llm": load_llm,
}
StageCallback = Callable[[str, str], None]  # (stage, "start" | "done" | "skipped" | "error: …")


def load_model(spec: ModelSpec):
    return LOADERS[spec.task](spec)


@dataclass
class PredictRequest:
    company: str
    username: str
    date: str
    likes: int | None = None
    media: str | Path | bytes | Media | None = None
    media_name: str | None = None  # names the format of ``media`` bytes (an upload's file name)
    base_dir: Path | None = None  # resolves relative media paths (a batch CSV's folder)
    # Brand history: examples from the account's own earlier tweets (never this row, never a later one).
    history: HistoryIndex | None = None
    history_k: int = 3
    history_budget: int = 180  # tokens the examples may take in the prompt
    row_id: str | None = None  # this post's id in the history, so it never becomes its own example
    # The brand kit finish (core.brand.kit): on by default; ``kit`` is one a person typed (None: the learned one).
    brand_kit: bool = True
    kit: BrandKit | None = None


@dataclass
class Analysis:
    """What the stages found in the media."""

    caption: str = ""
    labels: list[tuple[str, float]] = field(default_factory=list)
    caption_guess: str = ""  # the top label when the classifier was too unsure to name it as the subject
    ocr: str = ""
    ocr_boxes: list[OcrBox] = field(default_factory=list)
    transcript: str = ""
    segments: list[Segment] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    media: Media | None = None
    brand: Examples | None = None  # the history examples the prompt showed (None: no history given)
    warnings: list[str] = field(default_factory=list)  # what the person should check in the chosen tweet
    opening: str = ""  # the tweet's first words, given to the model (core.stages.opening); "" when none

    @property
    def media_text(self) -> str:
        """Caption + OCR + transcript: what the post shows, the query for its brand's history."""
        return " ".join(filter(None, (self.caption, " ".join(self.ocr.split()), self.transcript)))


@dataclass
class Prediction:
    tweet: str
    candidates: list[str]
    prompt: str
    analysis: Analysis
    groundings: list[dict] = field(default_factory=list)  # one grounding report per candidate, same order

    @property
    def grounding(self) -> dict:
        """The chosen tweet's grounding report (unsupported details, coverage)."""
        return self.groundings[0] if self.groundings else {}

    @property
    def examples(self) -> list[dict]:
        """The history tweets the prompt showed, for the person to see which ones were used."""
        brand = self.analysis.brand
        return [e.to_dict() for e in brand.tweets] if brand else []

    def to_dict(self) -> dict:
        a = self.analysis
        brand = a.brand
        history = {} if brand is None else {
            "examples": self.examples, "history_note": brand.note, "history_fallback": brand.fallback,
            "voice": brand.voice.to_dict(),
        }
        return {
            "tweet": self.tweet,
            "candidates": self.candidates,
            "caption": a.caption,
            "labels": [[label, score] for label, score in a.labels],
            "caption_guess": a.caption_guess,
            "ocr": a.ocr,
            "ocr_boxes": [asdict(b) for b in a.ocr_boxes],
            "transcript": a.transcript,
            "segments": [asdict(s) for s in a.segments],
            "prompt": self.prompt,
            "opening": a.opening,
            "timings": {k: round(v, 3) for k, v in a.timings.items()},
            "errors": a.errors,
            "warnings": a.warnings,
            "grounding": self.grounding,
            "candidate_grounding": self.groundings,
            **history,
        }


def evidence_for(request: PredictRequest, analysis: Analysis, earlier: list[str] | None = None) -> Evidence:
    """Everything a tweet may state: metadata, caption, OCR, transcript; the brand's habits count as voice, and
    its earlier tweets (``earlier``, looked up when not given) back the names it uses, never a number."""
    voice = analysis.brand.voice.markers if analysis.brand is not None else []
    sources = [str(request.company), str(request.username), analysis.caption, analysis.ocr, analysis.transcript]
    history = _earlier_tweets(request, analysis) if earlier is None else earlier
    return Evidence.from_inputs(sources, format_date(request.date), voice, history)


_ECHOES = re.compile(r"\s*(?:Style:|Recent tweets by @|Image description:|Text in the image:|Engagement:)")


def cut_echo(tweet: str) -> str:
    """A base model sometimes runs on into the prompt's next label ("… #EatGreen Style: hashtag …"): cut it."""
    match = _ECHOES.search(tweet)
    return tweet[: match.start()].rstrip() if match and match.start() > 0 else tweet


COPY_WINDOW = 200  # the brand's latest tweets a candidate is compared with (difflib per pair: keep it bounded)


def _earlier_tweets(request: PredictRequest, analysis: Analysis) -> list[str]:
    """The brand's tweets before this post (its latest ``COPY_WINDOW``) and the examples the prompt showed."""
    shown = analysis.brand.texts if analysis.brand is not None else []
    if request.history is None or (analysis.brand is not None and analysis.brand.fallback):
        return list(shown)
    earlier = request.history.earlier(str(request.username), str(request.company), str(request.date),
                                      request.row_id)
    return [*shown, *earlier[-COPY_WINDOW:]]


def _checked(candidate: str, evidence: Evidence, salient: list[str], opening: str) -> tuple[str, GroundingReport]:
    """The candidate (echo and run-on cut, invented sentences dropped) and its grounding check."""
    candidate = cut_run_on(cut_echo(candidate))
    report = check(candidate, evidence, salient)
    # a sentence that invents (an opponent, a stadium, a trophy) goes, where the rest still says something
    trimmed = without_invented(candidate, report, keep=opening)
    return (trimmed, check(trimmed, evidence, salient)) if trimmed != candidate else (candidate, report)


def _assess(candidates: list[str], request: PredictRequest,
            analysis: Analysis) -> tuple[list[str], list[dict], list[GroundingReport]]:
    """:func:`assess`, with each candidate's grounding check kept for the ranking."""
    from core.brand.voice import BrandVoice

    earlier = _earlier_tweets(request, analysis)
    evidence = evidence_for(request, analysis, earlier)
    salient = salient_words(analysis.ocr, analysis.caption)
    pairs = [_checked(c, evidence, salient, analysis.opening) for c in candidates]
    voice = analysis.brand.voice if analysis.brand is not None else BrandVoice()
    media_text = " ".join(filter(None, (analysis.ocr, analysis.transcript)))
    reports = []
    for c, checked in pairs:
        ratio, where = near_copy(c, earlier, voice.signoffs)
        reports.append({**checked.to_dict(), "content_words": checked.content_words,
                        "own_words": len(own_words(c, media_text)),
                        "thin": is_thin(c, media_text), "copy_ratio": round(ratio, 3),
                        "copy_of": earlier[where] if ratio >= NEAR_COPY_RATIO else "", "voice": voice.found_in(c),
                        "kit_added": []})
    return [c for c, _ in pairs], reports, [r for _, r in pairs]


def assess(candidates: list[str], request: PredictRequest, analysis: Analysis) -> tuple[list[str], list[dict]]:
    """Each candidate (echo cut) with its report: the grounding check, its own words and whether it is thin,
    its similarity to the brand's earlier tweets (``copy_of`` when a near copy) and the brand markers it carries."""
    candidates, reports, _ = _assess(candidates, request, analysis)
    return candidates, reports


def needs_second_look(report: dict, thin_counts: bool = True) -> bool:
    """A tweet worth writing alternatives for: a near copy, with an unsupported detail, no tweet at all (a bare
    placeholder), one that leaves most of its poster's salient words out, or (``thin_counts``: a brand with
    history, whose tweets write sentences) thin.

    Without history a thin greedy tweet keeps its poster's facts in the poster's words ("Grand opening this
    Saturday 10am free coffee for everyone"); sampling alternatives for it cost 2.3x the CPU of the whole
    image→tweet (``core.devtools.candidates_bench``) and put the 4 s warm goal out of reach."""
    return bool(report.get("copy_of") or (thin_counts and report.get("thin")) or report.get("unsupported")
                or report.get("content_words", MIN_CONTENT_WORDS) < MIN_CONTENT_WORDS  # a bare <hyperlink>
                or (report.get("salient") and report.get("coverage", 1.0) < 0.5))


def choose(
    candidates: list[str], request: PredictRequest, analysis: Analysis, logprobs: list[float | None] | None = None
) -> tuple[list[str], list[dict]]:
    """Candidates best first and their reports (``grounding.rank_key``: never a near copy of the brand's earlier
    tweets, then fewest unsupported details, a sentence of its own, facts kept, the brand's markers, coverage,
    the model's likelihood). Without likelihoods ties keep the model's own order (a stable sort).

    Every candidate then gets the brand kit (``request.brand_kit``): the brand's sign-off, hashtag and emoji
    where it has none, recorded in its report's ``kit_added``, so whichever a later ranking puts first (``--rank
    likes``) is finished alike. When every candidate is a near copy, the best is still returned and
    ``analysis.errors`` says so."""
    candidates, reports, checked = _assess(candidates, request, analysis)
    scores = logprobs if logprobs is not None and len(logprobs) == len(candidates) else [None] * len(candidates)
    order = sorted(range(len(candidates)), key=lambda i: rank_key(
        checked[i], scores[i], copy=bool(reports[i]["copy_of"]), thin=reports[i]["thin"],
        voice=len(reports[i]["voice"])))
    ranked = [candidates[i] for i in order]
    dicts = [reports[i] for i in order]
    if ranked and dicts[0]["copy_of"]:
        analysis.errors.append(f"every candidate repeats an earlier tweet of the brand (word similarity "
                               f"{dicts[0]['copy_ratio']:.2f} to \"{dicts[0]['copy_of'][:80]}\")")
    if ranked and dicts[0]["unsupported"]:
        analysis.warnings.append(f"every candidate states something the inputs and the brand's history do not "
                               f"support: {', '.join(dicts[0]['unsupported'])} (check it before posting)")
    voice = analysis.brand.voice if analysis.brand is not None else None
    kit = request.kit if request.kit is not None else (BrandKit.from_voice(voice) if voice else BrandKit())
    if request.brand_kit and not kit.empty:
        for i, tweet in enumerate(ranked):
            finished = apply_kit(tweet, kit, voice if request.kit is None else None)
            ranked[i] = finished.tweet
            dicts[i]["kit_added"] = finished.added
    return ranked, dicts


def with_opening(prompt: str, analysis: Analysis, cfg: GenerationConfig) -> str:
    """The prompt with the tweet's first words from the media's text (``cfg.facts_first``, core.stages.opening),
    recorded in ``analysis.opening`` so that every candidate starts with them."""
    clear = read_clearly([(b.text, b.confidence) for b in analysis.ocr_boxes])
    analysis.opening = facts_opening(analysis.ocr) if cfg.facts_first and clear else ""
    return f"{prompt} {analysis.opening}" if analysis.opening else prompt


def _join_captions(captions: list[Caption]) -> tuple[str, list[tuple[str, float]]]:
    """One caption for several keyframes: distinct captions in order, labels of the first frame."""
    seen: list[str] = []
    for c in captions:
        if c.caption and c.caption not in seen:
            seen.append(c.caption)
    return "; ".join(seen), (captions[0].labels if captions else [])


def format_date(value: str) -> str:
    """``2020-12-12 00:47:00+00:00`` → ``2020-12-12 00:47``: what a person would write; raw text otherwise."""
    import pandas as pd

    try:
        stamp = pd.Timestamp(str(value))
    except (ValueError, TypeError):
        return str(value)
    if pd.isna(stamp):
        return str(value)
    return stamp.strftime("%Y-%m-%d %H:%M")


ANALYSIS_STAGES = ("caption", "ocr", "asr")  # what analyse() runs on a post's media, in order


class Pipeline:
    """Media + metadata → tweet, one model per stage, each loaded the first time a request needs it.

    ``specs`` maps each stage (``caption``, ``ocr``, ``asr``, ``llm``) to its model; stages not given come
    from ``profile`` (the registry's default profile when None). ``loader`` is how a spec becomes a model:
    the app and ``m2t serve`` pass loaders that read ``core/model_cache.py``, so every visitor shares one copy.
    A pipeline is meant to be kept and reused: its models stay loaded for the next request.

    >>> pipeline = Pipeline(profile="offline")
    >>> prediction = pipeline.predict(PredictRequest(company="Acme", username="acme", date="2024-05-01 09:00",
    ...                                              media="poster.png"))  # doctest: +SKIP
    >>> prediction.tweet, prediction.analysis.ocr  # doctest: +SKIP
    """

    def __init__(
        self,
        specs: dict[str, ModelSpec] | None = None,
        *,
        profile: str | None = None,
        loader: Callable[[ModelSpec], object] = load_model,
    ) -> None:
        specs = dict(specs or {})
        for task in TASKS:
            specs.setdefault(task, resolve(task, profile=profile))
        self.specs = specs
        self._loader = loader
        self._models: dict[str, object] = {}
        self.load_seconds: dict[str, float] = {}

    def release(self) -> None:
        """Drop this pipeline's references to its models (a shared cache may still hold them), so a command can
        free them deterministically before the interpreter exits."""
        self._models.clear()

    def model(self, task: str) -> Any:
        """The loaded model of stage ``task`` (its type depends on the stage and backend), loading it once."""
        if task not in self._models:
            start = time.perf_counter()
            self._models[task] = self._loader(self.specs[task])
            self.load_seconds[task] = time.perf_counter() - start
        return self._models[task]

    def analyse(self, media: Media | None, on_stage: StageCallback | None = None) -> Analysis:
        """Caption + OCR on the images, ASR on the audio; a failing stage is recorded, not raised."""
        result = Analysis(media=media)
        if media is None:
            return result
        result.errors.extend(media.errors)
        for task in ANALYSIS_STAGES:
            self.run_stage(task, media, result, on_stage)
        return result

    def run_stage(self, task: str, media: Media, result: Analysis, on_stage: StageCallback | None = None) -> None:
        """One analysis stage into ``result``, as ``analyse`` runs it (the Ray engine runs each on its own
        actors): skipped when the media has nothing for it, timed, a ``MediaError`` noted in ``result.errors``;
        any other ``UserError`` propagates (the row cannot be analysed)."""
        run, applies = {
            "caption": (self._caption, bool(media.images)),
            "ocr": (self._ocr, bool(media.images)),
            "asr": (self._transcribe, media.audio is not None),
        }[task]
        if not applies:
            if on_stage:
                on_stage(task, "skipped")
            return
        if on_stage:
            on_stage(task, "start")
        start = time.perf_counter()
        try:
            run(media, result)
            if on_stage:
                on_stage(task, "done")
        except MediaError as exc:
            result.errors.append(f"{task}: {exc}")
            if on_stage:
                on_stage(task, f"error: {exc}")
        result.timings[task] = time.perf_counter() - start

    def _caption(self, media: Media, out: Analysis) -> None:
        captions = caption_images(self.model("caption"), media.images)
        out.caption, out.labels = _join_captions(captions)
        out.caption_guess = captions[0].guess if captions else ""

    def _ocr(self, media: Media, out: Analysis) -> None:
        found = read_images(self.model("ocr"), media.images)
        out.ocr, out.ocr_boxes = found.text, found.boxes

    def _transcribe(self, media: Media, out: Analysis) -> None:
        found = transcribe(self.model("asr"), media.audio)
        out.transcript, out.segments = found.text, found.segments

    def load_request_media(self, request: PredictRequest) -> tuple[Media | None, list[str]]:
        if request.media is None or (isinstance(request.media, str) and not request.media.strip()):
            return None, []
        try:
            return load_media(request.media, filename=request.media_name, base_dir=request.base_dir), []
        except MediaError as exc:
            return None, [f"media: {exc}"]

    def build_prompt(self, request: PredictRequest, analysis: Analysis) -> str:
        if not str(request.company).strip() or not str(request.username).strip():
            raise UserError("company and username are required")
        llm = self.model("llm")
        brand_examples: tuple[str, ...] = ()
        style = ""
        if request.history is not None:
            analysis.brand = self.retrieve(request, analysis, llm.tokenizer)
            brand_examples = tuple(analysis.brand.texts)
            # With the brand kit on, the markers are added exactly after the model wrote; a Style: line in the
            # prompt then only made the 270M model echo it ("#LensDays; sign-off …; about 102 characters").
            style = "" if request.brand_kit else analysis.brand.voice.hint()
        ctx = TweetContext(
            company=str(request.company).strip(),
            username=str(request.username).strip(),
            date=format_date(request.date),
            likes=request.likes,
            caption=analysis.caption,
            ocr_text=analysis.ocr,
            transcript=analysis.transcript,
            brand_examples=brand_examples,
            style=style,
        )
        return build_prompt(ctx, llm.prompt_style, llm.tokenizer)

    @staticmethod
    def retrieve(request: PredictRequest, analysis: Analysis, tokenizer=None) -> Examples:
        """The post's examples from its brand's history, counted in the LLM's own tokens when it has a tokenizer."""
        count = None
        if tokenizer is not None:
            def count(text: str) -> int:
                return len(tokenizer(f"- {text}\n", add_special_tokens=False)["input_ids"])
        return request.history.examples(
            username=str(request.username), company=str(request.company), media_text=analysis.media_text,
            before=str(request.date), exclude_id=request.row_id, likes=request.likes, k=request.history_k,
            token_budget=request.history_budget, count_tokens=count,
        )

    def prepare(self, request: PredictRequest, on_stage: StageCallback | None = None) -> tuple[str, Analysis]:
        """Media → analysis → prompt: everything before the LLM writes."""
        start = time.perf_counter()
        media, errors = self.load_request_media(request)
        load_time = time.perf_counter() - start
        analysis = self.analyse(media, on_stage)
        analysis.errors[:0] = errors
        analysis.timings = {"media": load_time, **analysis.timings}
        return self.build_prompt(request, analysis), analysis

    def predict(
        self,
        request: PredictRequest,
        cfg: GenerationConfig | None = None,
        on_stage: StageCallback | None = None,
    ) -> Prediction:
        """One tweet for ``request``, with every intermediate the person may inspect.

        The media is fetched and decoded, captioned, read and transcribed as it needs (a stage that fails is
        noted in ``analysis.errors``, the tweet is still written from what remains), folded with the metadata
        and any brand history into one prompt, and the LLM's candidates are ranked by the grounding check.
        ``cfg`` sets decoding (default: one greedy candidate); ``on_stage(stage, status)`` reports progress.
        Raises ``UserError`` only for a request that cannot be answered at all.
        """
        prompt, analysis = self.prepare(request, on_stage)
        prompt = with_opening(prompt, analysis, cfg or GenerationConfig())
        if on_stage:
            on_stage("llm", "start")
        start = time.perf_counter()
        scored = self._write([prompt], [request], [analysis], cfg, on_stage)[0]
        analysis.timings["llm"] = time.perf_counter() - start
        if on_stage:
            on_stage("llm", "done")
        analysis.timings["total"] = sum(analysis.timings.values())
        candidates, reports = choose([t for t, _ in scored], request, analysis, [lp for _, lp in scored])
        return Prediction(tweet=candidates[0], candidates=candidates, prompt=prompt, analysis=analysis,
                          groundings=reports)

    def _generate(self, prompts: list[str], cfg: GenerationConfig | None,
                  openings: list[str] | None = None) -> list[list[tuple[str, float | None]]]:
        """Candidates with their likelihoods; asked for only when there is a choice to break ties in."""
        cfg = cfg or GenerationConfig()
        return generate_scored(self.model("llm"), prompts, cfg, scores=cfg.num_candidates > 1, openings=openings)

    def _write(self, prompts: list[str], requests: list[PredictRequest], analyses: list[Analysis],
               cfg: GenerationConfig | None, on_stage: StageCallback | None = None
               ) -> list[list[tuple[str, float | None]]]:
        """Candidates per prompt. With one greedy candidate (the default) a second look: where that tweet is a near
        copy, has an unsupported detail, leaves its poster's facts out or (with history) is thin
        (``needs_second_look``), ``cfg.second_look`` sampled candidates are written for those prompts in one more
        call and all are ranked together. A tweet that passes costs one greedy call, as before; see
        docs/brand-voice.md for what each costs. ``on_stage("llm", "second look")`` says when that call starts: the
        app shows it, and a page closed meanwhile is stopped there instead of after the longer half of the stage."""
        cfg = cfg or GenerationConfig()
        openings = [a.opening for a in analyses]
        scored = self._generate(prompts, cfg, openings)
        if cfg.num_candidates > 1 or cfg.do_sample or cfg.second_look < 1:
            return scored
        weak = [i for i, rows in enumerate(scored)
                if rows and needs_second_look(assess([rows[0][0]], requests[i], analyses[i])[1][0],
                                              thin_counts=requests[i].history is not None)]
        if weak:
            if on_stage:
                on_stage("llm", "second look")
            more = self._generate([prompts[i] for i in weak], replace(cfg, num_candidates=cfg.second_look),
                                  [openings[i] for i in weak])
            for i, extra in zip(weak, more, strict=True):
                scored[i] = [*scored[i], *extra]
        return scored

    def predict_many(
        self,
        requests: list[PredictRequest],
        cfg: GenerationConfig | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        """Analyse each request, then generate all tweets in batches (left padding): much faster than one by one."""
        prepared: list[tuple[str, Analysis]] = []
        for i, request in enumerate(requests):
            try:
                prepared.append(self.prepare(request))
            except UserError as exc:  # one bad row (e.g. no company) must not stop the others
                prepared.append(("", Analysis(errors=[str(exc)])))
            if progress:
                progress(i + 1, 2 * len(requests))
        prepared = [(with_opening(p, a, cfg or GenerationConfig()) if p else p, a) for p, a in prepared]
        prompts = [p for p, _ in prepared if p]
        start = time.perf_counter()
        live = [(request, analysis) for request, (prompt, analysis) in zip(requests, prepared, strict=True) if prompt]
        outputs = iter(self._write(prompts, [r for r, _ in live], [a for _, a in live], cfg) if prompts else [])
        per_row = (time.perf_counter() - start) / max(1, len(prompts))
        if progress:
            progress(2 * len(requests), 2 * len(requests))
        predictions = []
        for request, (prompt, analysis) in zip(requests, prepared, strict=True):
            scored = next(outputs) if prompt else [("", None)]
            analysis.timings["llm"] = per_row if prompt else 0.0
            analysis.timings["total"] = sum(analysis.timings.values())
            candidates, reports = (choose([t for t, _ in scored], request, analysis, [lp for _, lp in scored])
                                   if prompt else ([""], []))
            predictions.append(Prediction(tweet=candidates[0], candidates=candidates, prompt=prompt, analysis=analysis,
                                          groundings=reports))
        return predictions
