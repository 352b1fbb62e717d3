"""``m2t bench``: load times, stage latency, batching speed-up and ASR RTFx, in one run.

Speed claims in the README come from this script's output, as ratios measured in the same run;
absolute times are only meaningful with the machine they were measured on, which is recorded.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from core.devtools.results import merge_results
from core.eval.store import machine_description
from core.stages.llm import GenerationConfig, generate

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


def _bench_prompts(llm, n_prompts: int) -> list[str]:
    from core.stages.prompt import TweetContext, build_prompt

    contexts = [TweetContext(c, c.lower(), "2023-05-01 12:00", likes=100 * (i + 1), ocr_text=f"{c} summer launch")
                for i, c in enumerate((BENCH_COMPANIES * 4)[:n_prompts])]
    return [build_prompt(c, llm.prompt_style, llm.tokenizer) for c in contexts]


def bench_generation(pipeline: Pipeline, n_prompts: int, max_new_tokens: int) -> dict[str, float]:
    llm = pipeline.model("llm")
    prompts = _bench_prompts(llm, n_prompts)
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


def bench_tweets_one_at_a_time(pipeline: Pipeline, n_prompts: int, max_new_tokens: int) -> dict[str, float]:
    """Seconds per tweet as ``m2t batch --batch-size 1`` spends them in the LLM: the bench prompts one at
    a time with the default settings (stop strings active, the whole prompt processed, each call
    separate). Unlike forced-length tokens/s it counts what an engine saves by stopping at the
    tweet's end; the engines' tweets differ in length, so tokens per tweet are recorded beside it."""
    llm = pipeline.model("llm")
    prompts = _bench_prompts(llm, n_prompts)
    generate(llm, prompts[:1], GenerationConfig(max_new_tokens=4))  # warm-up
    stats: dict = {}
    start = time.perf_counter()
    for prompt in prompts:
        generate(llm, [prompt], GenerationConfig(max_new_tokens=max_new_tokens, batch_size=1), stats=stats)
    seconds = time.perf_counter() - start
    return {"tweet_s": seconds / len(prompts), "tweet_new_tokens": stats.get("new_tokens", 0) / len(prompts)}


def bench_stages(pipeline: Pipeline, inputs: dict[str, Path], max_new_tokens: int) -> dict[str, float]:
    from core.media.decode import load_media
    from core.pipeline import PredictRequest
    from core.stages.asr import transcribe
    from core.stages.caption import caption_images
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


ENGINES_COMPARED = ("transformers", "ctranslate2")


def bench_engine(pipeline: Pipeline, poster: Path, n_prompts: int, max_new_tokens: int, repeats: int = 3) -> dict:
    """One engine: forced-length tokens/s (one at a time, batched) and warm image→tweet as a user gets it.

    The image→tweet time is the pipeline's ``predict`` with the default generation settings (stop
    strings active, prompt processing included): what ``m2t predict`` waits for once models are loaded.
    """
    from core.pipeline import PredictRequest

    out: dict = dict(bench_generation(pipeline, n_prompts, max_new_tokens))
    out.update(bench_tweets_one_at_a_time(pipeline, n_prompts, max_new_tokens))
    request = PredictRequest("Bean Town", "beantown", "2023-05-06 09:00", likes=250, media=str(poster))
    pipeline.predict(request)  # warm-up: first call fills caches (and the engine's static prefix)
    times, tweets = [], []
    for _ in range(repeats):
        prediction, seconds = _timed(pipeline.predict, request)
        times.append(seconds)
        tweets.append(prediction.tweet)
    out["predict_image_warm_s"] = sorted(times)[len(times) // 2]
    out["predict_image_runs_s"] = times
    out["predict_image_llm_s"] = prediction.analysis.timings.get("llm")
    out["example_tweet"] = tweets[-1]
    return out


def bench_engines(specs: dict, poster: Path, n_prompts: int, max_new_tokens: int) -> dict:
    """Both LLM engines in one run, same prompts, same other stages; ratios are ctranslate2 / transformers."""
    import gc
    import os
    from dataclasses import replace

    from core.pipeline import Pipeline, load_model
    from core.registry import resolve

    shared: dict = {}

    def loader(spec):  # caption/OCR load once for both engines
        if spec.task == "llm":
            return load_model(spec)
        if spec not in shared:
            shared[spec] = load_model(spec)
        return shared[spec]

    llm = specs["llm"]
    out: dict = {"model": llm.model, "load_avg_before": list(os.getloadavg())}
    for engine in ENGINES_COMPARED:
        spec = resolve("llm", llm.model, device=llm.device, engine=engine)
        spec = replace(spec, adapter=llm.adapter)
        print(f"benchmarking the {engine} engine…", file=sys.stderr)
        pipeline = Pipeline({**specs, "llm": spec}, loader=loader)
        _, load_s = _timed(pipeline.model, "llm")
        out[engine] = {"load_s": load_s, **bench_engine(pipeline, poster, n_prompts, max_new_tokens)}
        del pipeline
        gc.collect()
    out["load_avg_after"] = list(os.getloadavg())
    fast, slow = out["ctranslate2"], out["transformers"]
    out["ratios"] = {
        "one_at_a_time_tok_s": fast["one_at_a_time_tok_s"] / slow["one_at_a_time_tok_s"],
        "batched_tok_s": fast["batched_tok_s"] / slow["batched_tok_s"],
        "tweet_one_at_a_time": slow["tweet_s"] / fast["tweet_s"],
        "predict_image_warm": slow["predict_image_warm_s"] / fast["predict_image_warm_s"],
    }
    return out


def engines_table(engines: dict) -> str:
    """The engine comparison as the README shows it."""
    rows = [f"LLM engines ({engines['model']}): forced-length tokens/s; LLM s per tweet and warm image→tweet"
            " with stop strings",
            f"  {'engine':<13}{'one at a time':>15}{'batched':>10}{'s/tweet':>12}{'image→tweet':>13}"]
    for engine in ENGINES_COMPARED:
        e = engines[engine]
        rows.append(f"  {engine:<13}{e['one_at_a_time_tok_s']:>11.1f} t/s{e['batched_tok_s']:>6.1f} t/s"
                    f"{e.get('tweet_s', float('nan')):>10.2f} s{e['predict_image_warm_s']:>11.2f} s")
    r = engines["ratios"]
    rows.append(f"  ratio ct2/tf {r['one_at_a_time_tok_s']:>12.2f}x{r['batched_tok_s']:>9.2f}x"
                f"{r.get('tweet_one_at_a_time', float('nan')):>11.2f}x{r['predict_image_warm']:>12.2f}x faster")
    before, after = engines["load_avg_before"][0], engines["load_avg_after"][0]
    rows.append(f"  load average before/after: {before:.1f} / {after:.1f}")
    return "\n".join(rows)


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
    from core.console import positive_int

    p.add_argument("--out", default="bench/results.json",
                   help="where to write the JSON results (missing folders are created)")
    p.add_argument("--prompts", type=positive_int, default=16, help="prompts for the batching comparison")
    p.add_argument("--max-new-tokens", type=positive_int, default=60)
    p.add_argument("--engines-only", action="store_true",
                   help="only compare the LLM engines (transformers vs ctranslate2)")
    p.add_argument("--history-index", action="store_true",
                   help="measure only the brand-history index (build s, peak memory, queries/s) on a generated dump")
    p.add_argument("--history-rows", type=positive_int, default=300_000, help="--history-index: tweets in the dump")
    p.add_argument("--history-brands", type=positive_int, default=2_000, help="--history-index: brands in it")
    p.add_argument("--likes", action="store_true",
                   help="measure only the likes model (fit s, peak memory, rows/s) on a generated dump")
    p.add_argument("--likes-rows", type=positive_int, default=300_000, help="--likes: history rows to fit on")
    p.add_argument("--likes-predict-rows", type=positive_int, default=100_000, help="--likes: later rows to predict")
    p.add_argument("--likes-brands", type=positive_int, default=2_000, help="--likes: brands in the dump")
    p.add_argument("--batch", action="store_true",
                   help="only compare m2t batch --engine local vs ray (rows/s) on one generated dump")
    p.add_argument("--batch-rows", type=positive_int, default=50, help="--batch: rows in the generated dump")
    p.add_argument("--drafts", metavar="DIR",
                   help="only what a draft costs: the default against one greedy tweet on a generated brand dump's "
                        "later posts with their history (DIR from python -m core.devtools.brand_dump)")
    p.add_argument("--drafts-rows", type=positive_int, default=None, help="--drafts: only the first N rows")
    from core.devtools.speed_bench import configure as configure_speed

    configure_speed(p)  # --ocr, --cold, --serve: the first tweet against the tenth


def _run_drafts_bench(args) -> int:
    from core.devtools.drafts_bench import bench_drafts, drafts_table
    from core.errors import UserError
    from core.outputs import writable_file
    from core.pipeline import Pipeline
    from core.registry import TASKS, resolve

    folder = Path(args.drafts)
    if not (folder / "history.csv").is_file() or not (folder / "test.csv").is_file():
        raise UserError(f"--drafts {folder}: needs history.csv and test.csv (python -m core.devtools.brand_dump)")
    writable_file(args.out, "--out", make_parents=True)
    pipeline = Pipeline({task: resolve(task, profile=args.profile, device=args.device) for task in TASKS})
    result = bench_drafts(pipeline, folder, args.max_new_tokens, args.drafts_rows,
                          lambda n, total: print(f"drafts: row {n}/{total}", file=sys.stderr))
    result["machine"] = machine_description()
    print(json.dumps(result, indent=2) if args.json else drafts_table(result))
    print(f"wrote {merge_results(args.out, {'drafts': result})}", file=sys.stderr)
    return 0


def run_bench(args) -> int:
    if getattr(args, "history_index", False):
        from core.devtools.brand_bench import run as run_history_bench

        return run_history_bench(args)
    if getattr(args, "likes", False):
        from core.devtools.likes_bench import run as run_likes_bench

        return run_likes_bench(args)
    if getattr(args, "batch", False):
        return _run_batch_bench(args)
    if getattr(args, "drafts", None):
        return _run_drafts_bench(args)
    if getattr(args, "ocr", False) or getattr(args, "cold", False) or getattr(args, "serve", False):
        from core.devtools.speed_bench import run as run_speed_bench

        return run_speed_bench(args, merge_results)
    from core.outputs import writable_file

    writable_file(args.out, "--out", make_parents=True)  # minutes of benchmarks must not end in "cannot write"
    from core.pipeline import Pipeline  # torch and transformers load only once the arguments are known good
    from core.registry import TASKS, resolve

    specs = {task: resolve(task, profile=args.profile, device=args.device) for task in TASKS}
    if args.engines_only:
        return _run_engines_only(args, specs)
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
    with tempfile.TemporaryDirectory() as tmp:
        engines = bench_engines(specs, _inputs(Path(tmp))["poster"], args.prompts, args.max_new_tokens)
    results = {
        "machine": machine_description(),
        "profile": args.profile or "offline",
        "max_new_tokens": args.max_new_tokens,
        "loads": loads,
        "stack_cold_s": stack,
        "stages": stages,
        "generation": generation,
        "engines": engines,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2) if args.json else _table(results) + "\n\n" + engines_table(engines))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _run_engines_only(args, specs: dict) -> int:
    """``m2t bench --engines-only``: the engine comparison alone, merged into an existing results file."""
    with tempfile.TemporaryDirectory() as tmp:
        from core.devtools.synthetic import render_text_image

        poster = Path(tmp) / "poster.png"
        render_text_image("GRAND OPENING this Saturday 10am free coffee for everyone", size=(800, 450)).save(poster)
        engines = bench_engines(specs, poster, args.prompts, args.max_new_tokens)
    out = merge_results(args.out, {"machine": machine_description(), "engines": engines})
    print(json.dumps(engines, indent=2) if args.json else engines_table(engines))
    print(f"wrote {out}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- m2t bench --batch (local vs ray engine)


def bench_batch_engines(profile: str | None, device: str | None, rows: int, max_new_tokens: int,
                        batch_size: int = 8) -> dict:
    """Rows/s of ``m2t batch`` on one generated dump, local engine then ray engine (embedded), in one run.

    Both start cold (models load inside the measured time, Ray also starts), as a user's command does;
    ``steady_rows_s`` leaves out everything before the first block was written, i.e. start-up.
    """
    import os

    from core.batch import run_batch
    from core.batch.ray_engine import parse_actors, run_batch_ray
    from core.devtools.synthetic import make_tweet_set
    from core.pipeline import Pipeline
    from core.registry import TASKS, resolve
    specs = {task: resolve(task, profile=profile, device=device) for task in TASKS}
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)
    out: dict = {"rows": rows, "max_new_tokens": max_new_tokens, "batch_size": batch_size,
                 "load_avg_before": list(os.getloadavg())}
    with tempfile.TemporaryDirectory() as tmp:
        _, dump = make_tweet_set(Path(tmp), n_train=0, n_test=rows)
        for engine in ("local", "ray"):
            print(f"benchmarking m2t batch --engine {engine} on {rows} rows…", file=sys.stderr)
            marks: list[tuple[float, int]] = []
            start = time.perf_counter()

            def progress(done: int, total: int, marks=marks, start=start) -> None:
                marks.append((time.perf_counter() - start, done))

            target = Path(tmp) / f"{engine}.csv"
            plan: dict = {}
            if engine == "local":
                run_batch(dump, target, Pipeline(specs), cfg, progress)
            else:
                run_batch_ray(dump, target, specs, cfg, progress, actors=parse_actors(None), on_start=plan.update)
            wall = time.perf_counter() - start
            written = [(t, n) for t, n in marks if n > 0]
            first_t, first_n = written[0]
            out[engine] = {
                "wall_s": wall, "rows_s": rows / wall, "first_block_s": first_t,
                "steady_rows_s": (rows - first_n) / (wall - first_t) if wall > first_t else None,
            }
            if plan:
                out[engine]["cpus_per_actor"] = plan
    out["ray_vs_local_rows_s"] = out["ray"]["rows_s"] / out["local"]["rows_s"]
    out["load_avg_after"] = list(os.getloadavg())
    return out


def batch_engines_table(b: dict) -> str:
    rows = [f"m2t batch, {b['rows']} generated rows, {b['max_new_tokens']} max new tokens, batch {b['batch_size']}",
            f"  {'engine':<8}{'rows/s':>9}{'wall s':>9}{'first block s':>15}{'steady rows/s':>15}"]
    for engine in ("local", "ray"):
        e = b[engine]
        steady = f"{e['steady_rows_s']:.2f}" if e["steady_rows_s"] else "-"
        rows.append(f"  {engine:<8}{e['rows_s']:>9.2f}{e['wall_s']:>9.1f}{e['first_block_s']:>15.1f}{steady:>15}")
    return "\n".join(rows)


def _run_batch_bench(args) -> int:
    """``m2t bench --batch``: the engine comparison alone, merged into an existing results file."""
    from core.outputs import writable_file

    writable_file(args.out, "--out", make_parents=True)
    batch = bench_batch_engines(args.profile, args.device, args.batch_rows, args.max_new_tokens)
    batch["machine"] = machine_description()
    print(json.dumps(batch, indent=2) if args.json else batch_engines_table(batch))
    out = merge_results(args.out, {"batch_engines": batch})
    print(f"wrote {out}", file=sys.stderr)
    return 0
