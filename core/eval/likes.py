"""``m2t evaluate --task likes``: how well predicted likes match real ones on held-out rows, beside two baselines.

The protocol (see ``docs/engagement.md``):

* **Rows**: ``--split time`` scores the latest 20 % of ``--data`` (or the rows from ``--cutoff`` on) with the
  earlier rows as the history; ``--split brand`` scores a seeded 20 % of the accounts with the other accounts
  as the history; ``--history H`` alone scores all of ``--data`` against the history ``H``; with both, ``H``
  joins the split's history side (only its rows before the cutoff, or of the accounts that are not held out,
  so nothing from the test side leaks in). Test rows without a usable number of likes are skipped and counted.
* **Metrics**, each with a 95 % percentile-bootstrap interval over the test rows (one set of resamples for all):
  RMSE and MAE of ``log(1 + likes)``; the high/low accuracy (a tweet is *high* when its likes are above its
  account's median in the history; for an account absent from the history, above the median of its own test
  rows, and the model's call is a ranking within the account: see :func:`references`); the share of real
  likes inside the ``likes_low``..``likes_high`` interval (it aims at :data:`core.brand.likes.COVERAGE`) and
  the interval's mean width in ``log(1 + likes)``.
* **Baselines on the same rows**: the account's history median as the prediction (RMSE, MAE, high/low accuracy:
  it calls every tweet *low*), and always *high*. ``rmse_gain`` is the baseline's RMSE minus the model's, with
  its own (paired) interval: above zero means the model is better.

The run is recorded in the results store as task ``likes`` (the Leaderboard's Likes tab), one sample per test
row (its prediction and interval, its real likes, its absolute error in ``log(1 + likes)``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.brand.history import dump_digest
from core.brand.likes import (
    COVERAGE,
    LikesHistory,
    LikesModel,
    LikesRows,
    history_from_frame,
    load_or_fit,
    media_type,
    rows_from_frame,
)
from core.brand.split import split_dump
from core.errors import UserError
from core.eval.store import ResultsStore, RunRecord, SampleRecord, check_store, file_hash

if TYPE_CHECKING:
    import pandas as pd

TASK = "likes"
SPLITS = ("time", "brand")
CI_MIN_ROWS = 10
INPUT_CHARS = 300
METRICS = ("rmse_log1p", "mae_log1p", "high_low_acc", "coverage", "interval_width", "median_rmse_log1p",
           "median_mae_log1p", "median_high_low_acc", "always_high_acc", "rmse_gain", "unseen_share")
LABELS = {
    "rmse_log1p": "RMSE log(1+likes)",
    "mae_log1p": "MAE log(1+likes)",
    "high_low_acc": "high/low accuracy",
    "coverage": f"interval coverage (aim {COVERAGE:.0%})",
    "interval_width": "interval width (log)",
    "median_rmse_log1p": "baseline median: RMSE",
    "median_mae_log1p": "baseline median: MAE",
    "median_high_low_acc": "baseline median: high/low acc.",
    "always_high_acc": "baseline always high: acc.",
    "rmse_gain": "RMSE gain over median",
    "unseen_share": "rows of unseen accounts",
    "history_rows": "history rows",
}
LOWER_IS_BETTER = ("rmse_log1p", "mae_log1p", "median_rmse_log1p", "median_mae_log1p", "interval_width")


@dataclass
class LikesTest:
    """What a run scores: the test rows, the history to learn from, and how they were made."""

    data: Path
    frame: pd.DataFrame  # test rows as read (strings), for the samples' inputs
    rows: LikesRows
    history: LikesHistory
    protocol: str
    skipped: int = 0  # test rows without a usable number of likes


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def prepare(data: str | Path, *, history: str | Path | None = None, split: str | None = None,
            cutoff: str | None = None, seed: int = 0) -> LikesTest:
    """The test rows and the history, checked before anything is fitted (one :class:`UserError` line each)."""
    import pandas as pd

    from core.tables import read_table, read_tweet_dump

    data = Path(data)
    if split is None and history is None:
        raise UserError("--task likes needs --history HISTORY (a dump with likes) or --split time|brand")
    if split is not None and split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if cutoff is not None and split != "time":
        raise UserError("--cutoff needs --split time")
    frame = read_tweet_dump(data)
    if "likes" not in frame.columns:
        raise UserError(f"{data}: no `likes` column; scoring predicted likes needs the real ones")
    extra = read_table(history, ("likes",), what="a likes history is a tweet dump with likes (id, date, likes, "
                       "content, username, media, inferred company)") if history is not None else None
    if split is None:
        test_frame = frame
        hist_frame = extra
        hist_path = Path(history)  # type: ignore[arg-type]
        digest = dump_digest(hist_path)
        protocol = f"history {hist_path}"
    else:
        chosen = split_dump(frame, split, cutoff=cutoff, seed=seed, where=str(data))
        test_frame = frame[chosen.test].reset_index(drop=True)
        hist_frame = frame[~chosen.test]
        protocol = f"split {split} ({chosen.info})"
        digest = chosen.key(dump_digest(data))
        if extra is not None:
            rows = rows_from_frame(extra)
            if split == "time":
                cut = float(np.nanmin(rows_from_frame(test_frame).years))
                keep = ~(rows.years >= cut)  # unreadable dates are kept here and skipped (counted) by the reader
            else:
                held = set(rows_from_frame(test_frame).accounts.tolist())
                keep = np.array([a not in held for a in rows.accounts], dtype=bool)
            hist_frame = pd.concat([hist_frame, extra[keep]], ignore_index=True)
            protocol += f" + history {history} ({int(keep.sum())} of {len(keep)} rows: before the test period)" \
                if split == "time" else f" + history {history} ({int(keep.sum())} of {len(keep)} rows: other accounts)"
            digest = _digest(digest, dump_digest(Path(history)), split)
        hist_path = data
    hist = history_from_frame(hist_frame.reset_index(drop=True), hist_path, digest)
    rows = rows_from_frame(test_frame)
    usable = np.isfinite(rows.likes)
    if not usable.any():
        raise UserError(f"{data}: no test row has a usable number of likes ({len(rows)} rows, "
                        f"{protocol}); nothing to score")
    return LikesTest(data, test_frame[usable].reset_index(drop=True), rows.take(usable), hist, protocol,
                     int((~usable).sum()))


# --------------------------------------------------------------------------- metrics


def _stats(y: np.ndarray, pred: np.ndarray, low: np.ndarray, high: np.ndarray, base: np.ndarray,
           ref_y: np.ndarray, ref_pred: np.ndarray) -> np.ndarray:
    """Per-row columns whose means give every metric (see :func:`_from_means`)."""
    model_err = y - pred
    median_err = y - base
    actual_high = y > ref_y
    return np.column_stack([
        model_err**2, np.abs(model_err), (pred > ref_pred) == actual_high, (y >= low) & (y <= high), high - low,
        median_err**2, np.abs(median_err), ~actual_high, actual_high,
    ]).astype(np.float64)


def _from_means(m: np.ndarray) -> dict[str, float]:
    rmse, median_rmse = float(np.sqrt(m[0])), float(np.sqrt(m[5]))
    return {"rmse_log1p": rmse, "mae_log1p": float(m[1]), "high_low_acc": float(m[2]), "coverage": float(m[3]),
            "interval_width": float(m[4]), "median_rmse_log1p": median_rmse, "median_mae_log1p": float(m[6]),
            "median_high_low_acc": float(m[7]), "always_high_acc": float(m[8]), "rmse_gain": median_rmse - rmse}


def scores(y: np.ndarray, pred: np.ndarray, low: np.ndarray, high: np.ndarray, base: np.ndarray,
           ref_y: np.ndarray | None = None, ref_pred: np.ndarray | None = None, bootstrap: int = 1000,
           seed: int = 0) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Every metric and its 95 % percentile-bootstrap interval (``bootstrap`` resamples of the rows, shared by
    all metrics). All arrays are ``log(1 + likes)``: ``base`` is the median baseline's prediction (the account's
    history median), ``ref_y``/``ref_pred`` what real and predicted likes are called high against (default
    ``base``; see :func:`references`)."""
    if bootstrap < 0:
        raise UserError(f"--bootstrap must be 0 or more, got {bootstrap}")
    stats = _stats(y, pred, low, high, base, base if ref_y is None else ref_y, base if ref_pred is None else ref_pred)
    metrics = _from_means(stats.mean(axis=0))
    if bootstrap == 0 or len(y) < 2:
        return metrics, {}
    rng = np.random.default_rng(seed)
    n = len(y)
    samples: list[dict[str, float]] = []
    chunk = max(1, 2_000_000 // n)
    for start in range(0, bootstrap, chunk):
        k = min(chunk, bootstrap - start)
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(k)]).astype(np.float64)
        for means in counts @ stats / n:
            samples.append(_from_means(means))
    ci = {key: [float(v) for v in np.percentile([s[key] for s in samples], [2.5, 97.5])] for key in metrics}
    return metrics, ci


# --------------------------------------------------------------------------- a run


@dataclass
class LikesEvaluation:
    """A recorded likes run: what was stored, where, and what the summary says beside the metrics."""

    run: RunRecord
    db: Path
    protocol: str
    model: str
    skipped: int = 0
    history_note: str = ""
    fallback_note: str = ""
    fit_s: float = 0.0
    cached: bool = False
    samples: list[SampleRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"run": asdict(self.run), "db": str(self.db), "protocol": self.protocol, "model": self.model,
                "skipped_without_likes": self.skipped, "history_note": self.history_note,
                "fallback_note": self.fallback_note, "fit_s": self.fit_s, "cached_model": self.cached}


def _sample_input(row: pd.Series, media: str) -> str:
    wanted = ("id", "date", "username", "inferred company", "content")
    data = {k: str(row.get(k, ""))[:INPUT_CHARS] for k in wanted if k in row.index}
    data["media_type"] = media
    return json.dumps(data, ensure_ascii=False)


def predict_test(model: LikesModel, rows: LikesRows) -> tuple[np.ndarray, ...]:
    """Predicted log likes, interval ends, the median baseline and each row's account index (-1: absent)."""
    brand, source = model.brand_index(rows)
    pred = model.predict_log(rows, brand)
    q = model.interval_log(brand, source)
    low, high = pred + np.minimum(q[:, 0], 0.0), pred + np.maximum(q[:, 1], 0.0)
    base = np.where(brand >= 0, model.medians[np.maximum(brand, 0)], model.global_median)
    return pred, low, high, base, brand


def references(rows: LikesRows, y: np.ndarray, pred: np.ndarray, base: np.ndarray,
               brand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What real and predicted likes are called *high* against.

    An account in the history: its history median, for both. An account absent from it has no history median,
    and the whole history's median would mostly measure whether the account is big; so its real likes are high
    when above the median of its own test rows, and a prediction is high when above the median of the model's
    predictions for that account (a ranking within the account; no real likes are used on the model's side).
    """
    ref_y, ref_pred = base.copy(), base.copy()
    absent = np.flatnonzero(brand < 0)
    if len(absent):
        import pandas as pd

        keys = pd.Series(rows.accounts[absent])
        ref_y[absent] = pd.Series(y[absent]).groupby(keys.values).transform("median").to_numpy()
        ref_pred[absent] = pd.Series(pred[absent]).groupby(keys.values).transform("median").to_numpy()
    return ref_y, ref_pred


def evaluate_likes(data: str | Path, *, history: str | Path | None = None, split: str | None = None,
                   cutoff: str | None = None, seed: int = 0, bootstrap: int = 1000, db: str | Path | None = None,
                   cache_root: Path | None = None, limit: int | None = None) -> LikesEvaluation:
    """Fit (or load) the model on the history side, score the test rows, record the run."""
    test = prepare(data, history=history, split=split, cutoff=cutoff, seed=seed)
    if limit is not None:
        keep = np.arange(min(limit, len(test.rows)))
        test = LikesTest(test.data, test.frame.iloc[keep].reset_index(drop=True), test.rows.take(keep), test.history,
                         test.protocol, test.skipped)
    db_path = check_store(db)
    start = time.perf_counter()
    model = load_or_fit(test.history, cache_root)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred, low, high, base, brand = predict_test(model, test.rows)
    predict_s = time.perf_counter() - start
    y = np.log1p(test.rows.likes)
    ref_y, ref_pred = references(test.rows, y, pred, base, brand)
    metrics, ci = scores(y, pred, low, high, base, ref_y, ref_pred, bootstrap, seed)
    metrics["unseen_share"] = float(np.mean(brand < 0))
    metrics["history_rows"] = float(len(test.history.rows))
    warnings = []
    if len(y) < CI_MIN_ROWS:
        warnings.append(f"only {len(y)} test rows: the 95 % bootstrap intervals are not reliable below {CI_MIN_ROWS}")
    if metrics["unseen_share"] > 0:
        warnings.append(f"{metrics['unseen_share']:.0%} of test rows are of accounts absent from the history: they "
                        "are predicted by the pooled model, and their high/low is judged within the account (above "
                        "its test rows' median), since there is no history median; the CIs resample rows, not "
                        "accounts, so with few accounts they are too narrow")
    label = f"m2t likes [{model.choice.base}{' + words, media, time' if model.choice.text else ''}]"
    run = RunRecord(task=TASK, model=label, n=len(y), metrics=metrics, ci=ci, dataset=str(test.data),
                    dataset_hash=file_hash(test.data) if test.data.is_file() else None,
                    signature=f"likes|{test.protocol}|coverage:{COVERAGE:g}|bootstrap:{bootstrap}|seed:{seed}",
                    warnings=warnings, wall_time_s=predict_s, throughput=len(y) / predict_s if predict_s else None)
    samples = [
        SampleRecord(idx=i, input=_sample_input(test.frame.iloc[i], media_type(test.frame.iloc[i].get("media", ""))),
                     prediction=f"{_count(pred[i])} [{_count(low[i])}, {_count(high[i])}]",
                     reference=str(int(test.rows.likes[i])), score=float(abs(y[i] - pred[i])))
        for i in range(len(y))
    ]
    ResultsStore(db_path).record_run(run, samples)
    return LikesEvaluation(run, db_path, test.protocol, model.describe(), test.skipped, test.history.note(),
                           model.fallback_note(test.rows), fit_s, model.cached, samples)


def _count(log_value: float) -> int:
    return max(0, int(round(float(np.expm1(log_value)))))


def summary_table(ev: LikesEvaluation) -> str:
    """Model beside both baselines, each number with its 95 % interval."""
    m, ci = ev.run.metrics, ev.run.ci

    def cell(key: str) -> str:
        if key not in m:
            return "-"
        lo_hi = ci.get(key)
        return f"{m[key]:.3f}" + (f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else "")

    skipped = f" ({ev.skipped} rows without usable likes skipped)" if ev.skipped else ""
    lines = [
        f"task       {TASK}",
        f"model      {ev.model}",
        f"data       {ev.run.dataset}" + (f" (sha256 {ev.run.dataset_hash[:12]}…)" if ev.run.dataset_hash else ""),
        f"protocol   {ev.protocol}",
        f"n          {ev.run.n} test rows{skipped}; {int(m.get('history_rows', 0))} history rows; "
        f"{m.get('unseen_share', 0):.0%} of test rows from accounts absent from the history",
        "",
        f"{'metric':<22}{'model':<26}{'baseline: brand median':<26}{'baseline: always high':<24}",
        f"{'RMSE log(1+likes)':<22}{cell('rmse_log1p'):<26}{cell('median_rmse_log1p'):<26}{'-':<24}",
        f"{'MAE log(1+likes)':<22}{cell('mae_log1p'):<26}{cell('median_mae_log1p'):<26}{'-':<24}",
        f"{'high/low accuracy':<22}{cell('high_low_acc'):<26}{cell('median_high_low_acc'):<26}"
        f"{cell('always_high_acc'):<24}",
        f"{'coverage (aim ' + format(COVERAGE, '.0%') + ')':<22}{cell('coverage'):<26}{'-':<26}{'-':<24}",
        f"{'interval width (log)':<22}{cell('interval_width'):<26}",
        f"{'RMSE gain over median':<22}{cell('rmse_gain'):<26}",
        "",
    ]
    for note in (ev.history_note, ev.fallback_note):
        if note:
            lines.append(f"note       {note}")
    lines.append(f"fit        {'loaded from the cache' if ev.cached else 'fitted'} in {ev.fit_s:.1f} s; "
                 f"predicted {ev.run.n} rows in {ev.run.wall_time_s or 0:.2f} s")
    lines.append(f"recorded   run {ev.run.id} in {ev.db}")
    return "\n".join(line.rstrip() for line in lines)


def run_likes_evaluation(args: Any) -> int:
    """``m2t evaluate --task likes``: the arguments of ``m2t evaluate`` that apply, checked, then one run."""
    from core.console import emit, say

    for flag, value in (("--model", args.model), ("--adapter", args.adapter), ("--predictions", args.predictions)):
        if value is not None:
            raise UserError(f"{flag} does not apply to --task likes (the likes model is learned from --history or "
                            "the --split's history side)")
    ev = evaluate_likes(args.data, history=args.history, split=args.split, cutoff=args.cutoff, seed=args.split_seed,
                        bootstrap=args.bootstrap, db=args.db, limit=args.limit)
    for note in (ev.history_note, ev.fallback_note, *ev.run.warnings):
        if note:
            say(f"note: {note}")
    emit(ev.to_dict(), args.json, summary_table(ev))
    return 0
