"""The stage commands (caption, ocr, asr), predict, batch, models and prepare.

Each command is a ``configure_<name>(parser)`` / ``run_<name>(args)`` pair that ``core.__main__``
lists in its dispatch table. Heavy libraries are imported inside ``run_*`` so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.console import emit, non_negative_int, positive_float, positive_int, progress, say
from core.errors import ModelUnavailableError, UserError
from core.stages.llm import GenerationConfig


def _spec(args, task: str, *, own_model: bool = True):
    """The spec for ``task``; ``own_model=False`` keeps the profile's model (``--model`` names another stage's)."""
    from core.registry import resolve

    llm = task == "llm"
    return resolve(
        task,
        getattr(args, "model", None) if own_model else None,
        profile=args.profile,
        adapter=getattr(args, "adapter", None) if own_model else None,
        device=args.device,
        load_in_4bit=getattr(args, "load_in_4bit", False) if llm else False,
        engine=getattr(args, "backend", None) if llm else None,
        url=getattr(args, "llm_url", None) if llm else None,
        served_model=getattr(args, "llm_model", None) if llm else None,
    )


class _Lazy:
    """A model loaded on first use, so commands whose inputs are all bad never load it."""

    def __init__(self, spec) -> None:
        self.spec = spec
        self._model = None

    def get(self):
        if self._model is None:
            from core.pipeline import load_model

            say(f"loading {self.spec.task} model {self.spec.model} ({self.spec.backend})…")
            self._model = load_model(self.spec)
        return self._model


def _for_each_file(files: list[str], desc: str, needs: str, work) -> tuple[list[dict], int]:
    """Decode each file, then run ``work(name, media)``; a bad file is reported and skipped.

    Files are decoded before any model loads, so a typo'd path fails in a second, not after a model load.
    """
    from core.media.decode import load_media

    decoded, failures = [], 0
    for name in files:
        try:
            media = load_media(Path(name))
            if needs == "image" and not media.images:
                raise UserError(f"{name}: has no image (it is {media.kind})")
            if needs == "audio" and media.audio is None:
                raise UserError(f"{name}: has no audio track")
            decoded.append((name, media))
        except UserError as exc:
            failures += 1
            say(f"error: {exc}")
    results = []
    for name, media in progress(decoded, desc):
        try:
            results.append({"file": name, **work(name, media)})
        except UserError as exc:
            failures += 1
            say(f"error: {exc}")
    return results, failures


def run_caption(args) -> int:
    from core.stages.caption import caption_images

    model = _Lazy(_spec(args, "caption"))

    def work(name: str, media) -> dict:
        cap = caption_images(model.get(), media.images[:1])[0]
        # A weak top label stays a guess (the caption gate): shown beside the caption, never as it.
        return {"caption": cap.caption, "guess": cap.guess, "subject": cap.subject,
                "subject_score": round(cap.score, 4), "labels": [[label, score] for label, score in cap.labels]}

    results, failures = _for_each_file(args.files, "caption", "image", work)
    emit(results, args.json, "\n".join(
        f"{r['file']}\t{r['caption']}" + (f"\t(guess: {r['guess']}, {r['labels'][0][1]:.0%})" if r["guess"] else "")
        for r in results))
    return 1 if failures else 0


def run_ocr(args) -> int:
    from core.stages.ocr import read_images

    model = _Lazy(_spec(args, "ocr"))

    def work(name: str, media) -> dict:
        return read_images(model.get(), media.images).to_dict()

    results, failures = _for_each_file(args.files, "ocr", "image", work)
    emit(results, args.json, "\n\n".join(f"== {r['file']}\n{r['text']}" for r in results))
    return 1 if failures else 0


def run_asr(args) -> int:
    from core.stages.asr import to_srt, to_vtt, transcribe

    model = _Lazy(_spec(args, "asr"))
    rendered: list[str] = []

    def work(name: str, media) -> dict:
        transcript = transcribe(model.get(), media.audio, language=args.language)
        rendered.append({"srt": to_srt, "vtt": to_vtt}.get(args.format, lambda t: t.text)(transcript))
        return transcript.to_dict()

    results, failures = _for_each_file(args.files, "transcribing", "audio", work)
    emit(results, args.json, "\n\n".join(rendered))
    return 1 if failures else 0


def _generation_config(args):
    return GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        num_candidates=args.candidates,
        do_sample=args.sample,
        temperature=args.temperature,
        batch_size=getattr(args, "batch_size", 8),
        seed=args.seed,
        facts_first=not getattr(args, "no_facts_first", False),
    )


def _pipeline(args, loader=None):
    from core.pipeline import Pipeline, load_model
    from core.registry import TASKS

    specs = {task: _spec(args, task, own_model=task == "llm") for task in TASKS}
    return Pipeline(specs, profile=args.profile, loader=loader or load_model)


def _history(args):
    """The ``--history`` dump's index (read, checked, built or loaded from cache) before any model loads."""
    if not getattr(args, "history", None):
        return None
    from core.brand.retrieval import HistoryIndex

    index = HistoryIndex.from_path(args.history)
    state = "loaded from cache" if index.cached else "built"
    say(f"history: {len(index.history)} tweets from {args.history} (index {state} in {index.build_s:.1f} s)")
    return index


def _likes(args):
    """The ``--history`` dump's likes model (fitted once, then cached), or None when it has no likes to learn."""
    if not getattr(args, "history", None):
        if getattr(args, "rank", "grounding") == "likes":
            raise UserError("--rank likes needs --history: predicted likes are learned from the brand's history")
        return None
    from core.batch.likes import history_likes_model

    model, note = history_likes_model(args.history)
    if note:
        say(f"note: {note}")
    if model is None and args.rank == "likes":
        raise UserError("--rank likes needs a --history dump with likes; " + note)
    if model is not None:
        say(f"likes: model from {model.rows} history rows ({'cached' if model.cached else 'fitted'})")
    return model


def run_predict(args) -> int:
    import time

    from core import model_cache
    from core.pipeline import PredictRequest
    from core.preload import Prefetch, tasks_for
    from core.timings import Timings, load_label, process_age

    timings = Timings()
    timings.add("start-up", "interpreter, imports, arguments", process_age())
    history = _history(args)
    likes_model = _likes(args)
    loads = Prefetch(by="predict", on_loaded=lambda spec, s: timings.add(
        "load", load_label(spec.task, spec.model, model_cache.get(spec, by="predict"), spec.backend), s))
    pipeline = _pipeline(args, loader=loads.get)

    def on_stage(stage: str, state: str) -> None:
        if state not in ("start", "skipped", "second look"):  # the app shows the second look; here its time does
            say(f"{stage}: {state}")

    media = None
    if args.media:
        from core.media.decode import load_media

        start = time.perf_counter()
        media = load_media(args.media)  # a media the user named explicitly must load: fail before the models
        timings.add("start-up", "media decode", time.perf_counter() - start)
    # Only the models this input needs, each lane in its own thread (the LLM beside the torch models), so the
    # loads overlap each other and the stages that no longer wait for them.
    needed = [pipeline.specs[task] for task in tasks_for(media)]
    say("loading " + ", ".join(f"{spec.task} model {spec.model}" for spec in needed) + "…")
    loads.start(needed)
    request = PredictRequest(company=args.company, username=args.username, date=args.date, likes=args.likes,
                             media=media, history=history, history_k=args.examples,
                             brand_kit=not args.no_brand_kit)
    prediction = pipeline.predict(request, _generation_config(args), on_stage=on_stage)
    for task, waited in pipeline.load_seconds.items():
        timings.add("waited for a model", task, waited)
    for stage, seconds in prediction.analysis.timings.items():
        if stage != "total":
            timings.add("stage", stage, seconds)
    likes, likes_note = [], ""
    if likes_model is not None:
        from core.batch.likes import describe, spread_note, with_likes

        (prediction,), (likes,) = with_likes(likes_model, [prediction], [request], args.rank)
        likes_note = spread_note(likes_model, likes)
    for error in [*prediction.analysis.errors, *prediction.analysis.warnings]:
        say(f"warning: {error}")
    data = prediction.to_dict()
    if likes:
        data["predicted_likes"] = [p.to_dict() for p in likes]  # one per candidate, in the same order
        data["likes_note"] = likes_note  # how far the predicted likes tell the candidates apart
    timings.add("total", "process start to tweet", process_age())
    if args.timings:
        data["cold_timings"] = timings.to_dict()
        say(timings.table())
    if not args.json:
        a = prediction.analysis
        lines = [f"caption:    {a.caption or '-'}", f"ocr:        {' '.join(a.ocr.split()) or '-'}",
                 f"transcript: {a.transcript or '-'}"]
        if a.brand is not None:
            lines.append(f"history:    {a.brand.note}")
            lines += [f"  example:  {t.date[:10]}  {t.content}" for t in a.brand.tweets]
        lines += ["", prediction.tweet, *([f"  {describe(likes[0])}"] if likes else [])]
        for i, c in enumerate(prediction.candidates[1:], 2):
            lines += [f"  alt {i}: {c}", *([f"         {describe(likes[i - 1])}"] if likes else [])]
        if likes_note:
            lines.append(likes_note)
        if prediction.grounding.get("kit_added"):
            lines.append(f"brand kit added: {' '.join(prediction.grounding['kit_added'])}")
        unsupported = prediction.grounding.get("unsupported", [])
        if unsupported:
            lines.append(f"unsupported by the inputs: {'; '.join(unsupported)}")
        emit(data, False, "\n".join(lines))
    else:
        emit(data, True, "")
    _release(loads, pipeline)
    return 0


def _release(loads, pipeline) -> None:
    """Wait for the background lanes (a lane may still be priming the LLM) and free the models here, in the main
    thread, before the interpreter shuts down: a CTranslate2 generator torn down during interpreter finalisation
    while a daemon thread was inside it aborted the process ('terminate called without an active exception')."""
    import gc

    from core import model_cache

    for thread in loads.threads:
        thread.join()
    pipeline.release()
    model_cache.clear()
    gc.collect()


def run_batch(args) -> int:
    from tqdm import tqdm

    from core.batch import check_output, media_root_for, read_tweet_csv, run_batch

    in_path, out_path = Path(args.input), Path(args.out)
    # Everything a person can get wrong fails here, in a second, before any model loads.
    if getattr(args, "engine", "local") != "ray" and (args.address or args.actors or args.gpus_per_actor is not None):
        raise UserError("--address, --actors and --gpus-per-actor need --engine ray")
    read_tweet_csv(in_path)
    check_output(out_path, in_path)
    media_root = media_root_for(in_path, Path(args.media_root) if args.media_root else None)
    if getattr(args, "engine", "local") == "ray" and args.history:
        raise UserError("--history works with the local engine; drop --engine ray (or --history)")
    history = _history(args)
    likes_model = _likes(args)
    pipeline = _pipeline(args)
    bar = tqdm(total=None, desc="tweets", unit="row", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    if getattr(args, "engine", "local") == "ray":
        from core.batch.ray_engine import describe_plan, parse_actors, run_batch_ray

        actors = parse_actors(args.actors)
        result = run_batch_ray(in_path, out_path, pipeline.specs, _generation_config(args), progress,
                               limit=args.limit, media_root=media_root, address=args.address, actors=actors,
                               on_start=lambda cpus: say(describe_plan(cpus, actors)),
                               gpus_per_actor=args.gpus_per_actor)
    else:
        result = run_batch(in_path, out_path, pipeline, _generation_config(args), progress, limit=args.limit,
                           media_root=media_root, history=history, history_k=args.examples,
                           likes_model=likes_model, rank=args.rank,
                           brand_kit=not args.no_brand_kit)
    bar.close()
    failed = int((result["error"].astype(str).str.len() > 0).sum())
    say(f"wrote {len(result)} rows to {out_path} ({failed} with a media error noted in the 'error' column)")
    return 0


def run_models(args) -> int:
    from core.registry import TASKS, aliases, current_profile, load_registry, resolve

    profile = current_profile(args.profile)
    data = {
        "profile": profile,
        "tasks": {task: resolve(task, profile=profile).model for task in TASKS},
        "aliases": {name: {"task": a.task, "backend": a.backend, "licence": a.licence}
                    for name, a in aliases().items()},
        "profiles": {name: dict(p) for name, p in load_registry()["profiles"].items()},
    }
    human = "\n".join(f"{task:<11} {model}" for task, model in data["tasks"].items())
    emit(data, args.json, f"profile: {profile}\n{human}")
    return 0


def run_prepare(args) -> int:
    """Do the slow one-time work at install time, so the first prediction is as fast as the second."""
    from core.model_files import convert_gguf, easyocr_dir, whisper_dir
    from core.registry import aliases, resolve

    wanted = {task: resolve(task, profile=args.profile).model for task in ("caption", "ocr", "asr", "llm")}
    for name, alias in aliases().items():
        if not args.all and name not in wanted.values():
            continue
        spec = resolve(alias.task, name, device=args.device)
        if alias.backend == "gguf":
            say(f"{name}: {convert_gguf(spec)}")
        if spec.engine == "ctranslate2":  # the engine's int8 copy, made from the safetensors one
            from core.stages.llm import ct2 as llm_ct2

            say(f"{name} (ctranslate2): {llm_ct2.convert(spec, llm_ct2.prepare_device(spec))}")
        elif alias.backend == "faster-whisper":
            say(f"{name}: {whisper_dir(spec)}")
        elif alias.backend == "efficientnet":
            from core.stages.caption import onnx_model as caption_onnx

            try:  # the captioner on ONNX Runtime (same labels, no torch import); without it captioning keeps torch
                exported = caption_onnx.export_captioner(caption_onnx.weights_file(spec))
                say(f"{name} (ONNX Runtime): {exported}")
            except ModelUnavailableError as exc:
                say(f"note: {exc}")
        elif alias.backend == "easyocr":
            say(f"{name}: {easyocr_dir(spec)}")
            from core.stages.ocr import detector_onnx as ocr_onnx

            try:  # the detector on ONNX Runtime (same boxes, faster); without it OCR keeps the torch detector
                exported = ocr_onnx.export_detector(easyocr_dir(spec) / ocr_onnx.WEIGHTS)
                say(f"{name} (detector, ONNX Runtime): {exported}")
            except ModelUnavailableError as exc:
                say(f"note: {exc}")
            from core.stages.ocr import recogniser_onnx as ocr_recogniser_onnx

            try:  # with the detector's export: OCR without torch, torchvision or easyocr (~5.5 s of a cold start)
                weights = easyocr_dir(spec) / ocr_recogniser_onnx.WEIGHTS
                network, charset = ocr_recogniser_onnx.export_recogniser(weights)
                say(f"{name} (recogniser, ONNX Runtime): {network}, {charset.name}")
            except ModelUnavailableError as exc:
                say(f"note: {exc}")
    return 0






def _add_generation_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="LLM alias, hub id or local folder (default: the profile's LLM)")
    p.add_argument("--adapter", help="LoRA adapter folder to apply to the LLM")
    p.add_argument("--4bit", dest="load_in_4bit", action="store_true", help="load the LLM in 4-bit (CUDA only)")
    p.add_argument("--backend", choices=("ctranslate2", "transformers", "openai"),
                   help="what runs the LLM: ctranslate2 (int8, default for the offline LLMs), transformers "
                        "(default for hub models; what training uses) or openai (a server, see --llm-url); "
                        "env M2T_LLM_BACKEND")
    p.add_argument("--llm-url", metavar="URL",
                   help="an OpenAI-compatible server (vLLM, llama-server, Ollama), e.g. http://127.0.0.1:8080/v1; "
                        "implies --backend openai; env M2T_LLM_URL")
    p.add_argument("--llm-model", metavar="NAME",
                   help="the model name the server serves (default: --model if served, else its only model); "
                        "env M2T_LLM_SERVED_MODEL")
    p.add_argument("--max-new-tokens", type=positive_int, default=60)
    p.add_argument("--candidates", type=positive_int, default=1, help="number of tweets to write (>1 samples)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=positive_float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-facts-first", action="store_true",
                   help="let the model start the tweet itself (by default it opens with the media's own text, "
                        "which keeps the post's facts at no extra cost)")




def add_history_flags(p: argparse.ArgumentParser) -> None:
    """``--history CSV`` and ``--examples K``: the brand's own earlier tweets as examples in the prompt."""
    p.add_argument("--history", metavar="CSV", help="a tweet dump with content (and date, username): the brand's "
                   "earlier tweets become examples in the prompt (same account first, nearest by media text)")
    p.add_argument("--examples", type=non_negative_int, default=3, metavar="K",
                   help="history tweets per prompt (default 3; 0: none)")
    p.add_argument("--rank", choices=("grounding", "likes"), default="grounding",
                   help="with --history: the candidate put first: the grounding check's best (default), or the one "
                   "with the most predicted likes among those the grounding check passes (see docs/engagement.md)")
    p.add_argument("--no-brand-kit", action="store_true", help="with --history: leave the tweet as the model wrote "
                   "it (the brand kit otherwise adds the brand's sign-off, hashtag and emoji where they are missing)")


def configure_caption(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+")
    p.add_argument("--model", help="efficientnet-lite0 (default), a hub id or a local folder")


def configure_ocr(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+")
    p.add_argument("--model", help="easyocr-en (default)")


def configure_asr(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+")
    p.add_argument("--model", help="whisper-base (default), whisper-tiny.en, a hub id or folder")
    p.add_argument("--language", help="e.g. en; detected when omitted")
    p.add_argument("--format", choices=("txt", "srt", "vtt"), default="txt", help="text output format")


def configure_predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--company", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--date", required=True, help="e.g. '2023-04-01 10:00'")
    p.add_argument("--likes", type=int, help="target likes (stated as a bucket in the prompt)")
    p.add_argument("--media", help="file path, http(s) URL, or a tweet dump's media field")
    p.add_argument("--timings", action="store_true",
                   help="also print where the seconds went: start-up, each model load, each stage (stderr; "
                        "with --json also under cold_timings)")
    add_history_flags(p)
    _add_generation_flags(p)


def configure_batch(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Predict a tweet for every row of a tweet dump. The output has the input's columns plus generated, "
        "caption, ocr, transcript and error, and is written after every chunk: rerun the same command to "
        "resume. Rows are matched to finished ones by id and occurrence, so rows with duplicate ids are all "
        "kept and each is generated exactly once (the 2nd row with id 7 is its own row); a rerun on a "
        "finished output adds nothing. Local media paths must be relative and stay inside the CSV's folder "
        "(or --media-root); other rows get a tweet from their metadata and the reason in 'error'. Cells "
        "starting with = + - @, tab or CR are written with a leading ' so spreadsheets show them as text.")
    p.add_argument("input", help="CSV with date, username, inferred company (and id, likes, media)")
    p.add_argument("--out", required=True,
                   help="output CSV, in an existing folder (an interrupted run resumes from it)")
    p.add_argument("--media-root", metavar="DIR",
                   help="folder that relative media paths start from and must stay in (default: the CSV's folder)")
    p.add_argument("--limit", type=positive_int, help="only the first N rows")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (small files); ray: Ray Data actor pools per stage, embedded here "
                        "or on a cluster (--address / RAY_ADDRESS); also writes Parquet parts to OUT.parts/")
    p.add_argument("--address", help="Ray head node HOST:PORT (or 'auto') to run on; default: RAY_ADDRESS, "
                                     "else an embedded Ray on this machine")
    p.add_argument("--actors", help="actors per stage (media, caption, ocr, asr, llm): N for each, or "
                                    "e.g. ocr=2,llm=3 (default 1 each)")
    p.add_argument("--gpus-per-actor", type=float, metavar="G",
                   help="GPUs each model actor (caption, ocr, asr, llm) requests; default: the cluster's GPUs "
                        "shared evenly by them (none on a CPU-only cluster). Fractions share a GPU, e.g. 0.25")
    add_history_flags(p)
    _add_generation_flags(p)


def configure_models(p: argparse.ArgumentParser) -> None:
    """No options beyond the common ones."""


def configure_prepare(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="also the alternative LLMs and ASR models")
