"""Predicted likes for a tweet, learned from a brand-history dump's tweets and likes (no LLM involved).

The target is ``y = log(1 + likes)`` (likes are log-normal-ish: a median near 70, a long tail). The model
has two parts, each small enough to explain and each shrunk hard where the history is thin:

1. **The account's line**: each account's robust (Huber, a few reweighting passes) level and linear trend of
   ``y`` against the date, shrunk towards the pooled line by empirical Bayes (weight = between-account
   variance / (between-account variance + the estimate's own variance)), so an account with five tweets gets
   nearly the pooled line and one with five thousand gets its own. Later dates extrapolate the trend (at most
   one history span ahead; flat after that), because the test of a likes model is a later period.
2. **The residual**: scikit-learn's ``Ridge`` on hashed features (``HashingVectorizer``, word 1-2-grams of the
   text), the media type read from the ``media`` field without downloading anything (none / photo / video /
   GIF), the hour and weekday, and the same words and media type crossed with the account (the hashed
   interaction block), so a brand's own words can lift or sink its posts where its history shows it and
   shrink to nothing where it does not. ``Ridge`` penalises every weight towards zero, i.e. every account
   towards its own line.

How much of that to use is chosen by a time-ordered check inside the history (fit on its earliest 80 %,
score its latest 20 %): the account line must beat the account's level, the residual model must beat the
line, each by more than twice the standard error of the paired difference, and the result must not be worse
than the plain account median. When nothing beats the median, the model *is* the median: it does not invent
signal from a few tweets per brand. The 80 % prediction interval comes from the same check's out-of-sample
residual quantiles (per account where it has at least :data:`MIN_BRAND_RESIDUALS` of them, blended with the
pooled ones; accounts absent from the history get the quantiles of the pooled line, which include the
spread between accounts).

Why scikit-learn: ``HashingVectorizer`` needs no vocabulary (a 300,000-row history fits in memory as a
sparse matrix, and the interaction block is an index shift of the same matrix), and ``Ridge`` solves that
sparse least-squares problem in seconds with a penalty that is the shrinkage the issue asks for. A tree model
(LightGBM, HistGradientBoosting) would add a dependency or a dense matrix for little gain on additive effects.

A fitted model is cached per history dump (SHA-256 of its bytes, like the retrieval index) under
``cache_dir()/likes`` as plain ``.npz`` arrays and JSON (no pickle), so a second run starts in a second.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.brand import cache
from core.brand.history import account_key, dump_digest
from core.errors import UserError
from core.media.dump_field import looks_like_dump, max_field_chars, parse_media_field
from core.tables import read_table

if TYPE_CHECKING:
    import pandas as pd
    from scipy.sparse import csr_matrix

MODEL_VERSION = "3"
MEDIA_TYPES = ("none", "photo", "video", "gif")
COVERAGE = 0.8  # the interval aims to hold 80 % of later tweets' likes
MIN_BRAND_RESIDUALS = 20  # fewer out-of-sample residuals than this: the account uses the pooled quantiles
QUANTILE_PRIOR = 40  # pseudo-count of pooled residuals blended into an account's own quantiles
MIN_BITS, MAX_BITS = 16, 20  # hashed feature space per block: 2^16 columns for small histories .. 2^20 for large
CV_FRACTION = 0.2  # the latest 20 % of the history checks every choice
CV_MAX_TRAIN = 60_000  # larger histories choose on an even subsample of this many earlier rows
CV_MAX_CHECK = 20_000  # … and of this many later ones
MIN_CV_ROWS = 30  # fewer rows than this in the check: no choice can be trusted, the model stays the median
ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
FIRST_ALPHA = 2  # the walk over ALPHAS starts at 10 and 30
CROSS_WEIGHTS = (0.0, 0.5, 1.0)  # the account x word block's scale (its penalty is alpha / weight^2)
Z_ACCEPT = 2.0  # a richer model must beat the simpler one by this many standard errors
HUBER_C = 1.345
SECONDS_PER_YEAR = 365.25 * 86400
_TOKEN_PATTERN = r"<\w+>|#?\w+|[^\w\s]"  # <hyperlink>/<mention> placeholders, hashtags, words, emoji
_VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".m4v", ".mkv", ".avi")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


# --------------------------------------------------------------------------- reading rows


# Python string literals (single or double quoted, with escapes) and number tokens: the parts of a media field
# that differ from row to row but never change which objects it holds.
_STRING_LITERAL = re.compile(r"'(?:[^'\\\n]|\\.)*'" + r'|"(?:[^"\\\n]|\\.)*"')
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")


def _placeholder(match: re.Match) -> str:
    body = match.group(0)[1:-1]
    if "\\" in body:
        return match.group(0)  # an escape may hide a quote or blank: keep the literal as it is
    return "''" if not body.strip() else "'x'"


@lru_cache(maxsize=4096)
def _kinds_of(skeleton: str) -> frozenset[str]:
    return frozenset(item.kind for item in parse_media_field(skeleton))


def _dump_kinds(text: str) -> frozenset[str]:
    """The item kinds of a dump field, by :func:`core.media.dump_field.parse_media_field`.

    The parser tokenises the whole field (150 us a cell; 45 s for a 300,000-row history), yet which objects a
    field holds does not depend on its URLs or numbers. So each string literal becomes ``'x'`` (``''`` when
    blank: a blank URL counts as none) and each number ``0``, and the parser runs once per distinct skeleton.
    The size cap applies to the field itself, as when the field is read for its media.
    """
    if len(text) > max_field_chars():
        return frozenset()
    skeleton = _NUMBER.sub("0", _STRING_LITERAL.sub(_placeholder, text))
    return _kinds_of(skeleton)


def media_type(field_text: str) -> str:
    """``none``, ``photo``, ``video`` or ``gif`` from a dump's ``media`` cell, read, never fetched.

    A cell with several items counts as its richest (video > GIF > photo); a plain path or URL is typed by its
    extension; a malformed cell is ``none`` (the row still gets a prediction).
    """
    text = str(field_text or "").strip()
    if not text:
        return "none"
    kinds: frozenset[str] | set[str] = _dump_kinds(text) if looks_like_dump(text) else frozenset()
    if not kinds and not text.startswith("["):
        name = text.lower().split("?")[0]
        kinds = {"gif"} if name.endswith(".gif") else {"video"} if name.endswith(_VIDEO_SUFFIXES) else \
            {"photo"} if name.endswith(_IMAGE_SUFFIXES) else set()
    for kind in ("video", "gif", "photo"):
        if kind in kinds:
            return kind
    return "none"


@dataclass
class LikesRows:
    """Rows as the model reads them: text, account keys, dates (NaN where unreadable), media type, likes."""

    content: list[str]
    accounts: np.ndarray  # username key, else company key (object array of str)
    companies: np.ndarray
    years: np.ndarray  # float64 years since 1970 (UTC); NaN where the date is blank or unreadable
    media: np.ndarray  # int8 index into MEDIA_TYPES
    likes: np.ndarray  # float64; NaN where unknown or unusable

    def __len__(self) -> int:
        return len(self.content)

    def take(self, mask: np.ndarray) -> LikesRows:
        idx = np.flatnonzero(mask) if mask.dtype == bool else mask
        return LikesRows([self.content[i] for i in idx.tolist()], self.accounts[idx], self.companies[idx],
                         self.years[idx], self.media[idx], self.likes[idx])


def _years(values: Sequence[str]) -> np.ndarray:
    """Dates as float years since 1970 UTC; NaN for blank or unreadable ones (counted by the caller)."""
    import pandas as pd

    series = pd.Series(list(values), dtype=str).str.strip()
    try:
        stamps = pd.to_datetime(series, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        stamps = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    ns = stamps.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    ns[stamps.isna().to_numpy()] = np.nan
    return ns / 1e9 / SECONDS_PER_YEAR


def parse_likes(values: Sequence[str]) -> np.ndarray:
    """Likes as floats: ``1,234`` reads as 1234; anything else that is not a number >= 0 is NaN."""
    import pandas as pd

    numbers = pd.to_numeric(pd.Series(list(values), dtype=str).str.replace(",", "").str.strip(),
                            errors="coerce").to_numpy(dtype=float, copy=True)  # pandas may hand out a read-only view
    numbers[~np.isfinite(numbers) | (numbers < 0)] = np.nan
    return numbers


def rows_from_frame(frame: pd.DataFrame) -> LikesRows:
    """The columns the model reads from a tweet dump read as strings (missing columns read as blank)."""
    n = len(frame)

    def column(name: str) -> list[str]:
        return frame[name].tolist() if name in frame.columns else [""] * n

    usernames = np.array([account_key(v) for v in column("username")], dtype=object)
    companies = np.array([account_key(v) for v in column("inferred company")], dtype=object)
    accounts = np.where(usernames != "", usernames, companies)
    return LikesRows(
        content=[" ".join(str(t).split()) for t in column("content")],
        accounts=accounts.astype(object),
        companies=companies,
        years=_years(column("date")),
        media=np.array([MEDIA_TYPES.index(media_type(v)) for v in column("media")], dtype=np.int8),
        likes=parse_likes(column("likes")) if "likes" in frame.columns else np.full(n, np.nan),
    )


@dataclass
class LikesHistory:
    """A checked history: the usable rows, and how many were skipped and why (said once to the person)."""

    path: Path
    digest: str
    rows: LikesRows
    total: int
    bad_likes: int = 0  # non-numeric, negative or blank likes
    bad_dates: int = 0  # blank or unreadable dates (among rows whose likes were fine)

    def note(self) -> str:
        """One line on what was skipped ("" when nothing was)."""
        parts = []
        if self.bad_likes:
            parts.append(f"{self.bad_likes} with likes that are not a number >= 0")
        if self.bad_dates:
            parts.append(f"{self.bad_dates} with a blank or unreadable date")
        if not parts:
            return ""
        return f"{self.path}: skipped {' and '.join(parts)}; learned from {len(self.rows)} of {self.total} rows"


def history_from_frame(frame: pd.DataFrame, path: Path, digest: str) -> LikesHistory:
    """Check a history frame: a ``likes`` column, a date, an account column, and at least one usable row."""
    where = str(path)
    if "likes" not in frame.columns:
        raise UserError(f"{where}: no `likes` column; a likes history is a tweet dump with likes (id, date, likes, "
                        "content, username, media, inferred company)")
    if "date" not in frame.columns:
        raise UserError(f"{where}: no `date` column; likes are learned against the date (trend, hour, weekday)")
    if not any(c in frame.columns for c in ("username", "inferred company")):
        raise UserError(f"{where}: no username or inferred company column; likes are learned per account")
    rows = rows_from_frame(frame)
    good_likes = np.isfinite(rows.likes)
    good_dates = np.isfinite(rows.years)
    usable = good_likes & good_dates & (rows.accounts != "")
    if not usable.any():
        raise UserError(f"{where}: no usable row: {int((~good_likes).sum())} of {len(rows)} rows have likes that "
                        f"are not a number >= 0, {int((good_likes & ~good_dates).sum())} more a blank or unreadable "
                        "date; a likes history needs rows with a number of likes, a date and an account")
    return LikesHistory(path, digest, rows.take(usable), len(rows), int((~good_likes).sum()),
                        int((good_likes & ~good_dates).sum()))


def read_likes_history(path: str | Path) -> LikesHistory:
    """The history dump at ``path``, checked (see :func:`history_from_frame`)."""
    path = Path(path)
    frame = read_table(path, ("likes",), what="a likes history is a tweet dump with likes (id, date, likes, "
                       "content, username, media, inferred company)")
    return history_from_frame(frame, path, dump_digest(path))


# --------------------------------------------------------------------------- the account lines


@dataclass
class Lines:
    """Each account's level at its own centre date and its yearly trend, both shrunk; plus the pooled line."""

    keys: list[str]
    level: np.ndarray
    slope: np.ndarray
    centre: np.ndarray
    count: np.ndarray
    pooled_level: float
    pooled_slope: float
    pooled_centre: float
    first: float  # history's first and last date (years): extrapolation stops one span after the last
    last: float
    trend: bool = True

    def clip(self, years: np.ndarray) -> np.ndarray:
        span = max(self.last - self.first, 0.25)
        filled = np.where(np.isfinite(years), years, self.last)
        return np.clip(filled, self.first, self.last + span)

    def predict(self, brand: np.ndarray, years: np.ndarray) -> np.ndarray:
        """The line of each row's account (``brand`` -1: the pooled line)."""
        t = self.clip(years)
        known = brand >= 0
        b = np.where(known, brand, 0)
        own = self.level[b] + (self.slope[b] * (t - self.centre[b]) if self.trend else 0.0)
        pooled = self.pooled_level + (self.pooled_slope * (t - self.pooled_centre) if self.trend else 0.0)
        return np.where(known, own, pooled)


def _weighted_moments(codes: np.ndarray, n: int, w: np.ndarray, t: np.ndarray, y: np.ndarray):
    sw = np.bincount(codes, w, n)
    safe = np.maximum(sw, 1e-12)
    mt = np.bincount(codes, w * t, n) / safe
    my = np.bincount(codes, w * y, n) / safe
    vt = np.maximum(np.bincount(codes, w * t * t, n) / safe - mt**2, 0.0)
    cty = np.bincount(codes, w * t * y, n) / safe - mt * my
    return sw, mt, my, vt, cty


def _between_variance(estimates: np.ndarray, variances: np.ndarray, ok: np.ndarray) -> float:
    """Empirical-Bayes variance of the true values across accounts: spread of the estimates minus their noise."""
    if ok.sum() < 3:
        return 0.0
    centre = np.average(estimates[ok], weights=1.0 / (variances[ok] + 1e-9))
    spread = np.mean((estimates[ok] - centre) ** 2) - np.mean(variances[ok])
    return float(max(spread, 0.0))


def fit_lines(codes: np.ndarray, n_brands: int, t: np.ndarray, y: np.ndarray, keys: list[str],
              trend: bool = True, passes: int = 3) -> Lines:
    """Robust per-account lines (Huber IRLS, vectorised with ``bincount``), shrunk by empirical Bayes."""
    w = np.ones_like(y)
    for _ in range(passes + 1):
        sw, mt, my, vt, cty = _weighted_moments(codes, n_brands, w, t, y)
        slope = np.where(vt > 1e-9, cty / np.maximum(vt, 1e-12), 0.0) if trend else np.zeros(n_brands)
        resid = y - (my[codes] + slope[codes] * (t - mt[codes]))
        scale = max(1.4826 * float(np.median(np.abs(resid))), 1e-6)
        w = np.minimum(1.0, HUBER_C * scale / np.maximum(np.abs(resid), 1e-12))
    count = np.bincount(codes, minlength=n_brands).astype(float)
    sigma2 = float(np.sum(w * resid**2) / max(np.sum(w) - (2 if trend else 1) * n_brands, 1.0))
    # Pooled line: the typical account's level and within-account trend.
    pooled_centre = float(np.average(mt, weights=count))
    level_var = sigma2 / np.maximum(sw, 1e-12)
    level_ok = count >= 2
    tau_level = _between_variance(my, level_var, level_ok)
    if trend:
        slope_var = np.where((vt > 1e-9) & (count >= 3), sigma2 / np.maximum(sw * vt, 1e-12), np.inf)
        slope_ok = np.isfinite(slope_var)
        pooled_slope = float(np.sum((sw * vt * slope)[slope_ok]) / max(np.sum((sw * vt)[slope_ok]), 1e-12))
        tau_slope = _between_variance(slope, np.where(slope_ok, slope_var, 0.0), slope_ok)
        keep = np.where(slope_ok, tau_slope / (tau_slope + np.where(slope_ok, slope_var, 1.0) + 1e-12), 0.0)
        slope = pooled_slope + keep * (slope - pooled_slope)
    else:
        pooled_slope = 0.0
    pooled_level = float(np.average(my + (pooled_slope * (pooled_centre - mt) if trend else 0.0), weights=count))
    prior = pooled_level + pooled_slope * (mt - pooled_centre)
    keep_level = tau_level / (tau_level + level_var + 1e-12)
    level = prior + keep_level * (my - prior)
    return Lines(keys, level, slope, mt, count, pooled_level, pooled_slope, pooled_centre,
                 float(t.min()), float(t.max()), trend)


# --------------------------------------------------------------------------- features


def feature_bits(n_rows: int) -> int:
    """Hash bits per block for a history of ``n_rows``: about 20 distinct n-grams per row need room without many
    collisions, and every unused column still costs the solver a vector entry per iteration (a 2,400-row history
    fits several times faster at 2^16 than at 2^20)."""
    return int(min(MAX_BITS, max(MIN_BITS, math.ceil(math.log2(max(n_rows, 1) * 20)))))


def _hasher(bits: int):
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=2**bits, ngram_range=(1, 2), token_pattern=_TOKEN_PATTERN,
                             alternate_sign=False, binary=True, norm=None, dtype=np.float32)


def account_offsets(keys: Sequence[str], bits: int) -> np.ndarray:
    """Where each account's crossed features start in the interaction block (a stable hash of its key)."""
    return np.array([zlib.crc32(k.encode("utf-8")) % 2**bits for k in keys], dtype=np.int64)


@dataclass
class Blocks:
    """A design matrix's parts: words + media, the same crossed with the account, hour and weekday."""

    base: csr_matrix
    cross: csr_matrix
    clock: csr_matrix

    def matrix(self, cross_weight: float) -> csr_matrix:
        """``[words + media | cross_weight * account x (words + media) | hour | weekday]``."""
        from scipy.sparse import hstack

        parts = [self.base, self.cross * np.float32(cross_weight), self.clock] if cross_weight > 0 else \
            [self.base, self.clock]
        return hstack(parts, format="csr", dtype=np.float32)


def blocks(rows: LikesRows, brand: np.ndarray, offsets: np.ndarray, bits: int) -> Blocks:
    """The features of ``rows`` (``brand``: each row's account index into ``offsets``, -1 when absent)."""
    from scipy.sparse import csr_matrix, hstack

    n = len(rows)
    words = _hasher(bits).transform(rows.content)
    media = csr_matrix((np.ones(n, np.float32), (np.arange(n), rows.media.astype(np.int64))),
                       shape=(n, len(MEDIA_TYPES)))
    base = hstack([words, media], format="csr", dtype=np.float32)
    per_row = np.where(brand >= 0, offsets[np.maximum(brand, 0)], -1) if len(offsets) else np.full(n, -1)
    shift = np.repeat(per_row, np.diff(base.indptr))
    # One index dtype for indices and indptr: scipy's kernels read both with the same width.
    indices = ((base.indices.astype(np.int64) + shift) % 2**bits).astype(base.indptr.dtype)
    cross = csr_matrix((base.data * (shift >= 0), indices, base.indptr.copy()), shape=(n, 2**bits))
    cross.sum_duplicates()
    cross.eliminate_zeros()
    known = np.isfinite(rows.years)
    seconds = np.where(known, rows.years, 0.0) * SECONDS_PER_YEAR
    hour = (seconds // 3600 % 24).astype(np.int64)
    weekday = ((seconds // 86400 + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday (3, Monday = 0)
    ones = known.astype(np.float32)
    clock = hstack([csr_matrix((ones, (np.arange(n), hour)), shape=(n, 24)),
                    csr_matrix((ones, (np.arange(n), weekday)), shape=(n, 7))], format="csr", dtype=np.float32)
    return Blocks(base, cross, clock)


def design(rows: LikesRows, brand: np.ndarray, offsets: np.ndarray, cross_weight: float, bits: int) -> csr_matrix:
    """The design matrix of ``rows`` at one cross weight (see :class:`Blocks`)."""
    return blocks(rows, brand, offsets, bits).matrix(cross_weight)


# --------------------------------------------------------------------------- the model


@dataclass
class LikesPrediction:
    """One row's predicted likes with its interval, and its account's history median for comparison."""

    likes: int
    low: int
    high: int
    brand_median: float | None  # the account's median likes in the history (None: absent from it)
    source: str  # "account", "company" (username unknown, company known) or "global" (neither in the history)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Choice:
    """What the time-ordered check inside the history chose, and the scores it chose by."""

    base: str = "median"  # median | level | line
    text: bool = False
    alpha: float = 0.0
    cross_weight: float = 0.0
    cv_rmse: dict[str, float] = field(default_factory=dict)
    cv_rows: int = 0
    bits: int = MIN_BITS  # hash bits per feature block (see feature_bits)

    def describe(self) -> str:
        what = {"median": "the account's median", "level": "the account's level",
                "line": "the account's level and trend"}[self.base]
        if self.text:
            what += f" + words, media, hour and weekday (Ridge alpha {self.alpha:g}"
            what += f", account x words weight {self.cross_weight:g})" if self.cross_weight else ")"
        scores = ", ".join(f"{k} {v:.3f}" for k, v in self.cv_rmse.items())
        return f"{what}; chosen on the history's latest {self.cv_rows} rows (RMSE of log1p: {scores})"


class LikesModel:
    """A fitted likes model: account lines, an optional sparse Ridge on the residual, interval quantiles."""

    def __init__(self, *, lines: Lines, medians: np.ndarray, choice: Choice, coef: np.ndarray | None,
                 intercept: float, companies: dict[str, int], quantiles: np.ndarray, brand_quantiles: np.ndarray,
                 unseen_quantiles: np.ndarray, global_median: float, digest: str = "", note: str = "",
                 rows: int = 0) -> None:
        self.lines = lines
        self.medians = medians  # per account: median of log1p(likes) in the history
        self.global_median = global_median  # of every history row: the reference for accounts absent from it
        self.choice = choice
        self.coef = coef
        self.intercept = intercept
        self.companies = companies
        self.quantiles = quantiles  # pooled (low, high) residual quantiles, log scale
        self.brand_quantiles = brand_quantiles  # (n_accounts, 2), NaN where the pooled ones apply
        self.unseen_quantiles = unseen_quantiles
        self.digest = digest
        self.note = note  # what the history's reading skipped ("" when nothing)
        self.rows = rows
        self.cached = False
        self._index = {k: i for i, k in enumerate(lines.keys)}
        self.offsets = account_offsets(lines.keys, choice.bits)

    # ------------------------------------------------------------------ predicting

    def brand_index(self, rows: LikesRows) -> tuple[np.ndarray, np.ndarray]:
        """Each row's account index (-1: absent) and where it came from (0 account, 1 company, 2 global)."""
        brand = np.array([self._index.get(k, -1) for k in rows.accounts], dtype=np.int64)
        source = np.where(brand >= 0, 0, 2)
        for i in np.flatnonzero(brand < 0):
            hit = self.companies.get(rows.companies[i], -1)
            if hit >= 0:
                brand[i], source[i] = hit, 1
        return brand, source

    def predict_log(self, rows: LikesRows, brand: np.ndarray | None = None) -> np.ndarray:
        """Predicted ``log1p(likes)`` of each row."""
        if brand is None:
            brand, _ = self.brand_index(rows)
        if self.choice.base == "median":
            pred = np.where(brand >= 0, self.medians[np.maximum(brand, 0)], self.global_median)
        else:
            pred = self.lines.predict(brand, rows.years)
        if self.coef is not None and len(rows):
            pred = pred + self._residual(rows, brand)
        return pred

    def _residual(self, rows: LikesRows, brand: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows))
        step = 50_000  # bounded memory for large dumps
        for start in range(0, len(rows), step):
            part = rows.take(np.arange(start, min(start + step, len(rows))))
            x = design(part, brand[start:start + step], self.offsets, self.choice.cross_weight, self.choice.bits)
            out[start:start + step] = x @ self.coef + self.intercept
        return out

    def interval_log(self, brand: np.ndarray, source: np.ndarray) -> np.ndarray:
        """(n, 2) residual quantiles each row's interval adds to its prediction."""
        q = np.tile(self.quantiles, (len(brand), 1))
        own = (brand >= 0) & (source == 0)
        if own.any():
            bq = self.brand_quantiles[brand[own]]
            q[own] = np.where(np.isfinite(bq), bq, q[own])
        q[brand < 0] = self.unseen_quantiles
        return q

    def predict_rows(self, rows: LikesRows | pd.DataFrame) -> list[LikesPrediction]:
        """Predicted likes, interval and account median for every row (a DataFrame is read as a tweet dump)."""
        if not isinstance(rows, LikesRows):
            rows = rows_from_frame(rows)
        brand, source = self.brand_index(rows)
        pred = self.predict_log(rows, brand)
        q = self.interval_log(brand, source)
        names = ("account", "company", "global")
        out = []
        for i in range(len(rows)):
            median = float(np.expm1(self.medians[brand[i]])) if brand[i] >= 0 else None
            out.append(LikesPrediction(
                likes=_count(pred[i]), low=_count(pred[i] + min(q[i, 0], 0.0)),
                high=_count(pred[i] + max(q[i, 1], 0.0)), brand_median=median, source=names[source[i]]))
        return out

    def fallback_note(self, rows: LikesRows) -> str:
        """One line on rows whose account is not in the history ("" when every account is)."""
        brand, source = self.brand_index(rows)
        lines = []
        for kind, how in ((1, "their company's account"), (2, "the pooled model of all accounts")):
            hit = source == kind
            if hit.any():
                names = sorted({str(a) or "(blank)" for a in rows.accounts[hit]})
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                lines.append(f"{int(hit.sum())} row(s) of {len(names)} account(s) absent from the history "
                             f"({shown}): predicted from {how}")
        return "; ".join(lines)

    def describe(self) -> str:
        return (f"likes model from {self.rows} history rows of {len(self.lines.keys)} accounts: "
                f"{self.choice.describe()}; interval aims at {COVERAGE:.0%}")

    # ------------------------------------------------------------------ saving

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {
            "level": self.lines.level, "slope": self.lines.slope, "centre": self.lines.centre,
            "count": self.lines.count, "medians": self.medians, "quantiles": self.quantiles,
            "brand_quantiles": self.brand_quantiles, "unseen_quantiles": self.unseen_quantiles,
        }
        if self.coef is not None:
            nz = np.flatnonzero(self.coef)
            arrays["coef_index"], arrays["coef_value"] = nz.astype(np.int64), self.coef[nz]
            arrays["coef_size"] = np.array([len(self.coef)], dtype=np.int64)
        np.savez_compressed(folder / "arrays.npz", **arrays)
        meta = {
            "version": MODEL_VERSION, "keys": self.lines.keys, "companies": self.companies,
            "pooled": [self.lines.pooled_level, self.lines.pooled_slope, self.lines.pooled_centre],
            "span": [self.lines.first, self.lines.last], "trend": self.lines.trend,
            "choice": asdict(self.choice), "intercept": self.intercept, "digest": self.digest, "note": self.note,
            "rows": self.rows, "global_median": self.global_median,
        }
        (folder / "meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> LikesModel:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("version") != MODEL_VERSION:
            raise ValueError("another model version")
        with np.load(folder / "arrays.npz", allow_pickle=False) as data:
            a = {k: data[k] for k in data.files}
        coef = None
        if "coef_index" in a:
            coef = np.zeros(int(a["coef_size"][0]))
            coef[a["coef_index"]] = a["coef_value"]
        lines = Lines(meta["keys"], a["level"], a["slope"], a["centre"], a["count"], *meta["pooled"],
                      *meta["span"], meta["trend"])
        model = cls(lines=lines, medians=a["medians"], choice=Choice(**meta["choice"]), coef=coef,
                    intercept=meta["intercept"], companies=meta["companies"], quantiles=a["quantiles"],
                    brand_quantiles=a["brand_quantiles"], unseen_quantiles=a["unseen_quantiles"],
                    global_median=meta["global_median"], digest=meta["digest"], note=meta["note"], rows=meta["rows"])
        model.cached = True
        return model


def _count(log_value: float) -> int:
    return max(0, int(round(math.expm1(float(log_value)))))


# --------------------------------------------------------------------------- fitting


@dataclass
class _Parts:
    """What one fit on some rows gives: lines with and without trend, medians, the residual model."""

    keys: list[str]
    index: dict[str, int]
    medians: np.ndarray
    global_median: float
    level: Lines
    line: Lines


def _codes(rows: LikesRows, keys: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    if keys is None:
        keys = sorted(set(rows.accounts.tolist()))
    index = {k: i for i, k in enumerate(keys)}
    return keys, np.array([index.get(k, -1) for k in rows.accounts], dtype=np.int64)


def _base_parts(rows: LikesRows) -> tuple[_Parts, np.ndarray]:
    import pandas as pd

    keys, codes = _codes(rows)
    y = np.log1p(rows.likes)
    medians = pd.Series(y).groupby(codes).median().reindex(range(len(keys))).to_numpy()
    level = fit_lines(codes, len(keys), rows.years, y, keys, trend=False)
    line = fit_lines(codes, len(keys), rows.years, y, keys, trend=True)
    return _Parts(keys, {k: i for i, k in enumerate(keys)}, medians, float(np.median(y)), level, line), codes


def _base_predict(parts: _Parts, which: str, rows: LikesRows) -> np.ndarray:
    _, brand = _codes(rows, parts.keys)
    if which == "median":
        return np.where(brand >= 0, parts.medians[np.maximum(brand, 0)], parts.global_median)
    return (parts.level if which == "level" else parts.line).predict(brand, rows.years)


def _ridge(x: csr_matrix, target: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-4, max_iter=200, fit_intercept=True)
    model.fit(x, target.astype(np.float32))
    return model.coef_.astype(np.float64), float(model.intercept_)


def _better(errors_simple: np.ndarray, errors_rich: np.ndarray) -> bool:
    """True when the rich model's squared errors are lower by more than ``Z_ACCEPT`` standard errors."""
    d = errors_simple**2 - errors_rich**2
    if len(d) < 2:
        return False
    return float(d.mean()) > Z_ACCEPT * float(d.std(ddof=1)) / math.sqrt(len(d))


def _rmse(e: np.ndarray) -> float:
    return float(np.sqrt(np.mean(e**2))) if len(e) else float("nan")


def _quantiles(residuals: np.ndarray) -> np.ndarray:
    tail = (1 - COVERAGE) / 2
    return np.quantile(residuals, [tail, 1 - tail]) if len(residuals) else np.array([-1.0, 1.0])


def choose(rows: LikesRows) -> tuple[Choice, dict[str, np.ndarray]]:
    """Pick the model's parts on the history's latest :data:`CV_FRACTION` (fit on the rest, in date order).

    Returns the choice and the check's out-of-sample residuals (``residuals``, ``brand``: the accounts'
    keys' codes, ``unseen``: residuals as if every check row's account were absent) for the interval.
    """
    order = np.argsort(rows.years, kind="stable")
    cut = int(len(rows) * (1 - CV_FRACTION))
    # Large histories choose on an even subsample of each side (the same span, accounts and horizon): the best
    # penalty is a ratio of noise to effect sizes, which does not depend on the number of rows.
    early, late = order[:cut], order[cut:]
    train = rows.take(early[:: max(1, math.ceil(len(early) / CV_MAX_TRAIN))])
    check = rows.take(late[:: max(1, math.ceil(len(late) / CV_MAX_CHECK))])
    choice = Choice(cv_rows=len(check), bits=feature_bits(len(rows)))
    y = np.log1p(check.likes)
    if len(check) < MIN_CV_ROWS or len(train) < MIN_CV_ROWS:
        return choice, {}
    parts, codes = _base_parts(train)
    _, brand = _codes(check, parts.keys)
    errors = {name: y - _base_predict(parts, name, check) for name in ("median", "level", "line")}
    choice.cv_rmse = {name: _rmse(e) for name, e in errors.items()}
    best = "level" if _rmse(errors["level"]) <= _rmse(errors["median"]) else "median"
    if _better(errors[best], errors["line"]):
        best = "line"
    lines = parts.line if best == "line" else parts.level
    base_train = _base_predict(parts, best, train)
    target = np.log1p(train.likes) - base_train
    offsets = account_offsets(parts.keys, choice.bits)
    best_text: tuple[float, float, np.ndarray, np.ndarray, float] | None = None

    train_blocks, check_blocks = blocks(train, codes, offsets, choice.bits), blocks(check, brand, offsets, choice.bits)

    def try_ridge(alpha: float, weight: float) -> None:
        nonlocal best_text
        coef, b0 = _ridge(train_blocks.matrix(weight), target, alpha)
        e = errors[best] - (check_blocks.matrix(weight) @ coef + b0)
        choice.cv_rmse[f"ridge a{alpha:g} w{weight:g}"] = _rmse(e)
        if best_text is None or _rmse(e) < _rmse(best_text[2]):
            best_text = (alpha, weight, e, coef, b0)

    # The penalty first, at the middle cross weight (a walk along ALPHAS from 10 and 30, stopped when it stops
    # improving), then the cross weight at that penalty: five or six fits instead of twenty-one.
    middle = CROSS_WEIGHTS[1]
    try_ridge(ALPHAS[FIRST_ALPHA], middle)
    try_ridge(ALPHAS[FIRST_ALPHA + 1], middle)
    assert best_text is not None
    step = 1 if best_text[0] == ALPHAS[FIRST_ALPHA + 1] else -1
    position = ALPHAS.index(best_text[0]) + step
    while 0 <= position < len(ALPHAS):
        before = best_text[0]
        try_ridge(ALPHAS[position], middle)
        if best_text[0] == before:
            break
        position += step
    for weight in CROSS_WEIGHTS:
        if weight != middle:
            try_ridge(best_text[0], weight)
    final_errors = errors[best]
    if _better(errors[best], best_text[2]):
        choice.text, choice.alpha, choice.cross_weight = True, best_text[0], best_text[1]
        final_errors = best_text[2]
    if _rmse(final_errors) > _rmse(errors["median"]):  # the guard: never worse than the median on the check
        choice.base, choice.text, final_errors = "median", False, errors["median"]
    else:
        choice.base = best
    # Residuals as if the check rows' accounts were absent: the pooled line (+ the residual model's global part).
    absent = np.full(len(check), -1)
    unseen = y - lines.predict(absent, check.years)
    if choice.text:
        unseen = unseen - (design(check, absent, offsets, choice.cross_weight, choice.bits) @ best_text[3]
                           + best_text[4])
    return choice, {"residuals": final_errors, "brand": brand, "unseen": unseen,
                    "keys": np.array(parts.keys, dtype=object)}


def fit(history: LikesHistory) -> LikesModel:
    """Choose on the history's latest rows, then refit the chosen parts on all of it."""
    rows = history.rows
    choice, check = choose(rows)
    parts, codes = _base_parts(rows)
    lines = parts.line if choice.base == "line" else parts.level
    coef, intercept = None, 0.0
    if choice.text:
        offsets = account_offsets(parts.keys, choice.bits)
        target = np.log1p(rows.likes) - _base_predict(parts, choice.base, rows)
        coef, intercept = _ridge(design(rows, codes, offsets, choice.cross_weight, choice.bits), target,
                                 choice.alpha)
    residuals = check.get("residuals", np.array([]))
    pooled = _quantiles(residuals) if len(residuals) else _quantiles(np.log1p(rows.likes) - parts.medians[codes])
    brand_q = np.full((len(parts.keys), 2), np.nan)
    if len(residuals):
        check_keys = check["keys"]
        codes_check = check["brand"]
        for code in np.unique(codes_check[codes_check >= 0]):
            own = residuals[codes_check == code]
            if len(own) >= MIN_BRAND_RESIDUALS:
                blend = (len(own) * _quantiles(own) + QUANTILE_PRIOR * pooled) / (len(own) + QUANTILE_PRIOR)
                brand_q[parts.index[check_keys[code]]] = blend
    unseen = check.get("unseen")
    unseen_q = _quantiles(unseen) if unseen is not None and len(unseen) else \
        _quantiles(np.log1p(rows.likes) - lines.predict(np.full(len(rows), -1), rows.years))
    companies = _company_map(rows, parts.index)
    return LikesModel(lines=lines, medians=parts.medians, choice=choice, coef=coef, intercept=intercept,
                      companies=companies, quantiles=pooled, brand_quantiles=brand_q, unseen_quantiles=unseen_q,
                      global_median=parts.global_median, digest=history.digest, note=history.note(), rows=len(rows))


def _company_map(rows: LikesRows, index: dict[str, int]) -> dict[str, int]:
    """Company key → its account with the most history rows (for rows whose username is not in the history)."""
    counts: dict[str, dict[int, int]] = {}
    for company, account in zip(rows.companies.tolist(), rows.accounts.tolist(), strict=True):
        if company:
            per = counts.setdefault(company, {})
            per[index[account]] = per.get(index[account], 0) + 1
    return {company: max(per, key=per.__getitem__) for company, per in counts.items()}


# --------------------------------------------------------------------------- caching


def load_or_fit(history: str | Path | LikesHistory, cache_root: Path | None = None) -> LikesModel:
    """The model for a history dump: from the cache when this dump's bytes were fitted before, else fitted and
    cached (atomically, by rename; a damaged cache entry is refitted, never trusted)."""
    from core.registry import cache_dir

    if not isinstance(history, LikesHistory):
        history = read_likes_history(history)
    root = (cache_root or cache_dir() / "likes") / f"{history.digest}-v{MODEL_VERSION}"
    if cache.is_complete(root):
        try:
            return LikesModel.load(root)
        except (OSError, ValueError, KeyError, TypeError):
            cache.discard(root)
    model = fit(history)
    cache.publish(root, model.save, history.path)  # no writable cache: the model still works, refitted next time
    return model


def tweet_rows(texts: Sequence[str], *, username: str, company: str, date: str, media_kind: str = "none") -> LikesRows:
    """Rows for tweets not yet posted (a prediction's candidates): one account, date and media type for all."""
    n = len(texts)
    kind = MEDIA_TYPES.index(media_kind) if media_kind in MEDIA_TYPES else 0
    account = account_key(username) or account_key(company)
    return LikesRows(content=[" ".join(str(t).split()) for t in texts],
                     accounts=np.array([account] * n, dtype=object),
                     companies=np.array([account_key(company)] * n, dtype=object),
                     years=_years([str(date or "")] * n) if n else np.zeros(0),
                     media=np.full(n, kind, dtype=np.int8), likes=np.full(n, np.nan))
