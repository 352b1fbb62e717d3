"""``python -m core …``: every stage from the command line.

Machine-readable results go to stdout (``--json``), progress and errors to stderr, so
``python -m core predict … --json | jq`` works. Errors a person can fix are one line and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from core.errors import UserError

EXIT_USER_ERROR = 2


def _quiet_libraries(profile: str | None) -> None:
    """Keep stderr for our progress; stop hub lookups when the profile is offline."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from core.registry import current_profile

    if current_profile(profile) == "offline":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _emit(data, as_json: bool, human: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if as_json else human)


def _progress(iterable, desc: str, total: int | None = None):
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, unit="file", disable=None)


def _spec(args, task: str, *, own_model: bool = True):
    """The spec for ``task``; ``own_model=False`` keeps the profile's model (``--model`` names another stage's)."""
    from core.registry import resolve

    return resolve(
        task,
        getattr(args, "model", None) if own_model else None,
        profile=args.profile,
        adapter=getattr(args, "adapter", None) if own_model else None,
        device=args.device,
        load_in_4bit=getattr(args, "load_in_4bit", False),
    )


class _Lazy:
    """A model loaded on first use, so commands whose inputs are all bad never load it."""

    def __init__(self, spec) -> None:
        self.spec = spec
        self._model = None

    def get(self):
        if self._model is None:
            from core.pipeline import load_model

            _say(f"loading {self.spec.task} model {self.spec.model} ({self.spec.backend})…")
            self._model = load_model(self.spec)
        return self._model


def _for_each_file(files: list[str], desc: str, needs: str, work) -> tuple[list[dict], int]:
    """Decode each file, then run ``work(name, media)``; a bad file is reported and skipped.

    Files are decoded before any model loads, so a typo'd path fails in a second, not after a model load.
    """
    from core.media import load_media

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
            _say(f"error: {exc}")
    results = []
    for name, media in _progress(decoded, desc):
        try:
            results.append({"file": name, **work(name, media)})
        except UserError as exc:
            failures += 1
            _say(f"error: {exc}")
    return results, failures


def cmd_caption(args) -> int:
    from core.captioning import caption_images

    model = _Lazy(_spec(args, "captioning"))

    def work(name: str, media) -> dict:
        cap = caption_images(model.get(), media.images[:1])[0]
        return {"caption": cap.caption, "labels": [[label, score] for label, score in cap.labels]}

    results, failures = _for_each_file(args.files, "captioning", "image", work)
    _emit(results, args.json, "\n".join(f"{r['file']}\t{r['caption']}" for r in results))
    return 1 if failures else 0


def cmd_ocr(args) -> int:
    from core.ocr import read_images

    model = _Lazy(_spec(args, "ocr"))

    def work(name: str, media) -> dict:
        return read_images(model.get(), media.images).to_dict()

    results, failures = _for_each_file(args.files, "ocr", "image", work)
    _emit(results, args.json, "\n\n".join(f"== {r['file']}\n{r['text']}" for r in results))
    return 1 if failures else 0


def cmd_transcribe(args) -> int:
    from core.transcription import to_srt, to_vtt, transcribe

    model = _Lazy(_spec(args, "asr"))
    rendered: list[str] = []

    def work(name: str, media) -> dict:
        transcript = transcribe(model.get(), media.audio, language=args.language)
        rendered.append({"srt": to_srt, "vtt": to_vtt}.get(args.format, lambda t: t.text)(transcript))
        return transcript.to_dict()

    results, failures = _for_each_file(args.files, "transcribing", "audio", work)
    _emit(results, args.json, "\n\n".join(rendered))
    return 1 if failures else 0


def _generation_config(args):
    from core.generation import GenerationConfig

    return GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        num_candidates=args.candidates,
        do_sample=args.sample,
        temperature=args.temperature,
        batch_size=getattr(args, "batch_size", 8),
        seed=args.seed,
    )


def _pipeline(args):
    from core.pipeline import Pipeline
    from core.registry import TASKS

    specs = {task: _spec(args, task, own_model=task == "llm") for task in TASKS}
    return Pipeline(specs, profile=args.profile)


def cmd_predict(args) -> int:
    from core.pipeline import PredictRequest

    pipeline = _pipeline(args)

    def on_stage(stage: str, state: str) -> None:
        if state == "start" and stage not in pipeline._models:
            spec = pipeline.specs[stage]
            _say(f"loading {stage} model {spec.model}…")
        elif state not in ("start", "skipped"):
            _say(f"{stage}: {state}")

    media = None
    if args.media:
        from core.media import load_media

        media = load_media(args.media)  # a media the user named explicitly must load: fail before the models
    request = PredictRequest(company=args.company, username=args.username, date=args.date, likes=args.likes,
                             media=media)
    _say(f"loading llm model {pipeline.specs['llm'].model}…")
    pipeline.model("llm")
    prediction = pipeline.predict(request, _generation_config(args), on_stage=on_stage)
    for error in prediction.analysis.errors:
        _say(f"warning: {error}")
    data = prediction.to_dict()
    if not args.json:
        a = prediction.analysis
        lines = [f"caption:    {a.caption or '-'}", f"ocr:        {' '.join(a.ocr.split()) or '-'}",
                 f"transcript: {a.transcript or '-'}", "", prediction.tweet]
        lines += [f"  alt {i}: {c}" for i, c in enumerate(prediction.candidates[1:], 2)]
        _emit(data, False, "\n".join(lines))
    else:
        _emit(data, True, "")
    return 0


def cmd_batch(args) -> int:
    from tqdm import tqdm

    from core.batch import read_tweet_csv, run_batch

    in_path, out_path = Path(args.input), Path(args.out)
    read_tweet_csv(in_path)  # fail on a bad CSV before loading any model
    pipeline = _pipeline(args)
    bar = tqdm(total=None, desc="tweets", unit="row", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    result = run_batch(in_path, out_path, pipeline, _generation_config(args), progress, limit=args.limit)
    bar.close()
    failed = int((result["error"].astype(str).str.len() > 0).sum())
    _say(f"wrote {len(result)} rows to {out_path} ({failed} with a media error noted in the 'error' column)")
    return 0


def cmd_models(args) -> int:
    from core.registry import TASKS, aliases, current_profile, load_registry, resolve

    profile = current_profile(args.profile)
    data = {
        "profile": profile,
        "tasks": {task: resolve(task, profile=profile).model for task in TASKS},
        "aliases": {name: {k: v for k, v in a.items() if k in ("task", "backend", "licence")}
                    for name, a in aliases().items()},
        "profiles": {name: dict(p) for name, p in load_registry()["profiles"].items()},
    }
    human = "\n".join(f"{task:<11} {model}" for task, model in data["tasks"].items())
    _emit(data, args.json, f"profile: {profile}\n{human}")
    return 0


def cmd_prepare(args) -> int:
    """Do the slow one-time work at install time, so the first prediction is as fast as the second."""
    from core.generation import convert_gguf
    from core.model_files import easyocr_dir, whisper_dir
    from core.registry import aliases, resolve

    wanted = {task: resolve(task, profile=args.profile).model for task in ("ocr", "asr", "llm")}
    for name, alias in aliases().items():
        if not args.all and name not in wanted.values():
            continue
        spec = resolve(alias["task"], name)
        if alias["backend"] == "gguf":
            _say(f"{name}: {convert_gguf(spec)}")
        elif alias["backend"] == "faster-whisper":
            _say(f"{name}: {whisper_dir(spec)}")
        elif alias["backend"] == "easyocr":
            _say(f"{name}: {easyocr_dir(spec)}")
    return 0


def cmd_bench(args) -> int:
    from core.bench import run_benchmark

    return run_benchmark(args)


def _add_generation_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="LLM alias, hub id or local folder (default: the profile's LLM)")
    p.add_argument("--adapter", help="LoRA adapter folder to apply to the LLM")
    p.add_argument("--4bit", dest="load_in_4bit", action="store_true", help="load the LLM in 4-bit (CUDA only)")
    p.add_argument("--max-new-tokens", type=int, default=60)
    p.add_argument("--candidates", type=int, default=1, help="number of tweets to write (>1 samples)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", help="model profile: offline (default) or hub")
    common.add_argument("--device", help="cpu, cuda or auto (default)")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    parser = argparse.ArgumentParser(prog="python -m core", description="Media + metadata → tweet.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("caption", parents=[common], help="caption images")
    p.add_argument("files", nargs="+")
    p.add_argument("--model")
    p.set_defaults(func=cmd_caption)

    p = sub.add_parser("ocr", parents=[common], help="read text in images (reading order)")
    p.add_argument("files", nargs="+")
    p.add_argument("--model")
    p.set_defaults(func=cmd_ocr)

    p = sub.add_parser("transcribe", parents=[common], help="transcribe audio or video")
    p.add_argument("files", nargs="+")
    p.add_argument("--model", help="whisper-base (default), whisper-tiny.en, a hub id or folder")
    p.add_argument("--language", help="e.g. en; detected when omitted")
    p.add_argument("--format", choices=("txt", "srt", "vtt"), default="txt", help="text output format")
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("predict", parents=[common], help="predict a tweet for media + metadata")
    p.add_argument("--company", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--date", required=True, help="e.g. '2023-04-01 10:00'")
    p.add_argument("--likes", type=int, help="target likes (stated as a bucket in the prompt)")
    p.add_argument("--media", help="file path, http(s) URL, or a tweet dump's media field")
    _add_generation_flags(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("batch", parents=[common], help="predict tweets for every row of a tweet-dump CSV")
    p.add_argument("input", help="CSV with date, username, inferred company (and id, likes, media)")
    p.add_argument("--out", required=True, help="output CSV (an interrupted run resumes from it)")
    p.add_argument("--limit", type=int, help="only the first N rows")
    p.add_argument("--batch-size", type=int, default=8)
    _add_generation_flags(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("models", parents=[common], help="show the model registry")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("bench", parents=[common], help="benchmark load times, stage latency, batching, ASR RTFx")
    p.add_argument("--out", default="bench/results.json", help="where to write the JSON results")
    p.add_argument("--prompts", type=int, default=16, help="prompts for the batching comparison")
    p.add_argument("--max-new-tokens", type=int, default=60)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("prepare", parents=[common], help="assemble and convert the offline models once")
    p.add_argument("--all", action="store_true", help="also the alternative LLMs and ASR models")
    p.set_defaults(func=cmd_prepare)

    # Commands that live in their own modules register themselves (they import little at start-up).
    from core.evaluate import add_parser as add_evaluate_parser
    from core.serve import add_serve_parser

    add_serve_parser(sub)
    add_evaluate_parser(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command != "serve":  # serve only starts Streamlit: importing transformers would just slow it
            _quiet_libraries(args.profile)
        return args.func(args)
    except UserError as exc:
        _say(f"error: {exc}")
        return EXIT_USER_ERROR
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not an error worth a traceback
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except MemoryError:
        _say("error: out of memory; try a smaller model (--model smollm2-135m) or fewer candidates")
        return 1
