"""``m2t bench``: load times, stage latency, batching speed-up and ASR RTFx, in one run.

Speed claims in the README come from this script's output, as ratios measured in the same run;
absolute times are only meaningful with the machine they were measured on, which is recorded.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the models' libraries load only when a benchmark runs, not for ``m2t --help``
    from core.pipeline import Pipeline

BENCH_COMPANIES = ["Nike", "Starbucks", "Tesla", "Adidas", "Apple", "Lego", "Spotify", "Airbnb", "Volvo", "Ikea",
                   "Netflix", "Canon", "Sony", "Heinz", "Oreo", "Dove"]


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _inputs(folder: Path) -> dict[str, Path]:
    from core.devtools.synthetic import make_video, render_text_image, speak

    poster = folder / "poster.png"
    render_text_image("GRAND OPENING this Saturday 10am free coffee for everyone", size=(800, 450)).save(poster)
    speech = speak(
        "Welcome to the grand opening of our new store. Doors open at ten in the morning this Saturday. "
        "The first fifty guests get a free coffee and a tote bag. Bring your friends and family.",
        folder / "speech.wav",
    )
    from PIL import Image

    with Image.open(poster) as im:
        frame = im.convert("RGB")
    video = make_video(folder / "clip.mp4", [frame, frame, frame], fps=2, seconds_per_image=3.0, audio_wav=speech)
    return {"poster": poster, "speech": speech, "video": video}


def bench_loads(specs: dict) -> dict[str, dict[str, float]]:
    """First load in this process (imports, conversion cache reads) vs a second load (files in page cache)."""
    from core.pipeline import load_model

    out = {}
    for task, spec in specs.items():
        _, cold = _timed(load_model, spec)
        model, warm = _timed(load_model, spec)
        out[task] = {"model": spec.model, "cold_s": cold, "warm_s": warm}
        del model
    return out


def bench_fresh_process_stack(profile: str | None) -> float:
    """What a user waits for after the first run: a new Python process importing and loading all four models."""
    import os
    import subprocess

    code = (
        "from core.pipeline import Pipeline\n"
        "from core.registry import TASKS\n"
        f"p = Pipeline(profile={profile!r})\n"
        "[p.model(t) for t in TASKS]\n"
    )
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parents[2]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def bench_generation(pipeline: Pipeline, n_prompts: int, max_new_tokens: int) -> dict[str, float]:
    from core.stages.llm import GenerationConfig, generate
    from core.stages.prompt import TweetContext, build_prompt

    llm = pipeline.model("llm")
    contexts = [TweetContext(c, c.lower(), "2023-05-01 12:00", likes=100 * (i + 1), ocr_text=f"{c} summer launch")
                for i, c in enumerate((BENCH_COMPANIES * 4)[:n_prompts])]
    prompts = [build_prompt(c, llm.prompt_style, llm.tokenizer) for c in contexts]
    # min_new_tokens makes both runs write the same number of tokens, so tokens/s compare like for like.
    fixed = {"max_new_tokens": max_new_tokens, "min_new_tokens": max_new_tokens}
    generate(llm, prompts[:1], GenerationConfig(max_new_tokens=4))  # warm-up
    stats_one: dict = {}
    stats_batch: dict = {}
    _, t_one = _timed(generate, llm, prompts, GenerationConfig(batch_size=1, **fixed), stats=stats_one)
    _, t_batch = _timed(generate, llm, prompts, GenerationConfig(batch_size=n_prompts, **fixed), stats=stats_batch)
    tok_one, tok_batch = stats_one["new_tokens"], stats_batch["new_tokens"]
    return {
        "prompts": n_prompts,
        "one_at_a_time_s": t_one,
        "batched_s": t_batch,
        "one_at_a_time_tok_s": tok_one / t_one,
        "batched_tok_s": tok_batch / t_batch,
        "speedup_tok_s": (tok_batch / t_batch) / (tok_one / t_one),
        "speedup_wall": t_one / t_batch,
    }


def bench_stages(pipeline: Pipeline, inputs: dict[str, Path], max_new_tokens: int) -> dict[str, float]:
    from core.media.decode import load_media
    from core.pipeline import PredictRequest
    from core.stages.asr import transcribe
    from core.stages.caption import caption_images
    from core.stages.llm import GenerationConfig
    from core.stages.ocr import read_images

    poster = load_media(inputs["poster"])
    speech = load_media(inputs["speech"])
    out: dict[str, float] = {}
    for task in ("caption", "ocr", "asr", "llm"):
        pipeline.model(task)
    caption_images(pipeline.model("caption"), poster.images)  # warm-up: first call allocates buffers
    _, out["caption_s"] = _timed(caption_images, pipeline.model("caption"), poster.images)
    _, out["ocr_s"] = _timed(read_images, pipeline.model("ocr"), poster.images)
    _, asr_s = _timed(transcribe, pipeline.model("asr"), speech.audio)
    out["asr_s"] = asr_s
    out["asr_audio_s"] = speech.audio_seconds
    out["asr_rtfx"] = speech.audio_seconds / asr_s
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)  # worst case: all tokens
    request = PredictRequest("Bean Town", "beantown", "2023-05-06 09:00", likes=250, media=str(inputs["poster"]))
    pipeline.predict(request, cfg)  # warm-up
    prediction, out["predict_image_warm_s"] = _timed(pipeline.predict, request, cfg)
    out["predict_image_new_tokens"] = max_new_tokens
    video_request = PredictRequest("Bean Town", "beantown", "2023-05-06 09:00", media=str(inputs["video"]))
    _, out["predict_video_warm_s"] = _timed(pipeline.predict, video_request, cfg)
    out["example_tweet"] = prediction.tweet
    return out


def _machine() -> str:
    from core.eval.store import hardware_description

    return f"{hardware_description()}; Python {platform.python_version()}"


def _table(results: dict) -> str:
    rows = [f"machine: {results['machine']}", "", f"{'model load':<28}{'cold s':>10}{'warm s':>10}"]
    for task, r in results["loads"].items():
        rows.append(f"{task + ' (' + r['model'] + ')':<28}{r['cold_s']:>10.2f}{r['warm_s']:>10.2f}")
    rows.append(f"{'whole stack, new process':<28}{results['stack_cold_s']:>10.2f}")
    s = results["stages"]
    rows += ["", "stage latency (warm)"]
    rows += [f"  caption {s['caption_s']:.3f} s   ocr {s['ocr_s']:.2f} s   asr {s['asr_s']:.2f} s "
             f"({s['asr_audio_s']:.1f} s audio, RTFx {s['asr_rtfx']:.1f})"]
    rows += [f"  predict, one image, {results['max_new_tokens']} max new tokens: {s['predict_image_warm_s']:.2f} s"
             f" ({s['predict_image_new_tokens']} tokens written, no early stop)"]
    rows += [f"  predict, video with speech: {s['predict_video_warm_s']:.2f} s"]
    g = results["generation"]
    rows += ["", f"generation, {g['prompts']} prompts"]
    rows += [f"  one at a time: {g['one_at_a_time_tok_s']:.1f} tok/s ({g['one_at_a_time_s']:.1f} s)"]
    rows += [f"  batched:       {g['batched_tok_s']:.1f} tok/s ({g['batched_s']:.1f} s)"]
    rows += [f"  speed-up:      {g['speedup_tok_s']:.2f}x tokens/s, {g['speedup_wall']:.2f}x wall time"]
    return "\n".join(rows)


def configure_bench(p) -> None:
    from core.commands import positive_int

    p.add_argument("--out", default="bench/results.json",
                   help="where to write the JSON results (missing folders are created)")
    p.add_argument("--prompts", type=positive_int, default=16, help="prompts for the batching comparison")
    p.add_argument("--max-new-tokens", type=positive_int, default=60)


def run_bench(args) -> int:
    from core.outputs import writable_file
    from core.pipeline import Pipeline
    from core.registry import TASKS, resolve

    writable_file(args.out, "--out", make_parents=True)  # minutes of benchmarks must not end in "cannot write"
    specs = {task: resolve(task, profile=args.profile, device=args.device) for task in TASKS}
    print("benchmarking model loads…", file=sys.stderr)
    loads = bench_loads(specs)
    print("benchmarking a fresh process loading the whole stack…", file=sys.stderr)
    stack = bench_fresh_process_stack(args.profile)
    pipeline = Pipeline(specs)
    with tempfile.TemporaryDirectory() as tmp:
        print("benchmarking stages…", file=sys.stderr)
        stages = bench_stages(pipeline, _inputs(Path(tmp)), args.max_new_tokens)
    print("benchmarking batched generation…", file=sys.stderr)
    generation = bench_generation(pipeline, args.prompts, args.max_new_tokens)
    results = {
        "machine": _machine(),
        "profile": args.profile or "offline",
        "max_new_tokens": args.max_new_tokens,
        "loads": loads,
        "stack_cold_s": stack,
        "stages": stages,
        "generation": generation,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2) if args.json else _table(results))
    print(f"wrote {out}", file=sys.stderr)
    return 0
