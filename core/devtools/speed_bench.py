"""``m2t bench --ocr | --cold | --serve``: the first tweet against the tenth, measured in one run each.

* ``--ocr``: the torch-free OCR reader (CRAFT and the recogniser's features on ONNX Runtime, its int8
  BiLSTMs in numpy) against easyocr's torch path on rendered images: the same boxes, texts and
  confidences? seconds per image (alternating, median), the load, and a warm image→tweet with each;
* ``--cold``: ``m2t predict`` as a new process (``--timings``: where its seconds go) against a warm
  prediction of the same input in this process;
* ``--serve``: ``m2t serve`` driven by headless Chromium as visitors do: the first visitor clicking
  as soon as the health check answers, later visitors, and N visitors at once; ``--serve --no-browser``:
  N visitors at once through Streamlit's websocket protocol (no browser, so 20 fit on the box), with
  tweets per minute, each visitor's wait and place in line, and the server's peak memory.

Ratios within one run are the numbers to compare; absolute seconds belong to the machine, which is
recorded with the load average before and after (other work on the machine slows both sides).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.eval.store import machine_description

POSTER_TEXT = "GRAND OPENING this Saturday 10am free coffee for everyone"
REQUEST = {"company": "Bean Town", "username": "beantown", "date": "2023-05-06 09:00", "likes": 250}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def poster(folder: Path) -> Path:
    """The benchmark poster (800×450), as ``m2t bench`` renders it."""
    from core.devtools.synthetic import render_text_image

    path = folder / "poster.png"
    if not path.exists():
        render_text_image(POSTER_TEXT, size=(800, 450)).save(path)
    return path


def ocr_images() -> dict[str, Any]:
    """Rendered images that take each detection path: one coarse pass, coarse then full, large, no text."""
    from PIL import Image, ImageDraw, ImageFont

    from core.devtools.synthetic import available_fonts, render_text_image

    def font(size: int) -> Any:
        return ImageFont.truetype(str(available_fonts()[0]), size=size)

    fine = Image.new("RGB", (1280, 720), (245, 240, 230))
    draw = ImageDraw.Draw(fine)
    draw.text((60, 80), "MEGA SALE", font=font(110), fill=(20, 20, 20))
    draw.text((60, 640), "Offer valid until June 30 in participating stores only", font=font(14), fill=(20, 20, 20))
    photo = Image.linear_gradient("L").resize((1280, 720)).convert("RGB")
    return {
        "poster 800x450": render_text_image(POSTER_TEXT, size=(800, 450)),
        "sale 1280x720": render_text_image("SUMMER SALE 50% OFF ALL RUNNING SHOES", size=(1280, 720), font_size=56),
        "headline + 14 px fine print 1280x720": fine,
        "banner 1920x1080": render_text_image("NEW Cold Brew Tonic bright and bubbly", size=(1920, 1080),
                                              font_size=72),
        "no text 1280x720": photo,
    }


def bench_ocr(repeats: int = 5) -> dict:
    """easyocr on torch against the torch-free reader on the same images: equal results, seconds
    (alternating, median), load (in this process: torch is already imported for the torch side)."""
    from dataclasses import replace

    from core.model_files import easyocr_dir
    from core.registry import resolve
    from core.stages.ocr import detector_onnx as ocr_onnx
    from core.stages.ocr import load_ocr, read_text
    from core.stages.ocr import recogniser_onnx as ocr_recogniser_onnx

    spec = resolve("ocr", device="cpu")
    ocr_onnx.export_detector(easyocr_dir(spec) / ocr_onnx.WEIGHTS)
    ocr_recogniser_onnx.export_recogniser(easyocr_dir(spec) / ocr_recogniser_onnx.WEIGHTS)
    out: dict = {"load_avg_before": _load(), "repeats": repeats, "images": {}}
    readers, loads = {}, {"torch": [], "onnx": []}
    for _ in range(2):  # the second round is the one a cached-file load pays
        for name, env in (("torch", "0"), ("onnx", "1")):
            os.environ[ocr_onnx.ONNX_ENV] = env
            start = time.perf_counter()
            readers[name] = load_ocr(replace(spec))
            loads[name].append(time.perf_counter() - start)
    os.environ.pop(ocr_onnx.ONNX_ENV, None)
    assert readers["onnx"].runtime == "onnx" and readers["torch"].detector == "torch"
    out["load_s"] = {name: seconds[-1] for name, seconds in loads.items()}
    for label, image in ocr_images().items():
        results = {name: read_text(reader, image) for name, reader in readers.items()}  # warm-up, and the check
        times: dict[str, list[float]] = {"torch": [], "onnx": []}
        cpu: dict[str, list[float]] = {"torch": [], "onnx": []}
        for _ in range(repeats):
            for name, reader in readers.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                read_text(reader, image)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        pairs = list(zip(results["torch"].boxes, results["onnx"].boxes, strict=False))
        same = len(results["torch"].boxes) == len(results["onnx"].boxes) and all(
            a.box == b.box and a.text == b.text for a, b in pairs)
        confidence_diff = max((abs(a.confidence - b.confidence) for a, b in pairs), default=0.0)
        out["images"][label] = {"torch_s": _median(times["torch"]), "onnx_s": _median(times["onnx"]),
                                "speedup": _median(times["torch"]) / _median(times["onnx"]),
                                "torch_cpu_s": _median(cpu["torch"]), "onnx_cpu_s": _median(cpu["onnx"]),
                                "cpu_ratio": _median(cpu["torch"]) / _median(cpu["onnx"]),
                                "same_boxes_and_text": same and results["torch"].text == results["onnx"].text,
                                "max_confidence_diff": confidence_diff,
                                "text": results["onnx"].text}
    out["all_equal"] = all(r["same_boxes_and_text"] for r in out["images"].values())
    out["detector_one_thread"] = detector_cpu(readers["onnx"].reader.detector.path, repeats)
    out["warm_tweet"] = bench_warm_tweet(readers, repeats)
    out["load_avg_after"] = _load()
    return out


DETECTOR_SHAPES = ((288, 512), (448, 800), (432, 768), (720, 1280))  # first passes and full passes seen above


def detector_cpu(onnx_file: Path, repeats: int) -> dict:
    """CPU seconds of one detector forward pass, torch against ONNX Runtime, both on one thread: the work each
    does, which other processes on a shared machine hardly change (wall-clock ratios with two threads do)."""
    import numpy as np
    import torch

    from core.model_files import easyocr_dir
    from core.registry import resolve
    from core.stages.ocr import detector_onnx as ocr_onnx

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        import onnxruntime as ort

        net = ocr_onnx._fresh_network(easyocr_dir(resolve("ocr")) / ocr_onnx.WEIGHTS)
        net = net.to(memory_format=torch.channels_last)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        out = {}
        for h, w in DETECTOR_SHAPES:
            x = torch.from_numpy(np.random.default_rng(0).uniform(-2, 2.5, (1, 3, h, w)).astype(np.float32))
            cpu: dict[str, list[float]] = {"torch": [], "onnx": []}
            for i in range(repeats + 1):  # the first round warms up
                start = time.process_time()
                with torch.no_grad():
                    net(x)
                torch_s = time.process_time() - start
                start = time.process_time()
                session.run(None, {"image": x.numpy()})
                if i:
                    cpu["torch"].append(torch_s)
                    cpu["onnx"].append(time.process_time() - start)
            out[f"{h}x{w}"] = {"torch_cpu_s": _median(cpu["torch"]), "onnx_cpu_s": _median(cpu["onnx"]),
                               "ratio": _median(cpu["torch"]) / _median(cpu["onnx"])}
        return out
    finally:
        torch.set_num_threads(threads)


def bench_warm_tweet(readers: dict[str, Any], repeats: int) -> dict:
    """Warm image→tweet (the poster, default settings) with each OCR detector, the other models shared."""
    from core.media.decode import load_media
    from core.pipeline import Pipeline, PredictRequest, load_model
    from core.registry import TASKS, resolve

    shared = {task: load_model(resolve(task, device="cpu")) for task in TASKS if task not in ("ocr", "asr")}
    with tempfile.TemporaryDirectory() as tmp:
        media = load_media(poster(Path(tmp)))
    out: dict = {}
    pipelines = {name: Pipeline(loader=lambda spec, r=reader: r if spec.task == "ocr" else shared[spec.task])
                 for name, reader in readers.items()}
    tweets: dict[str, set[str]] = {name: set() for name in pipelines}
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for pipeline in pipelines.values():
        pipeline.predict(PredictRequest(**REQUEST, media=media))  # warm-up
    for _ in range(repeats):
        for name, pipeline in pipelines.items():
            start = time.perf_counter()
            prediction = pipeline.predict(PredictRequest(**REQUEST, media=media))
            times[name].append(time.perf_counter() - start)
            tweets[name].add(prediction.tweet)
    for name in pipelines:
        out[f"{name}_s"] = _median(times[name])
    out["speedup"] = out["torch_s"] / out["onnx_s"]
    out["same_tweet"] = tweets["torch"] == tweets["onnx"] and len(tweets["onnx"]) == 1
    out["tweet"] = next(iter(tweets["onnx"]))
    return out


def ocr_table(r: dict) -> str:
    rows = [f"OCR: easyocr on torch vs the torch-free reader (ONNX Runtime, fp32 export), median of {r['repeats']} "
            "alternating runs",
            f"  {'image':<40}{'torch s':>9}{'onnx s':>9}{'speed-up':>10}{'CPU s torch/onnx':>20}  same boxes"]
    for label, i in r["images"].items():
        same = "yes" if i["same_boxes_and_text"] else "NO"
        conf = f" (confidence ±{i['max_confidence_diff']:.0e})" if "max_confidence_diff" in i else ""
        rows.append(f"  {label:<40}{i['torch_s']:>9.2f}{i['onnx_s']:>9.2f}{i['speedup']:>9.2f}x"
                    f"{i['torch_cpu_s']:>10.2f} / {i['onnx_cpu_s']:<7.2f}  {same}{conf}")
    rows.append("  one detector pass on one thread, CPU seconds (the work done, whatever else runs):")
    rows += [f"    {shape:<38}{d['torch_cpu_s']:>9.2f}{d['onnx_cpu_s']:>9.2f}{d['ratio']:>9.2f}x"
             for shape, d in r["detector_one_thread"].items()]
    w = r["warm_tweet"]
    rows.append(f"  {'warm image→tweet (poster)':<40}{w['torch_s']:>9.2f}{w['onnx_s']:>9.2f}{w['speedup']:>9.2f}x  "
                f"{'same tweet' if w['same_tweet'] else 'TWEET DIFFERS'}")
    rows.append(f"  {'OCR model load (files cached)':<40}{r['load_s']['torch']:>9.2f}{r['load_s']['onnx']:>9.2f}")
    rows.append(f"  load average before/after: {r['load_avg_before'][0]} / {r['load_avg_after'][0]}")
    return "\n".join(rows)


# --------------------------------------------------------------------------- m2t bench --cold


def app_request(today: dt.date | None = None) -> dict:
    """What a visitor of the app who types only the company and username sends: the form's defaults (today at
    12:00, no target likes). The cold/app comparison uses it on both sides, so both write the same tweet."""
    return {**REQUEST, "date": f"{(today or dt.date.today()).isoformat()} 12:00", "likes": None}


def bench_cold(runs: int = 3, repeats: int = 3, request: dict | None = None) -> dict:
    """``m2t predict --timings`` as new processes on the poster, against a warm prediction in this process."""
    from core.pipeline import Pipeline, PredictRequest

    request = request or REQUEST
    out: dict = {"load_avg_before": _load(), "runs": [], "request": request}
    with tempfile.TemporaryDirectory() as tmp:
        path = poster(Path(tmp))
        likes = ["--likes", str(request["likes"])] if request.get("likes") is not None else []
        args = [sys.executable, "-m", "core", "predict", "--company", request["company"], "--username",
                request["username"], "--date", request["date"], *likes, "--media", str(path), "--json", "--timings"]
        env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}
        root = Path(__file__).resolve().parents[2]
        cold_tweets = set()
        for _ in range(runs):
            start, children = time.perf_counter(), _children_cpu()
            proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, check=True)
            wall, cpu = time.perf_counter() - start, _children_cpu() - children
            data = json.loads(proc.stdout)
            cold_tweets.add(data["tweet"])
            out["runs"].append({"wall_s": wall, "cpu_s": cpu, **data["cold_timings"]})
        pipeline = Pipeline()
        warm_request = PredictRequest(**request, media=str(path))
        # Loads and first calls. The first prediction of a process is the one to compare with the new processes':
        # a sampled second look (taken when the greedy tweet fails a check) repeats across processes started
        # alike, not across calls in one process (core.stages.llm.ct2).
        first_tweet = pipeline.predict(warm_request).tweet
        warm, warm_cpu, warm_tweets = [], [], set()
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            warm_tweets.add(pipeline.predict(warm_request).tweet)
            warm.append(time.perf_counter() - start)
            warm_cpu.append(time.process_time() - start_cpu)
    out["cold_s"] = _median([r["wall_s"] for r in out["runs"]])
    out["warm_s"] = _median(warm)
    out["ratio"] = out["cold_s"] / out["warm_s"]
    out["cold_cpu_s"] = _median([r["cpu_s"] for r in out["runs"]])
    out["warm_cpu_s"] = _median(warm_cpu)
    out["cpu_ratio"] = out["cold_cpu_s"] / out["warm_cpu_s"]
    out["same_tweet"] = cold_tweets == {first_tweet}
    out["warm_tweets"] = len(warm_tweets)  # 1 unless a sampled second look was taken
    out["load_avg_after"] = _load()
    return out


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cold_table(r: dict) -> str:
    median_run = sorted(r["runs"], key=lambda x: x["wall_s"])[len(r["runs"]) // 2]
    rows = [f"m2t predict on the poster as a new process (median of {len(r['runs'])}) vs warm in one process",
            f"  new process, wall clock: {r['cold_s']:.2f} s   warm: {r['warm_s']:.2f} s   ratio {r['ratio']:.2f}x   "
            f"{'same tweet' if r['same_tweet'] else 'TWEETS DIFFER'}"
            f"{' (first call of each process)' if r.get('warm_tweets', 1) > 1 else ''}",
            f"  CPU seconds (all threads; less sensitive to other work on the machine): new process "
            f"{r['cold_cpu_s']:.2f}, warm {r['warm_cpu_s']:.2f}, ratio {r['cpu_ratio']:.2f}x",
            "  where the median run's seconds went:"]
    for kind, parts in median_run.items():
        if isinstance(parts, dict):
            rows += [f"    {kind:<20}{name:<36}{seconds:>7.2f} s" for name, seconds in parts.items()]
    rows.append(f"  load average before/after: {r['load_avg_before'][0]} / {r['load_avg_after'][0]}")
    return "\n".join(rows)


# --------------------------------------------------------------------------- the command


def configure(p: Any) -> None:
    """The flags of these parts on ``m2t bench`` (see :func:`core.devtools.bench.configure_bench`)."""
    from core.console import positive_int

    p.add_argument("--ocr", action="store_true",
                   help="only OCR detection: ONNX Runtime vs torch (same boxes? seconds) and the warm tweet with each")
    p.add_argument("--cold", action="store_true",
                   help="only m2t predict as a new process (--timings: where its seconds go) vs a warm prediction; "
                        "with --serve as well, also vs a warm visitor of the app")
    p.add_argument("--serve", action="store_true",
                   help="only m2t serve in headless Chromium: the first visitor at the health check, warm visitors, "
                        "N at once (--visitors)")
    p.add_argument("--visitors", default="1,2,4", help="--serve: concurrent visitor counts (default %(default)s)")
    p.add_argument("--no-browser", action="store_true",
                   help="--serve: visitors through Streamlit's websocket protocol (core.devtools.ws_visitors) "
                        "instead of headless Chromium; written under serve_visitors")
    p.add_argument("--browsers-share-cpu", action="store_true",
                   help="--serve: run the headless browsers at the server's CPU priority (by default they run in "
                        "Linux's idle class, drawing with the CPU the server leaves free, as remote visitors' "
                        "browsers take none of it)")
    p.add_argument("--repeats", type=positive_int, default=3, help="--ocr/--cold: runs per measurement")


def run(args: Any, merge_results: Any) -> int:
    """``m2t bench --ocr | --cold | --serve`` (or ``--cold --serve``): one part, merged into the results file under
    its name (``merge_results`` is ``core.devtools.bench.merge_results``, passed in: bench imports this module)."""
    from core.outputs import writable_file

    writable_file(args.out, "--out", make_parents=True)
    if args.cold and args.serve:  # the comparison, in one run: a new process against a warm app visitor
        return _run_cold_and_serve(args, merge_results)
    if args.ocr:
        name, result = "ocr_detector", bench_ocr(args.repeats)
        table = ocr_table(result)
    elif args.cold:
        name, result = "cold_predict", bench_cold(args.repeats, args.repeats)
        table = cold_table(result)
    else:
        name, result, table = _serve(args)
    result["machine"] = machine_description()
    print(json.dumps(result, indent=2) if args.json else table)
    print(f"wrote {merge_results(args.out, {name: result})}", file=sys.stderr)
    return 0


def _serve(args: Any) -> tuple[str, dict, str]:
    from core.devtools.serve_bench import bench_serve, bench_visitors, serve_table, visitors_table

    visitors = [int(v) for v in str(args.visitors).split(",") if v.strip()]
    if getattr(args, "no_browser", False):
        result = bench_visitors(visitors)
        return "serve_visitors", result, visitors_table(result)
    with tempfile.TemporaryDirectory() as tmp:
        result = bench_serve(poster(Path(tmp)), app_request(), visitors,
                             browsers_idle=not getattr(args, "browsers_share_cpu", False))
    return "serve", result, serve_table(result)


def _run_cold_and_serve(args: Any, merge_results: Any) -> int:
    """``--cold --serve``: both parts, then ``m2t predict`` as a new process against a warm visitor of the app."""
    name, served, serve_text = _serve(args)
    cold = bench_cold(args.repeats, args.repeats, app_request())
    app_warm = served["one_warm_tweet_s"] if name == "serve_visitors" else served["with_preload"]["warm_visitor_s"]
    cold["vs_app_warm"] = {"app_warm_visitor_s": app_warm, "ratio": cold["cold_s"] / app_warm}
    for part in (served, cold):
        part["machine"] = machine_description()
    summary = (f"m2t predict as a new process vs a warm visitor of m2t serve (click to 'Tweet ready'): "
               f"{cold['cold_s']:.2f} s / {app_warm:.2f} s = {cold['vs_app_warm']['ratio']:.2f}x")
    print(json.dumps({name: served, "cold_predict": cold}, indent=2) if args.json else
          "\n\n".join([serve_text, cold_table(cold), summary]))
    print(f"wrote {merge_results(args.out, {name: served, 'cold_predict': cold})}", file=sys.stderr)
    return 0
