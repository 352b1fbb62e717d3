"""Reading, planning and writing a batch: the rules both engines (local and Ray) share.

Results are written after every chunk by replacing the output file atomically, so an interrupted
run loses at most the chunk in flight and a rerun picks up where it stopped.

The CSV comes from anyone, so:

* local media paths are confined to the CSV's folder (or ``media_root``): absolute paths, ``~`` and
  ``..``/symlink escapes are refused for that row (noted in ``error``; the row still gets a tweet);
* rows are matched to finished output rows by ``id`` and occurrence (the 2nd row with id 7 is
  ``7#1``), so duplicate ids are all kept, each generated once, and a rerun adds nothing;
* the output is formula-safe (OWASP): cells starting with ``= + - @``, tab or CR get a leading ``'``,
  which is stripped again when a rerun reads the file back, so resuming sees the data as given.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

import pandas as pd

from core.errors import UserError
from core.media.dump_field import looks_like_dump, parse_media_field
from core.media.fetch import is_url
from core.outputs import writable_file
from core.pipeline import Prediction, PredictRequest
from core.tables import TWEET_REQUIRED, formula_safe, formula_unsafe, read_tweet_dump

REQUIRED_COLUMNS = TWEET_REQUIRED
OUTPUT_COLUMNS = ("generated", "caption", "ocr", "transcript", "error", "unsupported", "coverage", "thin")
# Only with --history: which earlier tweets each prompt showed, the closest earlier tweet when the generated one
# is a near copy of it, and the markers the brand kit added.
HISTORY_COLUMNS = ("examples", "history_note", "near_copy", "kit_added")


def read_tweet_csv(path: Path) -> pd.DataFrame:
    """A tweet dump as strings, with a clear message for what cannot be used."""
    return read_tweet_dump(path, REQUIRED_COLUMNS)


def parse_likes(value) -> int | None:
    try:
        number = float(str(value).replace(",", ""))
    except ValueError:
        return None
    return None if math.isnan(number) else int(number)


def row_request(row: pd.Series, base_dir: Path) -> PredictRequest:
    media = str(row.get("media", "") or "").strip()
    return PredictRequest(
        company=row["inferred company"],
        username=row["username"],
        date=row["date"],
        likes=parse_likes(row.get("likes", "")),
        media=media or None,
        base_dir=base_dir,
    )


def result_columns(prediction: Prediction) -> dict[str, str]:
    a = prediction.analysis
    grounding = prediction.grounding
    columns = {
        "generated": prediction.tweet,
        "caption": a.caption,
        "ocr": " ".join(a.ocr.split()),
        "transcript": a.transcript,
        "error": "; ".join(a.errors),
        # Details of the tweet found nowhere in its inputs, and the share of salient input words it uses.
        "unsupported": "; ".join(grounding.get("unsupported", [])),
        "coverage": f"{grounding['coverage']:.2f}" if "coverage" in grounding else "",
        # Fewer than 4 words of its own beyond the media's text (the poster's words, a bare hashtag).
        "thin": ("yes" if grounding["thin"] else "no") if "thin" in grounding else "",
    }
    if a.brand is not None:
        columns["examples"] = " | ".join(t.id for t in a.brand.tweets)
        columns["history_note"] = a.brand.note if a.brand.fallback or not a.brand.tweets else ""
        columns["near_copy"] = grounding.get("copy_of", "")
        columns["kit_added"] = " ".join(grounding.get("kit_added", []))
    return columns


def _local_locations(media: str) -> list[str]:
    """The file paths a row's media cell would read (URLs are the fetcher's business)."""
    media = media.strip()
    if not media:
        return []
    if looks_like_dump(media):
        # A malformed field reads nothing from disk; the loader reports it for the row.
        locations = [loc for item in parse_media_field(media) for loc in (item.url, *item.fallback_urls)]
    else:
        locations = [media]
    return [loc for loc in locations if not is_url(loc)]


def confinement_error(media: str, root: Path) -> str | None:
    """Why a row's media may not be read (a path outside ``root``), or None when every path stays inside.

    ``root`` must be resolved. Paths are resolved the way the loader reads them (relative to ``root``,
    following ``..`` and symlinks), so neither ``../`` nor a symlink inside the folder gets out.
    """
    for location in _local_locations(media):
        shown = location if len(location) <= 80 else location[:77] + "…"
        if location.startswith("~") or Path(location).is_absolute():
            return (f"media: {shown!r} is an absolute path; batch media paths must be relative to {root} "
                    "(or the folder given with --media-root)")
        try:
            inside = (root / location).resolve().is_relative_to(root)
        except (OSError, ValueError, RuntimeError):
            return f"media: {shown!r} is not a usable file path"
        if not inside:
            return f"media: {shown!r} leads outside {root}; batch media must stay in that folder (or --media-root)"
    return None


def row_keys(frame: pd.DataFrame) -> list[str]:
    """One key per row: ``id#occurrence`` (the k-th row carrying that id), or the position without ids.

    Duplicate ids are common in scraped dumps; keying by occurrence keeps every row (none is merged or
    dropped) and stays stable across reruns, because rows of one id are always written in input order.
    """
    if "id" not in frame.columns:
        return [str(i) for i in range(len(frame))]
    seen: Counter[str] = Counter()
    keys = []
    for value in frame["id"].astype(str):
        keys.append(f"{value}#{seen[value]}")
        seen[value] += 1
    return keys


def read_output(out_path: Path, marker: str = "generated", kind: str = "a Media2Tweet output") -> pd.DataFrame | None:
    """A previous run's output as it was generated (formula guards removed), or None if there is none yet.

    ``marker`` is the column that tells this command's output apart (``m2t likes`` passes ``predicted_likes``)."""
    if not out_path.exists():
        return None
    try:
        done = pd.read_csv(out_path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise UserError(f"{out_path} exists and is not a readable CSV ({str(exc).splitlines()[0]}); "
                        "choose another --out") from None
    done = formula_unsafe(done)
    if marker not in done.columns:
        raise UserError(f"{out_path} exists and is not {kind}; choose another --out")
    return done


def load_done(out_path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    done = read_output(out_path)
    return pd.DataFrame(columns=[*frame.columns, *OUTPUT_COLUMNS]) if done is None else done


def check_output(out_path: Path, in_path: Path) -> None:
    """Everything about ``--out`` that can fail, checked before any model loads (one line each)."""
    writable_file(out_path, "--out")
    try:
        same = out_path.exists() and out_path.resolve() == in_path.resolve()
    except OSError:
        same = False
    if same:
        raise UserError(f"--out {out_path} is the input file; results go to a new file so the input stays as it is")
    read_output(out_path)


def media_root_for(in_path: Path, media_root: Path | None) -> Path:
    """The folder batch media paths are confined to: ``--media-root`` or the CSV's folder, resolved."""
    root = (media_root if media_root is not None else in_path.parent).expanduser()
    if not root.is_dir():
        raise UserError(f"--media-root {root}: no such folder")
    return root.resolve()


def write_atomic(frame: pd.DataFrame, out_path: Path) -> None:
    """Replace ``out_path`` with the formula-safe ``frame`` in one rename (a crash leaves the old file)."""
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    formula_safe(frame).to_csv(tmp, index=False)
    tmp.replace(out_path)


def plan_rows(
    in_path: Path, out_path: Path, limit: int | None, media_root: str | Path | None
) -> tuple[pd.DataFrame, Path, pd.DataFrame, list[int]]:
    """What a (re)run must do: the input rows, where their media resolve, the finished output so far, and
    the positions of the rows still to generate (matched by id and occurrence, else by position).

    Both engines (``core.batch.local`` and ``core.batch.ray_engine``) plan with it, so they resume by the same rule.
    """
    frame = read_tweet_csv(in_path)
    if limit:
        frame = frame.head(limit)
    keys = row_keys(frame)
    base_dir = media_root_for(in_path, media_root)
    done = load_done(out_path, frame)
    done_keys = set(row_keys(done)) if "id" in frame.columns and "id" in done.columns else {
        str(i) for i in range(len(done))
    }
    return frame, base_dir, done, [i for i, key in enumerate(keys) if key not in done_keys]
