"""Write every generated evaluation set into ``data/generated/`` (gitignored), deterministically.

One command instead of four ``python -m core.devtools.synthetic`` calls, with fixed sizes and seed, so
two machines that run it score their models on byte-identical data (the run records the
CSV's SHA-256, printed here too, and the leaderboard compares only runs on the same hash).

    python scripts/make_eval_sets.py                 # all sets, default sizes, seed 0
    python scripts/make_eval_sets.py --only ocr asr  # some of them
    python scripts/make_eval_sets.py --out /tmp/sets --ocr 3 --asr 2 --caption 3 --tweets-test 2

Layout (paths inside each CSV are relative to its folder):

    data/generated/ocr/ocr.csv            path,text      (+ images/)
    data/generated/asr/asr.csv            audio,text     (+ audio/, espeak-ng speech)
    data/generated/caption/captions.csv   path,caption   (+ images/)
    data/generated/tweets/train.csv       tweet dump     (+ images/ posters)
    data/generated/tweets/test.csv        tweet dump, ``content`` kept as the reference
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from core.devtools.synthetic import make_asr_set, make_caption_set, make_ocr_set, make_tweet_set
from core.eval.store import file_hash

ROOT = Path(__file__).resolve().parents[1]

KINDS = ("ocr", "asr", "caption", "tweets")
DEFAULT_OUT = ROOT / "data" / "generated"


def make_sets(
    out: Path,
    *,
    only: Sequence[str] = KINDS,
    ocr: int = 50,
    asr: int = 20,
    caption: int = 50,
    tweets_train: int = 300,
    tweets_test: int = 60,
    seed: int = 0,
) -> list[Path]:
    """Generate the chosen sets under ``out/<kind>/``; return the CSVs written."""
    written: list[Path] = []
    if "ocr" in only:
        written.append(make_ocr_set(out / "ocr", n=ocr, seed=seed))
    if "asr" in only:
        written.append(make_asr_set(out / "asr", n=asr, seed=seed))
    if "caption" in only:
        written.append(make_caption_set(out / "caption", n=caption, seed=seed))
    if "tweets" in only:
        written.extend(make_tweet_set(out / "tweets", n_train=tweets_train, n_test=tweets_test, seed=seed))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    parser.add_argument("--only", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--ocr", type=int, default=50, help="rendered text images")
    parser.add_argument("--asr", type=int, default=20, help="spoken sentences")
    parser.add_argument("--caption", type=int, default=50, help="shape images")
    parser.add_argument("--tweets-train", type=int, default=300)
    parser.add_argument("--tweets-test", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = (args.ocr, args.asr, args.caption, args.tweets_train, args.tweets_test)
    if min(sizes) < 1:
        parser.error("every size must be at least 1")
    written = make_sets(
        args.out,
        only=args.only,
        ocr=args.ocr,
        asr=args.asr,
        caption=args.caption,
        tweets_train=args.tweets_train,
        tweets_test=args.tweets_test,
        seed=args.seed,
    )
    for path in written:
        print(f"{file_hash(path)[:12]}  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
