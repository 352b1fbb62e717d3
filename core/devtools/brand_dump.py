"""A multi-brand tweet dump for judging brand voice: made-up brands, each with its own voice, posters and photos.

Why a second generator: :func:`core.devtools.synthetic.make_tweet_set` writes every brand's tweets from the
same four templates, so a model that copies any history tweet scores well and a "near copy" cannot be told
from a new tweet. Here each brand is drawn from a seed (name, trade, signature hashtag, sign-off, emoji, casing)
and writes about its posts in varied sentences around the facts; a share of its history are shop notices
("The online shop is paused for stocktake until Monday") that a later tweet must not repeat as news; and a share
of its posts are *photos* (sample photos shipped with scikit-image and scikit-learn, installed with EasyOCR),
whose references name what the photo shows, so a tweet that names the classifier's wrong guess can be counted.

Any seed gives new brands; evaluate on a seed you did not develop on. Files (paths relative to the CSVs):

* ``history.csv``: each brand's earlier tweets (the ``--history`` of a run on ``test.csv``);
* ``test.csv``: each brand's later posts, ``content`` kept as the reference;
* ``all.csv``: both, for ``--split time`` / ``--split brand``;
* ``subjects.csv``: ``id,subject`` for photo posts (the words that name what the photo shows).
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image

from core.devtools.synthetic import TWEET_COLUMNS, _write_csv, available_fonts, render_text_image


def sample_photo_dirs() -> list[Path]:
    """Where the installed packages keep their sample photos (scikit-image's data, scikit-learn's images)."""
    import importlib.util

    found = []
    for package, sub in (("skimage", "data"), ("sklearn", "datasets/images")):
        spec = importlib.util.find_spec(package)
        if spec and spec.origin:
            folder = Path(spec.origin).parent / sub
            if folder.is_dir():
                found.append(folder)
    return found


def sample_photo(name: str) -> Path | None:
    """A sample photo by file name (``coffee.png``), or None when that package is not installed."""
    for folder in sample_photo_dirs():
        if (folder / name).is_file():
            return folder / name
    return None


@dataclass(frozen=True)
class Trade:
    """What a kind of shop sells, announces and photographs; a brand is one trade plus a voice."""

    names: tuple[str, ...]
    products: tuple[str, ...]
    events: tuple[str, ...]
    photos: tuple[tuple[str, str, str], ...]  # (sample photo file, subject words, how the brand says it)
    emojis: tuple[str, ...]
    notices: tuple[str, ...]


TRADES: tuple[Trade, ...] = (
    Trade(("Ember", "Copper Kettle", "Little Roast", "Daybreak"), ("Oat Flat White", "Cold Brew", "Chai Latte",
          "Honey Cortado", "House Blend Beans"), ("Latte Art Class", "Cupping Morning", "Open Mic Night"),
          (("coffee.png", "espresso coffee cup", "a fresh espresso"),), ("☕", "🤎", "✨"),
          ("The online shop is paused for stocktake until Monday.", "Our Elm Street cafe opens at 9 tomorrow.")),
    Trade(("Paper Lantern", "Shelf Life", "Dog Ear", "Quiet Corner"), ("Poetry Collection", "Mystery Box Set",
          "Signed First Editions", "Kids Picture Books", "Travel Guides"), ("Author Talk", "Story Time",
          "Book Club Evening"), (("page.png", "page book text", "a page from our favourite novel"),
                                 ("text.png", "text page letters", "a page of old type")), ("📚", "🔖", "☕"),
          ("Orders placed this week ship after the holiday.", "The reading room is closed for repairs on Tuesday.")),
    Trade(("Wagging Tail", "Pawsome", "Happy Paws", "Fur & Feather"), ("Salmon Treats", "Cosy Cat Bed",
          "Rope Toy", "Grooming Kit", "Puppy Food"), ("Adoption Day", "Puppy Training Class", "Cat Cafe Morning"),
          (("chelsea.png", "cat kitten tabby", "our shop cat Chelsea"),), ("🐾", "🐶", "🐱"),
          ("Our grooming salon is fully booked this month.", "The vet clinic moves to Oak Road next week.")),
    Trade(("Starfield", "Orbital", "Deep Sky", "Comet"), ("Telescope Kit", "Star Map Poster", "Moon Lamp",
          "Planet Puzzle", "Rocket Model"), ("Stargazing Night", "Launch Watch Party", "Astronomy Talk"),
          (("astronaut.png", "astronaut space suit", "an astronaut on a spacewalk"),
           ("rocket.jpg", "rocket launch", "a rocket on the launch pad"),
           ("moon.png", "moon crater surface", "the surface of the moon")), ("🚀", "🌌", "🔭"),
          ("The planetarium show is cancelled tonight due to rain.", "Our telescope repair desk is closed until May.")),
    Trade(("Two Wheels", "Open Road", "Throttle", "Kickstand"), ("Helmet Range", "Leather Jacket",
          "Service Package", "Touring Gloves", "Chain Kit"), ("Ride Out Sunday", "Maintenance Workshop",
          "Test Ride Day"), (("motorcycle_left.png", "motorcycle motorbike bike", "the new touring bike"),
                             ("motorcycle_right.png", "motorcycle motorbike bike", "our workshop bike")),
          ("🏍️", "🔧", "🛣️"),
          ("The workshop is closed for inventory on Saturday.", "Parts orders are delayed by two weeks.")),
    Trade(("Green Thumb", "Bloom & Root", "Meadow", "Sprout"), ("Seed Starter Kit", "Herb Planter", "Rose Bushes",
          "Garden Gloves", "Compost Bin"), ("Planting Workshop", "Seed Swap", "Garden Tour"),
          (("flower.jpg", "flower dahlia blossom", "this week's dahlias"), ("grass.png", "grass lawn", "the lawn"),
           ("gravel.png", "gravel path stones", "the new gravel path")), ("🌱", "🌸", "🌻"),
          ("The nursery is closed on bank holiday Monday.", "Deliveries pause for the frost until Friday.")),
    Trade(("Wander", "Far Horizons", "Compass Rose", "Atlas"), ("City Breaks", "Temple Tours", "Rail Passes",
          "Island Hopping", "Walking Holidays"), ("Travel Talk", "Photo Walk", "Open Day"),
          (("china.jpg", "temple palace pagoda", "the old temple gate"),), ("✈️", "🌍", "🧳"),
          ("Our office is closed over the long weekend.", "Bookings for August open next Tuesday.")),
    Trade(("Shutter", "Lens & Light", "F-Stop", "Darkroom"), ("Film Cameras", "Tripod Sale", "Portrait Lens",
          "Camera Bags", "Print Service"), ("Photo Walk", "Darkroom Workshop", "Portfolio Review"),
          (("camera.png", "camera tripod photographer", "a photographer and his tripod"),), ("📷", "🎞️", "✨"),
          ("The print lab is closed for maintenance this week.", "Film developing takes ten days this month.")),
)
SIGNOFFS = ("Stay pawsome!", "Happy reading!", "See you soon!", "Keep exploring.", "Cheers, friends!",
            "Ride safe.", "Happy growing!", "Onwards and upwards!", "Much love, the team.", "Catch you there!",
            "Stay curious!", "Have a lovely day!")
OFFERS = ("20% OFF", "BUY ONE GET ONE FREE", "NEW IN", "HALF PRICE", "FREE DELIVERY", "2 FOR $15", "$5 OFF")
DAYS = ("THIS FRIDAY", "THIS WEEKEND", "ALL MONTH", "TODAY ONLY", "SATURDAY", "FROM MONDAY")
TIMES = ("6PM", "10AM", "7:30PM", "2PM", "11AM")
_START = datetime(2023, 1, 2, 8, 0)


@dataclass(frozen=True)
class DumpBrand:
    """One made-up account: its trade and its voice (what its history teaches and a reference carries)."""

    name: str
    username: str
    trade: Trade
    hashtag: str
    signoff: str
    emojis: tuple[str, ...]
    lowercase: bool
    fg: tuple[int, int, int]
    bg: tuple[int, int, int]
    font: str


def make_brands(n: int, rng: random.Random) -> list[DumpBrand]:
    """``n`` brands of different trades (they repeat past eight), each with its own hashtag, sign-off and emoji."""
    trades = rng.sample(TRADES, len(TRADES))
    signoffs = rng.sample(SIGNOFFS, len(SIGNOFFS))
    fonts = [f.name for f in available_fonts()] or ["DejaVuSans.ttf"]
    brands = []
    for i in range(n):
        trade = trades[i % len(trades)]
        stem = rng.choice(trade.names)
        kind = rng.choice(("Co", "Shop", "House", "Club", "Store", "Studio"))
        name = f"{stem} {kind}"
        tag_word = rng.choice((stem.replace(" ", "").replace("&", "And"), trade.products[0].split()[0] + "Love",
                               stem.split()[0] + "Days", stem.split()[0] + "Crew"))
        dark = (rng.randint(0, 70), rng.randint(0, 70), rng.randint(0, 70))
        light = (rng.randint(200, 255), rng.randint(200, 255), rng.randint(200, 255))
        brands.append(DumpBrand(
            name=name, username=(stem + kind).replace(" ", "").replace("&", "And") + str(rng.randint(1, 99)),
            trade=trade, hashtag=f"#{tag_word}", signoff=signoffs[i % len(signoffs)],
            emojis=tuple(rng.sample(trade.emojis, 1)), lowercase=rng.random() < 0.3,
            fg=dark if i % 2 else light, bg=light if i % 2 else dark, font=rng.choice(fonts)))
    return brands


OPENERS = ("", "", "Big news!", "Psst.", "Heads up, friends:", "It's that time again.", "Guess what?", "Happy Monday!",
            "Fresh from the team:", "Quick one:", "Don't miss this.", "Good morning!")
CLOSERS = ("", "", "See you there.", "Tell a friend.", "Tag someone who needs this.", "We saved you a spot.",
           "Doors open early.", "It won't last long.", "Drop by and say hi.", "Bring the whole crew.")


def _frame(rng: random.Random, body: str) -> str:
    """An opener and a closer around the body, so a brand's tweets share its voice, not one template."""
    return " ".join(filter(None, (rng.choice(OPENERS), body, rng.choice(CLOSERS))))


def _poster_sentence(rng: random.Random, b: DumpBrand, item: str, offer: str, when: str, event: bool) -> str:
    """A sentence of the brand's own around the poster's facts (the poster's words in normal case)."""
    offer_words = offer.lower()
    when_words = when.lower()
    if event:
        options = (
            f"Join us for our {item} {when_words}: bring a friend and your questions.",
            f"Save the date! Our {item} is on {when_words} and everyone is welcome.",
            f"We can't wait to see you at the {item} {when_words}, grab a seat early.",
            f"Mark your calendar: {item}, {when_words}. It's going to be a good one.",
            f"The {item} is back {when_words} and we have been counting the days.",
            f"Come along to the {item} {when_words}, no booking needed.",
            f"{when_words.capitalize()}: {item}. Coffee is on us while it lasts.",
        )
    else:
        options = (
            f"Treat yourself: the {item} is {offer_words} {when_words} at {b.name}.",
            f"Good news for your weekend plans, our {item} is {offer_words} {when_words}.",
            f"You asked and we listened. {item}, {offer_words} {when_words}, while stocks last.",
            f"Looking for something new? The {item} is {offer_words} {when_words}, come and see.",
            f"This one is for you: {offer_words} on the {item} {when_words}.",
            f"Our {item} just got even better: {offer_words}, {when_words}.",
            f"If you have been eyeing the {item}, now is the moment: {offer_words} {when_words}.",
            f"{offer_words.capitalize()} on every {item} {when_words}. Yes, really.",
        )
    return _frame(rng, rng.choice(options))


def _photo_sentence(rng: random.Random, said: str) -> str:
    options = (
        f"A little look at {said} to brighten your feed.",
        f"Nothing beats {said} on a day like this.",
        f"Say hello to {said}, our favourite thing this week.",
        f"Caught on camera today: {said}.",
        f"Can we talk about {said} for a second?",
        f"Some days are all about {said}.",
        f"Here is {said}, just because.",
        f"Stopped in our tracks by {said} this morning.",
    )
    return _frame(rng, rng.choice(options))


def _dress(rng: random.Random, b: DumpBrand, sentence: str, habit: float = 0.85) -> str:
    """The brand's voice around a sentence: emoji, sign-off and hashtag each at the brand's habit rate."""
    text = sentence
    if rng.random() < habit:
        text += " " + b.emojis[0]
    if rng.random() < habit:
        text += " " + b.signoff
    if b.lowercase:
        text = text.lower()
    if rng.random() < habit:
        text += " " + b.hashtag
    if rng.random() < 0.3:
        text += " <hyperlink>"
    return text


@dataclass
class Post:
    id: int
    date: datetime
    likes: int
    content: str
    brand: DumpBrand
    media: str
    subject: str = ""


def _post(rng: random.Random, b: DumpBrand, when: datetime, ident: int, images: Path, notice_ok: bool) -> Post:
    likes = int(rng.lognormvariate(math.log(70), 1.5))
    roll = rng.random()
    rel = f"images/{ident}.png"
    if notice_ok and roll < 0.15:
        # A shop notice with a plain text card: the kind of tweet that goes stale.
        notice = rng.choice(b.trade.notices)
        render_text_image(notice.upper(), size=(640, 360), font_size=40, font=b.font, fg=b.fg, bg=b.bg,
                          seed=ident % 1000).save(images.parent / rel)
        text = notice + (" " + b.signoff if rng.random() < 0.5 else "")
        text = (text.lower() if b.lowercase else text) + (" " + b.hashtag if rng.random() < 0.85 else "")
        return Post(ident, when, likes, text, b, rel)
    if roll < 0.4:
        photo, subject, said = rng.choice(b.trade.photos)
        source = sample_photo(photo)
        if source is not None:
            with Image.open(source) as im:
                rgb = im.convert("RGB")
            if rng.random() < 0.5:
                rgb = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # the same subject, not the same bytes
            rgb.save(images.parent / rel)
            return Post(ident, when, likes, _dress(rng, b, _photo_sentence(rng, said)), b, rel, subject)
    event = rng.random() < 0.35
    item = rng.choice(b.trade.events if event else b.trade.products)
    offer = "" if event else rng.choice(OFFERS)
    day = rng.choice(DAYS)
    when_text = f"{day} {rng.choice(TIMES)}" if event else day
    lines = [item.upper(), when_text] if event else [item.upper(), offer, day]
    render_text_image("\n".join(lines), size=(640, 360), font_size=52, font=b.font, fg=b.fg, bg=b.bg,
                      seed=ident % 1000).save(images.parent / rel)
    return Post(ident, when, likes, _dress(rng, b, _poster_sentence(rng, b, item, offer, when_text, event)), b, rel)


def make_brand_dump(out_dir: str | Path, n_brands: int = 6, n_history: int = 60, n_test: int = 24,
                    seed: int = 0) -> dict[str, Path]:
    """Write ``history.csv``, ``test.csv``, ``all.csv`` and ``subjects.csv`` (+ ``images/``) under ``out_dir``.

    Each brand gets ``n_history / n_brands`` earlier tweets (notices among them) and ``n_test / n_brands``
    later posts (posters and photos, no notices), dated in that order over 2023.
    """
    out = Path(out_dir)
    images = out / "images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    brands = make_brands(n_brands, rng)
    ids = iter(rng.sample(range(10**15, 10**15 + 10**9), n_history + n_test))
    history: list[Post] = []
    later: list[Post] = []
    for i in range(n_history):
        b = brands[i % n_brands]
        when = _START + timedelta(days=rng.randrange(0, 240), minutes=rng.randrange(600))
        history.append(_post(rng, b, when, next(ids), images, notice_ok=True))
    for i in range(n_test):
        b = brands[i % n_brands]
        when = _START + timedelta(days=rng.randrange(250, 330), minutes=rng.randrange(600))
        later.append(_post(rng, b, when, next(ids), images, notice_ok=False))

    def rows(posts: Sequence[Post]) -> list[tuple]:
        return [(p.id, p.date.strftime("%Y-%m-%d %H:%M:%S"), p.likes, p.content, p.brand.username,
                 f"[Photo(previewUrl='{p.media}', fullUrl='{p.media}')]", p.brand.name.lower())
                for p in sorted(posts, key=lambda p: p.date)]

    return {
        "history": _write_csv(out / "history.csv", TWEET_COLUMNS, rows(history)),
        "test": _write_csv(out / "test.csv", TWEET_COLUMNS, rows(later)),
        "all": _write_csv(out / "all.csv", TWEET_COLUMNS, rows([*history, *later])),
        "subjects": _write_csv(out / "subjects.csv", ("id", "subject"),
                               [(p.id, p.subject) for p in [*history, *later] if p.subject]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.devtools.brand_dump", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--brands", type=int, default=6)
    parser.add_argument("--history", type=int, default=60)
    parser.add_argument("--test", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in make_brand_dump(args.out_dir, args.brands, args.history, args.test, args.seed).values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
