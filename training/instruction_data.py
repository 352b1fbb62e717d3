"""Tweet dump (CSV/xlsx) → instruction JSONL for LoRA: one {"prompt", "completion", …} per row.

Each row's media goes through the same core stages the app uses (captioning, OCR, ASR for
video via ``Pipeline.analyse``) and the prompt through ``core.stages.prompt.build_prompt(…,
"zero-shot")``, so a model tuned on this data sees at training time exactly what it will see
at prediction time. The target is the row's ``content`` with ``<hyperlink>``/``<mention>``
kept as literal tokens.

Real dumps are full of dead links: downloads are cached on disk, a dead link is remembered
(and not retried unless asked) and recorded in the row's ``media_errors``; the row still
becomes an example from its metadata. Every analysed row is appended to ``rows.jsonl`` at
once, so an interrupted run resumes where it stopped. The split (by row, by brand = held-out
companies, or by time = held-out latest dates) is made at the end, deterministically from the seed.

    python -m training.instruction_data --csv data/generated/tweets/train.csv --out-dir data/generated/instructions
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from core.batch import parse_likes, read_tweet_csv
from core.errors import MediaError, UserError
from core.media.decode import Media, load_media
from core.media.dump_field import MediaItem, looks_like_dump, parse_media_field
from core.media.fetch import fetch_bytes, is_url
from core.pipeline import Pipeline, format_date
from core.registry import ModelSpec, cache_dir, resolve
from core.stages.prompt import TweetContext, build_prompt
from training.config import field, parse_config, save_config

PROMPT_STYLE = "zero-shot"
SPLITS = ("train", "validation", "test")
ROWS_FILE = "rows.jsonl"


@dataclass
class InstructionDataConfig:
    csv: list[str] = field(help="tweet dump(s): CSV or xlsx with date, username, inferred company, content, media")
    test_csv: list[str] = field(help="dump(s) whose rows all form the test split (e.g. a dump's own test file)",
                                factory=list)
    out_dir: str = field("data/generated/instructions", help="where train/validation/test.jsonl are written")
    split: str = field("row", help="row: random rows; brand: held-out companies; time: held-out latest dates")
    validation_fraction: float = field(0.1, help="share of rows for validation")
    test_fraction: float = field(0.1, help="share of rows for test")
    test_companies: list[str] = field(help="brand split: these companies form the test split", factory=list)
    analyse_media: bool = field(True, help="caption/OCR/ASR each row's media (off: metadata-only prompts)")
    media_cache: str = field("", help="download + analysis cache (default: <model cache>/instruction_data)")
    retry_dead_links: bool = field(False, help="fetch links again that failed in an earlier run")
    profile: str = field("", help="model profile for the analysis stages (default: the registry's)")
    caption_model: str = field("", help="captioning model (registry alias, hub id or folder)")
    ocr_model: str = field("", help="OCR model")
    asr_model: str = field("", help="ASR model")
    device: str = field("auto", help="device for the analysis models")
    limit: int = field(0, help="use only the first N rows of each file (0: all)")
    seed: int = field(0, help="seed of the split")


# --------------------------------------------------------------------------- media with a disk cache


class MediaCache:
    """Downloads kept on disk by URL hash, and dead links remembered, so reruns neither refetch nor wait."""

    def __init__(self, folder: Path, retry_dead: bool = False) -> None:
        self.folder = folder
        (folder / "downloads").mkdir(parents=True, exist_ok=True)
        (folder / "analysis").mkdir(parents=True, exist_ok=True)
        self._dead_file = folder / "dead_links.json"
        self.dead: dict[str, str] = {} if retry_dead or not self._dead_file.exists() else json.loads(
            self._dead_file.read_text())

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def fetch(self, url: str) -> bytes:
        if url in self.dead:
            raise MediaError(self.dead[url])
        path = self.folder / "downloads" / self.key(url)
        if path.exists():
            return path.read_bytes()
        try:
            data = fetch_bytes(url)
        except MediaError as exc:
            self.dead[url] = str(exc)
            self._dead_file.write_text(json.dumps(self.dead, indent=1))
            raise
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return data

    def load(self, location: str, base_dir: Path) -> Media:
        """One media item: a URL through the download cache, a path relative to the dump's folder."""
        if is_url(location):
            return load_media(self.fetch(location), filename=location)
        return load_media(location, base_dir=base_dir)

    def analysis_path(self, field_text: str, base_dir: Path, specs: dict[str, ModelSpec]) -> Path:
        models = "|".join(f"{t}={specs[t].model}" for t in ("caption", "ocr", "asr"))
        return self.folder / "analysis" / f"{self.key(f'{base_dir}|{field_text}|{models}')}.json"


def _items(field_text: str) -> list[MediaItem]:
    if looks_like_dump(field_text):
        return parse_media_field(field_text)
    return [MediaItem(kind="file", url=field_text)]


def load_row_media(field_text: str, base_dir: Path, cache: MediaCache) -> tuple[Media | None, list[str]]:
    """Every item of a row's media (fallback URLs tried in order); failures become messages, not errors."""
    parts: list[Media] = []
    errors: list[str] = []
    for item in _items(field_text):
        for location in (item.url, *item.fallback_urls):
            try:
                parts.append(cache.load(location, base_dir))
                break
            except MediaError as exc:
                errors.append(str(exc))
    if not parts:
        return None, errors or ["the media field has no Photo, Video or Gif entry with a URL"]
    kinds = {p.kind for p in parts}
    media = Media(
        kind=kinds.pop() if len(kinds) == 1 else "mixed",
        source=field_text,
        images=[im for p in parts for im in p.images],
        audio=next((p.audio for p in parts if p.audio is not None), None),
        duration=next((p.duration for p in parts if p.duration), None),
        errors=errors,
    )
    return media, []


def analyse_row(field_text: str, base_dir: Path, pipeline: Pipeline, cache: MediaCache) -> dict:
    """Caption, OCR text, transcript and errors of a row's media; cached per (media, models)."""
    empty = {"caption": "", "ocr": "", "transcript": "", "media_errors": []}
    if not field_text.strip():
        return empty
    path = cache.analysis_path(field_text, base_dir, pipeline.specs)
    if path.exists():
        return json.loads(path.read_text())
    media, errors = load_row_media(field_text, base_dir, cache)
    analysis = pipeline.analyse(media)
    result = {
        "caption": analysis.caption,
        "ocr": " ".join(analysis.ocr.split()),
        "transcript": analysis.transcript,
        "media_errors": errors + analysis.errors,
    }
    path.write_text(json.dumps(result, ensure_ascii=False))
    return result


# --------------------------------------------------------------------------- rows → examples


def example(row: pd.Series, row_id: str, found: dict) -> dict:
    """One instruction example; the prompt is exactly what ``core`` builds for a zero-shot LLM."""
    likes = parse_likes(row.get("likes", ""))
    ctx = TweetContext(
        company=str(row["inferred company"]).strip(),
        username=str(row["username"]).strip(),
        date=format_date(row["date"]),
        likes=likes,
        caption=found["caption"],
        ocr_text=found["ocr"],
        transcript=found["transcript"],
    )
    return {
        "id": row_id,
        "prompt": build_prompt(ctx, PROMPT_STYLE),
        "completion": " ".join(str(row["content"]).split()),
        "company": ctx.company,
        "username": ctx.username,
        "date": str(row["date"]),
        "likes": likes,
        **found,
    }


def _read_rows(path: Path, limit: int) -> pd.DataFrame:
    frame = read_tweet_csv(path)
    if "content" not in frame.columns:
        raise UserError(f"{path}: no 'content' column; a training dump needs the tweets as targets")
    frame = frame[frame["content"].str.strip() != ""]
    return frame.head(limit) if limit else frame


def _row_ids(frame: pd.DataFrame, path: Path) -> list[str]:
    if "id" in frame.columns and frame["id"].astype(str).str.strip().ne("").all():
        return frame["id"].astype(str).tolist()
    return [f"{path.stem}-{i}" for i in frame.index]


def _load_done(rows_file: Path) -> dict[str, dict]:
    """Rows analysed by earlier runs; a line cut short by an interrupted run is dropped (and redone)."""
    done: dict[str, dict] = {}
    if not rows_file.exists():
        return done
    text = rows_file.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    good = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[record["id"]] = record
        good.append(line)
    if len(good) != len(lines) or (text and not text.endswith("\n")):
        rows_file.write_text("".join(line + "\n" for line in good))
    return done


def collect(cfg: InstructionDataConfig, out_dir: Path) -> list[dict]:
    """Analyse every row not yet in ``rows.jsonl`` (appending as it goes); returns all rows."""
    from tqdm import tqdm

    rows_file = out_dir / ROWS_FILE
    done = _load_done(rows_file)
    cache = MediaCache(Path(cfg.media_cache) if cfg.media_cache else cache_dir() / "instruction_data",
                       cfg.retry_dead_links)
    specs = {
        task: resolve(task, getattr(cfg, f"{task}_model") or None, profile=cfg.profile or None, device=cfg.device)
        for task in ("caption", "ocr", "asr")
    }
    pipeline = Pipeline(specs, profile=cfg.profile or None)
    ordered: list[dict] = []
    with rows_file.open("a") as out:
        for name, fixed_test in [*((n, False) for n in cfg.csv), *((n, True) for n in cfg.test_csv)]:
            path = Path(name)
            frame = _read_rows(path, cfg.limit)
            base_dir = path.resolve().parent
            ids = _row_ids(frame, path)
            for row_id, (_, row) in tqdm(zip(ids, frame.iterrows(), strict=True), total=len(frame),
                                         desc=f"rows of {path.name}", unit="row", file=sys.stderr, disable=None):
                if row_id not in done:
                    media = str(row.get("media", "") or "") if cfg.analyse_media else ""
                    done[row_id] = example(row, row_id, analyse_row(media, base_dir, pipeline, cache))
                    out.write(json.dumps(done[row_id], ensure_ascii=False) + "\n")
                    out.flush()
                ordered.append({**done[row_id], "fixed_test": fixed_test})
    return ordered


# --------------------------------------------------------------------------- splits


def _counts(n: int, validation_fraction: float, test_fraction: float) -> tuple[int, int]:
    n_test = round(n * test_fraction) if test_fraction else 0
    n_val = round(n * validation_fraction) if validation_fraction else 0
    if n >= 3:  # keep every asked-for split non-empty on small sets
        n_test = max(n_test, 1 if test_fraction else 0)
        n_val = max(n_val, 1 if validation_fraction else 0)
    return n_val, n_test


def split_by_row(rows: list[dict], cfg: InstructionDataConfig) -> tuple[dict[str, list[dict]], dict]:
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    n_val, n_test = _counts(len(rows), cfg.validation_fraction, cfg.test_fraction)
    test, val = set(order[:n_test]), set(order[n_test:n_test + n_val])
    names = ["test" if i in test else "validation" if i in val else "train" for i in range(len(rows))]
    return _assign(rows, names), {}


def split_by_brand(rows: list[dict], cfg: InstructionDataConfig) -> tuple[dict[str, list[dict]], dict]:
    """Whole companies held out, so the test measures writing for a brand never seen in training."""
    sizes: dict[str, int] = {}
    for r in rows:
        sizes[r["company"]] = sizes.get(r["company"], 0) + 1
    companies = sorted(sizes)
    random.Random(cfg.seed).shuffle(companies)
    unknown = [c for c in cfg.test_companies if c not in sizes]
    if unknown:
        raise UserError(
            f"--test-companies not in the data: {', '.join(unknown)}; companies: {', '.join(sorted(sizes))}"
        )

    def take(pool: list[str], fraction: float) -> list[str]:
        chosen: list[str] = []
        while pool and fraction and sum(sizes[c] for c in chosen) < fraction * len(rows) and len(pool) > 1:
            chosen.append(pool.pop(0))
        return chosen

    rest = [c for c in companies if c not in cfg.test_companies]
    test = list(cfg.test_companies) or take(rest, cfg.test_fraction)
    validation = take(rest, cfg.validation_fraction)
    names = ["test" if r["company"] in test else "validation" if r["company"] in validation else "train"
             for r in rows]
    return _assign(rows, names), {"test_companies": sorted(test), "validation_companies": sorted(validation)}


def split_by_time(rows: list[dict], cfg: InstructionDataConfig) -> tuple[dict[str, list[dict]], dict]:
    """The latest dates held out: tomorrow's tweets are written from yesterday's."""
    stamps = pd.to_datetime(pd.Series([r["date"] for r in rows]), errors="coerce", utc=True, format="mixed")
    dated = [i for i in stamps.sort_values(kind="stable").index if not pd.isna(stamps[i])]
    n_val, n_test = _counts(len(dated), cfg.validation_fraction, cfg.test_fraction)
    test = set(dated[len(dated) - n_test:]) if n_test else set()
    val = set(dated[len(dated) - n_test - n_val:len(dated) - n_test]) if n_val else set()
    names = ["test" if i in test else "validation" if i in val else "train" for i in range(len(rows))]
    info = {}
    if test:
        info["test_from"] = str(min(stamps[i] for i in test))
    if val:
        info["validation_from"] = str(min(stamps[i] for i in val))
    return _assign(rows, names), info


def _assign(rows: list[dict], names: list[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for row, name in zip(rows, names, strict=True):
        out[name].append({**row, "split": name})
    return out


def split_rows(rows: list[dict], cfg: InstructionDataConfig) -> tuple[dict[str, list[dict]], dict]:
    """Rows of ``--test-csv`` files go to test as they are; the others are split as ``--split`` says."""
    fixed = [{k: v for k, v in r.items() if k != "fixed_test"} for r in rows if r["fixed_test"]]
    free = [{k: v for k, v in r.items() if k != "fixed_test"} for r in rows if not r["fixed_test"]]
    splits, info = SPLITTERS[cfg.split](free, cfg) if free else ({s: [] for s in SPLITS}, {})
    splits["test"] += [{**r, "split": "test"} for r in fixed]
    return splits, info


SPLITTERS = {"row": split_by_row, "brand": split_by_brand, "time": split_by_time}


def write_jsonl(rows: list[dict], path: Path) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(path)
    return path


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise UserError(f"{path}: no such file; build it with `python -m training.instruction_data`")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build(cfg: InstructionDataConfig) -> dict[str, Path]:
    """Rows → analysed examples → split files; returns the path of each split."""
    if cfg.split not in SPLITTERS:
        raise UserError(f"--split must be one of {', '.join(SPLITTERS)}")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = collect(cfg, out_dir)
    if not rows:
        raise UserError("no rows with a non-empty 'content' to learn from")
    splits, info = split_rows(rows, cfg)
    paths = {name: write_jsonl(splits[name], out_dir / f"{name}.jsonl") for name in SPLITS}
    manifest = {
        "config": asdict(cfg),
        "prompt_style": PROMPT_STYLE,
        "counts": {name: len(splits[name]) for name in SPLITS},
        "rows_with_media_errors": sum(1 for r in rows if r["media_errors"]),
        **info,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    save_config(cfg, out_dir / "config.json")
    return paths


def main(argv: list[str] | None = None) -> int:
    cfg, _ = parse_config(InstructionDataConfig, argv, __doc__, prog="python -m training.instruction_data")
    try:
        paths = build(cfg)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = json.loads((Path(cfg.out_dir) / "manifest.json").read_text())["counts"]
    for name, path in paths.items():
        print(f"{path}\t{counts[name]} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
