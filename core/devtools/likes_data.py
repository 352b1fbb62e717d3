"""Generated multi-brand tweet dumps whose likes follow written-down rules: the test bed of the likes model.

No real engagement data can be fetched here, so the likes predictor (:mod:`core.brand.likes`) is measured on
dumps whose likes are made by known rules. Two kinds, with the same texts, media, dates and accounts:

**signal** (``signal=True``): with ``y = log(1 + likes)``,

``y = base_b + growth_b * years + hooks + product_b + media + hour + weekday + noise``

* ``base_b ~ Normal(log 70, 1.0)``: the account's level (a median of about 70 likes, as in real dumps);
* ``growth_b ~ Normal(0.3, 0.3)`` per year since the dump's first date: accounts grow (or shrink) over time, so
  a later period is not like the history;
* ``hooks``: each tweet carries 0-2 hook words, each adding its fixed effect (:data:`HOOKS`: ``giveaway`` +1.0,
  ``win`` +0.7, ``free`` +0.5, ``launch`` +0.4, ``exclusive`` +0.3, ``sale`` +0.2, ``survey`` -0.5,
  ``reminder`` -0.4, ``delay`` -0.6, ``sorry`` -0.8, ``outage`` -0.9, ``terms`` -0.3);
* ``product_b``: every tweet names one of its account's three products, and each product has its own effect
  ``~ Normal(0, 0.6)`` for that account only (a brand's own words lift or sink its posts);
* ``media``: none 0, photo +0.3, video +0.6, GIF +0.15 (:data:`MEDIA_EFFECT`); each account has its own mix;
* ``hour``: ``0.3 * cos(2 pi (hour - 18) / 24)`` (evening posts do best); ``weekday``: Saturday and Sunday
  +0.2, Monday -0.1;
* ``noise ~ Normal(0, 0.5)``.

**no signal** (``signal=False``): ``y = base_b + Normal(0, 0.9)``: the same rows, but nothing beyond the
account's median says anything about a tweet's likes (no growth either). A predictor must not find signal here.

Neutral filler words, ``<hyperlink>``/``<mention>`` placeholders and the account's hashtag appear at random in
both kinds and carry no effect. ``likes = round(exp(y) - 1)``, at least 0. Accounts' sizes are skewed (a few
big ones, a long tail of small ones), dates are uniform over ``start``..``end`` with posting hours weighted to
the day, and the ``media`` field is a snscrape repr (``[Photo(…)]``, ``[Video(…)]``, ``[Gif(…)]``) whose URLs
point nowhere: the predictor reads the media type and never downloads. The same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.errors import UserError
from core.tables import TWEET_COLUMNS

HOOKS: dict[str, float] = {
    "giveaway": 1.0, "win": 0.7, "free": 0.5, "launch": 0.4, "exclusive": 0.3, "sale": 0.2,
    "survey": -0.5, "reminder": -0.4, "delay": -0.6, "sorry": -0.8, "outage": -0.9, "terms": -0.3,
}
MEDIA_KINDS = ("none", "photo", "video", "gif")
MEDIA_EFFECT = {"none": 0.0, "photo": 0.3, "video": 0.6, "gif": 0.15}
WEEKDAY_EFFECT = (-0.1, 0.0, 0.0, 0.0, 0.0, 0.2, 0.2)  # Monday .. Sunday
HOUR_AMPLITUDE = 0.3
PEAK_HOUR = 18
NOISE_SD = 0.5
NO_SIGNAL_SD = 0.9
BASE_MEAN, BASE_SD = math.log(70), 1.0
GROWTH_MEAN, GROWTH_SD = 0.3, 0.3
PRODUCT_SD = 0.6
# Posting hours (UTC), weighted to the working day and evening, as brands post.
_HOUR_WEIGHTS = np.array([1, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 2, 4, 6, 7, 7, 7, 6, 6, 6, 6, 7, 8, 8, 6, 4, 3, 2], float)
_FILLER = tuple(
    "today our team new look check out this week the best you all for more see here just everyone love "
    "morning fresh together city store online season weekend style good more details favourite".split()
)
_NOUNS = tuple(
    "river coffee market garden ticket window silver forest planet rocket bridge castle island music bakery "
    "station travel coast lemon pepper candle paper studio camera puzzle garage jacket sunset harbor valley "
    "meadow lantern anchor comet falcon maple orchid pebble quartz".split()
)
_SUFFIXES = ("Co", "Labs", "Foods", "Studio", "Goods", "Works", "Air", "Books")
_SECONDS_PER_YEAR = 365.25 * 86400


def _brands(rng: np.random.Generator, n_brands: int) -> list[dict]:
    """Made-up accounts: a name, three products and the account's hidden parameters."""
    brands = []
    for i in range(n_brands):
        stem = "".join(str(w).title() for w in rng.choice(_NOUNS, 2, replace=False))
        name = f"{stem} {_SUFFIXES[i % len(_SUFFIXES)]}"
        products = tuple(f"{str(a).title()} {str(b).title()}" for a, b in rng.choice(_NOUNS, (3, 2)))
        mix = rng.dirichlet([3.0, 4.0, 1.5, 1.0])
        brands.append({
            "username": f"{stem}{i}", "company": name.lower(), "products": products,
            "base": rng.normal(BASE_MEAN, BASE_SD), "growth": rng.normal(GROWTH_MEAN, GROWTH_SD),
            "product_effect": rng.normal(0.0, PRODUCT_SD, 3), "media_mix": mix,
        })
    return brands


def _media_field(kind: str, tweet_id: int) -> str:
    """A snscrape-style ``media`` cell for ``kind`` (URLs under example.invalid: nothing to fetch)."""
    if kind == "photo":
        url = f"https://example.invalid/media/{tweet_id}"
        return f"[Photo(previewUrl='{url}?format=jpg&name=small', fullUrl='{url}?format=jpg&name=large')]"
    if kind in ("video", "gif"):
        name = "Video" if kind == "video" else "Gif"
        url = f"https://example.invalid/{kind}/{tweet_id}"
        tail = ", duration=12.5, views=1000)" if kind == "video" else ")"
        return (f"[{name}(thumbnailUrl='{url}.jpg', variants=[VideoVariant(contentType='video/mp4', "
                f"url='{url}.mp4', bitrate=832000)]{tail}]")
    return ""


def _text(rng: np.random.Generator, brand: dict, product: int, hooks: Sequence[str]) -> str:
    words = [str(w) for w in rng.choice(_FILLER, int(rng.integers(3, 9)))]
    for hook in hooks:
        words.insert(int(rng.integers(0, len(words) + 1)), hook)
    words.insert(int(rng.integers(0, len(words) + 1)), brand["products"][product])
    text = " ".join(words)
    text = text[0].upper() + text[1:] + rng.choice(("!", ".", "", " :)"))
    if rng.random() < 0.3:
        text = "<mention> " + text
    if rng.random() < 0.5:
        text += " <hyperlink>"
    if rng.random() < 0.4:
        text += f" #{brand['username']}"
    return text


def make_likes_dump(
    path: str | Path,
    n: int = 5_000,
    n_brands: int = 40,
    *,
    signal: bool = True,
    seed: int = 0,
    start: str = "2021-01-01",
    end: str = "2023-12-31",
) -> Path:
    """Write an ``id, date, likes, content, username, media, inferred company`` dump by the rules above."""
    if n < 1 or n_brands < 1:
        raise UserError("a likes dump needs at least 1 row and 1 brand")
    rng = np.random.default_rng(seed)
    brands = _brands(rng, n_brands)
    weights = 1.0 / np.arange(1, n_brands + 1) ** 0.8
    owner = rng.choice(n_brands, n, p=weights / weights.sum())
    t0 = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()
    t1 = datetime.fromisoformat(end).replace(tzinfo=UTC).timestamp()
    days = rng.uniform(t0, t1, n) // 86400 * 86400
    hours = rng.choice(24, n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    stamps = days + hours * 3600 + rng.integers(0, 3600, n)
    kinds = _pick_rows(rng, np.array([b["media_mix"] for b in brands])[owner])
    n_hooks = rng.choice(3, n, p=[0.45, 0.4, 0.15])
    products = rng.integers(0, 3, n)
    noise = rng.normal(0.0, NOISE_SD if signal else NO_SIGNAL_SD, n)
    hook_names = list(HOOKS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TWEET_COLUMNS)
    for i in range(n):
        brand = brands[int(owner[i])]
        moment = _utc(float(stamps[i]))
        kind = MEDIA_KINDS[int(kinds[i])]
        hooks = [hook_names[j] for j in rng.permutation(len(hook_names))[: int(n_hooks[i])]]
        product = int(products[i])
        content = _text(rng, brand, product, hooks)
        if signal:
            years = (stamps[i] - t0) / _SECONDS_PER_YEAR
            y = (brand["base"] + brand["growth"] * years + sum(HOOKS[h] for h in hooks)
                 + brand["product_effect"][product] + MEDIA_EFFECT[kind]
                 + HOUR_AMPLITUDE * math.cos(2 * math.pi * (moment.hour - PEAK_HOUR) / 24)
                 + WEEKDAY_EFFECT[moment.weekday()] + noise[i])
        else:
            y = brand["base"] + noise[i]
        likes = max(0, round(math.expm1(y)))
        tweet_id = 10**15 + seed * 10**7 + i
        writer.writerow((tweet_id, moment.strftime("%Y-%m-%d %H:%M:%S"), likes, content, brand["username"],
                         _media_field(kind, tweet_id), brand["company"]))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(out.getvalue().encode("utf-8"))
    return target


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def _pick_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row, row ``i`` drawn from ``probs[i]`` (vectorised ``rng.choice``)."""
    cumulative = probs.cumsum(axis=1)
    draws = rng.random(len(probs))[:, None] * cumulative[:, -1:]
    return (draws > cumulative).sum(axis=1)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.devtools.likes_data OUT.csv [--n N] [--brands B] [--no-signal] [--seed S]``."""
    parser = argparse.ArgumentParser(prog="python -m core.devtools.likes_data", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--brands", type=int, default=40)
    parser.add_argument("--no-signal", action="store_true", help="likes carry nothing beyond the account's median")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from core.console import run_guarded

    return run_guarded(lambda: print(make_likes_dump(args.out, args.n, args.brands, signal=not args.no_signal,
                                                     seed=args.seed)) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
