"""Deterministic synthetic data for tests, benchmarks and demos.

No real data can be fetched from this machine, yet every stage needs inputs with a
known answer: rendered text for OCR, espeak-ng speech for ASR, drawn shapes for
captioning, and a small tweet dump whose reference tweets are *templated from the
same facts* the pipeline can see (brand, poster text, likes), so a fine-tuned model
has a learnable mapping.  Every generator takes a seed and uses only ``random.Random``
and deterministic encoders, so the same seed gives byte-identical CSVs.

CLI: ``python -m core.devtools.synthetic {ocr,asr,caption,tweets} OUT_DIR [--n N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from core.console import run_guarded
from core.errors import UserError
from core.stages.prompt import likes_bucket

Color = tuple[int, int, int]
FONT_ROOT = Path("/usr/share/fonts")
SAMPLE_RATE = 16_000
TWEET_COLUMNS = ("id", "date", "likes", "content", "username", "media", "inferred company")

# Fonts that stay legible at OCR sizes, tried in this order; any other TTF found is a fallback.
_LEGIBLE_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
    "LiberationSans-Regular.ttf",
    "LiberationSans-Bold.ttf",
    "LiberationSerif-Regular.ttf",
    "LiberationSerif-Bold.ttf",
    "FreeSans.ttf",
    "FreeSansBold.ttf",
    "FreeSerif.ttf",
)

# The Debian package behind each font family; install.sh installs all three (its APT_PACKAGES list).
FONT_PACKAGES = {"DejaVu": "fonts-dejavu-core", "Liberation": "fonts-liberation", "Free": "fonts-freefont-ttf"}


def font_package(name: str) -> str:
    """The Debian package that ships font ``name`` (``fonts-dejavu-core`` when unknown)."""
    return next((pkg for prefix, pkg in FONT_PACKAGES.items() if Path(name).name.startswith(prefix)),
                "fonts-dejavu-core")


WORDS: tuple[str, ...] = tuple(
    "apple garden river coffee market summer winter morning ticket window yellow orange silver "
    "forest planet rocket pocket bridge castle island music festival sale discount fresh bakery "
    "station travel holiday city open daily happy quick bright green coast lemon pepper candle paper "
    "studio camera puzzle garage jacket sunset harbor valley meadow".split()
)

# --------------------------------------------------------------------------- fonts and images


@lru_cache(maxsize=1)
def available_fonts() -> tuple[Path, ...]:
    """Legible TTFs under /usr/share/fonts, preferred ones first, in a fixed order."""
    found = sorted(FONT_ROOT.rglob("*.ttf")) if FONT_ROOT.is_dir() else []
    by_name = {p.name: p for p in found}
    preferred = [by_name[name] for name in _LEGIBLE_FONTS if name in by_name]
    return tuple(preferred) if preferred else tuple(found)


def _resolve_font(font: str | None) -> Path | None:
    """A font path, a file name ("DejaVuSans-Bold.ttf") or a stem ("DejaVuSans-Bold")."""
    if font is None:
        fonts = available_fonts()
        return fonts[0] if fonts else None
    path = Path(font)
    if path.is_file():
        return path
    wanted = {path.name, path.name + ".ttf"}
    for candidate in sorted(FONT_ROOT.rglob("*.ttf")) if FONT_ROOT.is_dir() else []:
        if candidate.name in wanted:
            return candidate
    package = font_package(font)
    raise UserError(f"font {font!r} not found under {FONT_ROOT}: it comes from Debian's {package}, which "
                    f"`bash install.sh` installs (or run: sudo apt-get install {package})")


def _load_font(path: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(path), size=size)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float) -> list[str] | None:
    """Greedy word wrap; None if a single word is wider than ``width``."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            if font.getlength(word) > width:
                return None
            trial = f"{current} {word}".strip()
            if font.getlength(trial) <= width:
                current = trial
            else:
                lines.append(current)
                current = word
        lines.append(current)
    return lines


def render_text_image(
    text: str,
    *,
    size: tuple[int, int] = (640, 360),
    font_size: int = 48,
    font: str | None = None,
    fg: Color = (20, 20, 20),
    bg: Color = (245, 240, 230),
    seed: int = 0,
) -> Image.Image:
    """A poster-like RGB image: ``text`` wrapped and centred inside a thin decorative frame.

    The font shrinks (down to 10 px) until the wrapped text fits, so callers can pass any
    phrase.  ``seed`` varies only the frame (accent colour and inset), never the text
    area, so OCR difficulty depends on font, size and colours alone.
    """
    width, height = size
    rng = random.Random(seed)
    image = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(image)

    inset = rng.randint(6, 14)
    accent = tuple((f + b) // 2 + rng.randint(-30, 30) for f, b in zip(fg, bg, strict=True))
    accent = tuple(max(0, min(255, c)) for c in accent)
    draw.rectangle([inset, inset, width - 1 - inset, height - 1 - inset], outline=accent, width=3)

    font_path = _resolve_font(font)
    margin = inset + 16
    box_w, box_h = width - 2 * margin, height - 2 * margin
    current = font_size
    while True:
        face = _load_font(font_path, current)
        lines = _wrap(text, face, box_w)
        line_h = current * 1.25
        if (lines is not None and len(lines) * line_h <= box_h) or current <= 10:
            break
        current = max(10, int(current * 0.9))
    lines = lines if lines is not None else [text]

    top = (height - len(lines) * line_h) / 2
    for i, line in enumerate(lines):
        x = (width - face.getlength(line)) / 2
        draw.text((x, top + i * line_h), line, font=face, fill=fg)
    return image


# --------------------------------------------------------------------------- speech


def _require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserError(f"`{name}` not found on PATH; install the Debian package `{package}`")
    return path


def _decode_to_mono16k(source: str | Path) -> bytes:
    """Decode any audio file to 16 kHz mono s16le PCM with PyAV (libswresample)."""
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[bytes] = []
    with av.open(str(source)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(bytes(out.planes[0])[: out.samples * 2])
    for out in resampler.resample(None):
        chunks.append(bytes(out.planes[0])[: out.samples * 2])
    return b"".join(chunks)


def speak(text: str, path: Path, *, voice: str = "en-us", speed: int = 150) -> Path:
    """Synthesize ``text`` with espeak-ng into a 16 kHz mono 16-bit WAV at ``path``.

    espeak-ng writes 22.05 kHz; ASR models want 16 kHz, so we resample with PyAV rather
    than depend on sox/ffmpeg binaries.  Text goes through stdin so a leading '-' is
    never read as an option.
    """
    if not text.strip():
        raise UserError("speak(): nothing to say (empty text)")
    binary = _require_binary("espeak-ng", "espeak-ng")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        proc = subprocess.run(
            [binary, "-v", voice, "-s", str(speed), "-w", str(raw), "--stdin"],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0 or not raw.is_file() or raw.stat().st_size <= 44:
            raise UserError(
                f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace').strip()}"
            )
        pcm = _decode_to_mono16k(raw)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return path


# --------------------------------------------------------------------------- video


def make_video(
    path: Path,
    images: Sequence[Image.Image],
    *,
    fps: int = 2,
    seconds_per_image: float = 1.0,
    audio_wav: Path | None = None,
) -> Path:
    """Write an H.264 (+ AAC if ``audio_wav``) MP4 showing each image for ``seconds_per_image``.

    Frames are resized to the first image's size rounded down to even numbers, which
    yuv420p requires.
    """
    import av

    if not images:
        raise UserError("make_video(): no images given")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = (images[0].width // 2) * 2, (images[0].height // 2) * 2
    if width == 0 or height == 0:
        raise UserError("make_video(): images must be at least 2x2 pixels")
    repeats = max(1, round(fps * seconds_per_image))

    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio_in = av.open(str(audio_wav)) if audio_wav is not None else None
        try:
            if audio_in is not None:
                rate = audio_in.streams.audio[0].codec_context.sample_rate
                audio = container.add_stream("aac", rate=rate)
                audio.layout = "mono"
            for image in images:
                frame = av.VideoFrame.from_image(image.convert("RGB").resize((width, height)))
                for _ in range(repeats):
                    container.mux(video.encode(frame))
            container.mux(video.encode(None))
            if audio_in is not None:
                resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
                for frame in audio_in.decode(audio=0):
                    for out in resampler.resample(frame):
                        container.mux(audio.encode(out))
                for out in resampler.resample(None):
                    container.mux(audio.encode(out))
                container.mux(audio.encode(None))
        finally:
            if audio_in is not None:
                audio_in.close()
    return path


# --------------------------------------------------------------------------- CSV helpers


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """CSV with fixed quoting and '\\n' line ends, so equal data gives equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


def _contrasting_colors(rng: random.Random) -> tuple[Color, Color]:
    """Foreground/background with a large luminance gap (dark-on-light or light-on-dark)."""
    dark = (rng.randint(0, 70), rng.randint(0, 70), rng.randint(0, 70))
    light = (rng.randint(200, 255), rng.randint(200, 255), rng.randint(200, 255))
    return (dark, light) if rng.random() < 0.7 else (light, dark)


# --------------------------------------------------------------------------- OCR set


def make_ocr_set(out_dir: str | Path, n: int = 20, seed: int = 0) -> Path:
    """``n`` rendered phrases of 1-4 words in varied fonts, colours and sizes; returns ``ocr.csv``.

    Columns ``path,text``; paths are relative to the CSV's folder.
    """
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    fonts = available_fonts()
    rows = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 4))]
        style = rng.choice(("lower", "title", "upper"))
        text = " ".join(words)
        text = text.title() if style == "title" else text.upper() if style == "upper" else text
        fg, bg = _contrasting_colors(rng)
        font = str(rng.choice(fonts)) if fonts else None
        size = rng.choice(((480, 160), (640, 200), (400, 240)))
        image = render_text_image(
            text,
            size=size,
            font_size=rng.randint(28, 60),
            font=font,
            fg=fg,
            bg=bg,
            seed=rng.randint(0, 10**6),
        )
        rel = f"images/ocr_{i:03d}.png"
        (out_dir / "images").mkdir(parents=True, exist_ok=True)
        image.save(out_dir / rel)
        rows.append((rel, text))
    return _write_csv(out_dir / "ocr.csv", ("path", "text"), rows)


# --------------------------------------------------------------------------- ASR set

_SUBJECTS = (
    "The baker",
    "My neighbor",
    "A small robot",
    "The new manager",
    "Our team",
    "The pilot",
    "Her brother",
)
_VERBS = ("opened", "painted", "delivered", "found", "repaired", "sold", "carried")
_OBJECTS = (
    "the blue door",
    "a wooden table",
    "fresh bread",
    "an old bicycle",
    "the red boxes",
    "a paper map",
)
_TIMES = ("this morning", "last week", "on Friday", "before lunch", "at the station", "in the garden")


def _sentence(rng: random.Random) -> str:
    sentence = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TIMES)}"
    if rng.random() < 0.3:  # numbers exercise the WER normaliser ("25" is read "twenty five")
        sentence += f" for {rng.randint(2, 99)} dollars"
    return sentence + "."


def make_asr_set(out_dir: str | Path, n: int = 10, seed: int = 0) -> Path:
    """``n`` espeak-ng sentences as 16 kHz WAVs; returns ``asr.csv`` (columns ``audio,text``)."""
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = _sentence(rng)
        rel = f"audio/asr_{i:03d}.wav"
        speak(text, out_dir / rel, voice=rng.choice(("en-us", "en")), speed=rng.choice((140, 150, 165)))
        rows.append((rel, text))
    return _write_csv(out_dir / "asr.csv", ("audio", "text"), rows)


# --------------------------------------------------------------------------- caption set

_COLORS: dict[str, Color] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 70, 220),
    "yellow": (240, 210, 20),
    "orange": (245, 140, 20),
    "purple": (130, 50, 170),
    "black": (15, 15, 15),
}
_BACKGROUNDS: dict[str, Color] = {"white": (255, 255, 255), "gray": (128, 128, 128), "black": (0, 0, 0)}
_SHAPES = ("circle", "square", "triangle", "star")


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, center: tuple[float, float], radius: float, fill: Color
) -> None:
    cx, cy = center
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=fill)
    else:
        points = []
        for k in range(10):
            r = radius if k % 2 == 0 else radius * 0.45
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
        draw.polygon(points, fill=fill)


def make_caption_set(out_dir: str | Path, n: int = 20, seed: int = 0) -> Path:
    """Simple coloured shapes with captions like "a red circle on a white background".

    Returns ``captions.csv`` with columns ``path,caption`` (paths relative to it).
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        background = rng.choice(sorted(_BACKGROUNDS))
        color = rng.choice([c for c in sorted(_COLORS) if c != background])
        shape = rng.choice(_SHAPES)
        size = (320, 240)
        image = Image.new("RGB", size, _BACKGROUNDS[background])
        radius = rng.uniform(45, 95)
        center = (rng.uniform(radius, size[0] - radius), rng.uniform(radius, size[1] - radius))
        _draw_shape(ImageDraw.Draw(image), shape, center, radius, _COLORS[color])
        rel = f"images/cap_{i:03d}.png"
        image.save(out_dir / rel)
        article = "an" if color[0] in "aeiou" else "a"
        rows.append((rel, f"{article} {color} {shape} on a {background} background"))
    return _write_csv(out_dir / "captions.csv", ("path", "caption"), rows)


# --------------------------------------------------------------------------- tweet set


@dataclass(frozen=True)
class Voice:
    """How a brand writes, whatever it advertises: the habits that history examples should teach a model.

    Every generated tweet of a brand carries its habits with fixed rates, so an evaluation can tell a
    model that learned the voice (signature hashtag, sign-off, emoji, casing, length) from one that did not.
    """

    hashtag: str = ""  # signature hashtag, e.g. "#NorthwindMornings"
    signoff: str = ""  # closing line, e.g. "Stay cozy ☕"
    casing: str = "normal"  # normal | lower (whole tweet lowercase) | shout (offers in CAPITALS)
    emojis: tuple[str, ...] = ()  # the brand's emoji habit (one of them after the main sentence)
    extra: str = ""  # a second sentence long-winded brands add (empty: short tweets)
    hashtag_rate: float = 0.85
    signoff_rate: float = 0.8
    emoji_rate: float = 0.7


@dataclass(frozen=True)
class Brand:
    """A fictional company with what its posters advertise and how it writes about it."""

    name: str
    username: str
    company: str
    products: tuple[str, ...]
    fg: Color
    bg: Color
    font: str
    voice: Voice = Voice()


BRANDS: tuple[Brand, ...] = (
    Brand(
        "Northwind Coffee",
        "NorthwindCoffee",
        "northwind coffee",
        ("Caramel Latte", "Cold Brew", "Oat Cappuccino", "Espresso Beans"),
        (60, 30, 10),
        (245, 230, 210),
        "DejaVuSerif.ttf",
        Voice("#NorthwindMornings", "Stay cozy, friends.", "normal", ("☕",), "Pull up a chair and stay a while."),
    ),
    Brand(
        "Aurora Motors",
        "AuroraMotors",
        "aurora motors",
        ("Model E Hatchback", "Trail SUV", "City Scooter", "Roadster GT"),
        (240, 240, 250),
        (20, 30, 60),
        "LiberationSans-Bold.ttf",
        Voice("#DriveAurora", "Drive bright.", "normal", (), "", emoji_rate=0.0),
    ),
    Brand(
        "Pixel Peak",
        "PixelPeakTech",
        "pixel peak",
        ("Peak Phone 5", "Studio Headphones", "Smart Watch", "Pocket Camera"),
        (10, 10, 10),
        (200, 235, 250),
        "DejaVuSans-Bold.ttf",
        Voice("#PeakTech", "Level up!", "shout", ("⚡", "🔥"), ""),
    ),
    Brand(
        "GreenLeaf Foods",
        "GreenLeafFoods",
        "greenleaf foods",
        ("Veggie Burger", "Mango Smoothie", "Granola Bar", "Lentil Soup"),
        (250, 250, 240),
        (30, 110, 50),
        "FreeSansBold.ttf",
        Voice("#EatGreen", "eat well, live well", "lower", ("🌱", "🥑"), "good food, good mood."),
    ),
    Brand(
        "Skyline Airways",
        "SkylineAir",
        "skyline airways",
        ("Flights to Lisbon", "Flights to Tokyo", "Business Class", "Weekend Getaways"),
        (20, 20, 80),
        (250, 250, 255),
        "LiberationSerif-Bold.ttf",
        Voice("#FlySkyline", "See you onboard!", "normal", ("✈️",), "Pack your bags and bring your smile."),
    ),
    Brand(
        "Orbit Lab",
        "OrbitLabSpace",
        "orbit lab",
        ("Nova Rocket Kit", "Star Map", "Launch Tour", "Moon Lamp"),
        (230, 230, 255),
        (10, 10, 40),
        "DejaVuSans.ttf",
        Voice("#ToTheStars", "Ad astra.", "normal", ("🚀", "🌌"), ""),
    ),
    Brand(
        "Harbor Books",
        "HarborBooks",
        "harbor books",
        ("Mystery Box Set", "Poetry Collection", "Kids Picture Books", "Signed First Editions"),
        (40, 20, 20),
        (250, 245, 225),
        "LiberationSerif-Regular.ttf",
        Voice("#ReadMore", "Happy reading!", "lower", ("📚",), "a good book is a good friend."),
    ),
)

_OFFERS = ("20% OFF", "30% OFF", "BUY ONE GET ONE", "NEW", "LIMITED EDITION", "FREE DELIVERY")
_DAYS = ("THIS FRIDAY", "THIS WEEKEND", "ALL MONTH", "TODAY ONLY")
_START = datetime(2020, 1, 1)
_SPAN_MINUTES = int((datetime(2023, 12, 31, 23, 59) - _START).total_seconds() // 60)


# The prompt's five log-scale buckets, folded into the three template registers used below.
_REGISTER = {"very low": "low", "low": "low", "medium": "medium", "high": "high", "very high": "high"}


def _tweet_text(rng: random.Random, brand: Brand, product: str, offer: str, day: str, likes: int) -> str:
    """Reference tweet from the visible facts (wording by likes bucket), then the brand's voice around it."""
    voice = brand.voice
    offer_words = offer if voice.casing == "shout" else offer.lower() if offer != "NEW" else "new"
    day_words = day.lower()
    bucket = _REGISTER[likes_bucket(likes) or "low"]
    if bucket == "low":
        options = (
            f"{product} from {brand.name}: {offer_words} {day_words}.",
            f"{brand.name} {product} - {offer_words}, {day_words}.",
        )
    elif bucket == "medium":
        options = (
            f"Have you tried the {product}? {offer_words[0].upper() + offer_words[1:]} {day_words} at {brand.name}!",
            f"Your new favourite: {product}. {offer_words[0].upper() + offer_words[1:]} {day_words}!",
        )
    else:
        options = (
            f"Big news! The {product} is here and it's {offer_words} {day_words}. Don't miss it!",
            f"You asked, we listened: {product}, {offer_words} {day_words}! Thank you for the love!",
        )
    parts = [rng.choice(options)]
    if voice.emojis and rng.random() < voice.emoji_rate:
        parts[0] += " " + rng.choice(voice.emojis)
    if voice.extra and rng.random() < 0.6:
        parts.append(voice.extra)
    if voice.signoff and rng.random() < voice.signoff_rate:
        parts.append(voice.signoff)
    text = " ".join(parts)
    if voice.casing == "lower":  # the facts stay (lowercase), the habit shows
        text = text.lower()
    if voice.hashtag and rng.random() < voice.hashtag_rate:
        text = f"{text} {voice.hashtag}"
    if rng.random() < 0.25:
        text = f"<mention> {text}"
    if rng.random() < 0.5:
        text = f"{text} <hyperlink>"
    return text


def make_tweet_set(
    out_dir: str | Path, n_train: int = 300, n_test: int = 60, seed: int = 0
) -> tuple[Path, Path]:
    """A train and a test tweet dump (``train.csv``, ``test.csv``) with local poster images.

    Columns are exactly the content-simulation format (``id,date,likes,content,username,
    media,inferred company``); ``media`` holds ``[Photo(previewUrl='images/<id>.png',
    fullUrl='images/<id>.png')]`` relative to the CSV's folder.  Both files keep
    ``content`` so the test split can be scored.  Likes are log-normal (median ~70);
    dates span 2020-2023; ids are unique across the two files.
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    total = n_train + n_test
    ids = rng.sample(range(10**15, 10**15 + 10**9), total)
    rows = []
    for tweet_id in ids:
        brand = rng.choice(BRANDS)
        product = rng.choice(brand.products)
        offer = rng.choice(_OFFERS)
        day = rng.choice(_DAYS)
        likes = int(rng.lognormvariate(math.log(70), 2.0))
        date = _START + timedelta(minutes=rng.randrange(_SPAN_MINUTES))
        poster = f"{product.upper()}\n{offer}\n{day}"
        image = render_text_image(
            poster,
            size=(640, 360),
            font_size=52,
            font=brand.font,
            fg=brand.fg,
            bg=brand.bg,
            seed=tweet_id % 1000,
        )
        rel = f"images/{tweet_id}.png"
        image.save(out_dir / rel)
        media = f"[Photo(previewUrl='{rel}', fullUrl='{rel}')]"
        content = _tweet_text(rng, brand, product, offer, day, likes)
        rows.append(
            (
                tweet_id,
                date.strftime("%Y-%m-%d %H:%M:%S"),
                likes,
                content,
                brand.username,
                media,
                brand.company,
            )
        )
    train = _write_csv(out_dir / "train.csv", TWEET_COLUMNS, rows[:n_train])
    test = _write_csv(out_dir / "test.csv", TWEET_COLUMNS, rows[n_train:])
    return train, test


def _generated_brand(rng: random.Random, i: int) -> Brand:
    """A made-up brand with its own products and voice, for dumps far larger than the hand-written seven."""
    stem = rng.choice(WORDS).title() + rng.choice(WORDS).title()
    name = f"{stem} {rng.choice(('Co', 'Labs', 'Foods', 'Studio', 'Goods', 'Works'))}"
    products = tuple(f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()}" for _ in range(4))
    voice = Voice(
        f"#{stem}{i}",
        rng.choice(("Stay tuned!", "See you soon.", "Cheers!", "Much love.", "Onwards!")),
        rng.choice(("normal", "normal", "lower", "shout")),
        tuple(rng.sample(("✨", "🔥", "🎉", "💚", "☀️", "🚀", "📣"), 2)),
        rng.choice(("", "", "Tell your friends.")),
    )
    return Brand(name, f"{stem}{i}", name.lower(), products, (0, 0, 0), (255, 255, 255), "DejaVuSans.ttf", voice)


def make_history_dump(path: str | Path, n: int = 300_000, n_brands: int = 2_000, seed: int = 0) -> Path:
    """A large tweet dump (text only, no images) for scaling the history index: brand sizes are skewed
    (a few big accounts, a long tail), each brand writes in its own voice, dates span 2020-2023."""
    rng = random.Random(seed)
    brands = [*BRANDS, *(_generated_brand(rng, i) for i in range(max(0, n_brands - len(BRANDS))))]
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(brands))]
    chosen = rng.choices(range(len(brands)), weights=weights, k=n)
    rows = []
    for i, b in enumerate(chosen):
        brand = brands[b]
        likes = int(rng.lognormvariate(math.log(70), 2.0))
        date = _START + timedelta(minutes=rng.randrange(_SPAN_MINUTES))
        content = _tweet_text(rng, brand, rng.choice(brand.products), rng.choice(_OFFERS), rng.choice(_DAYS), likes)
        rows.append((10**12 + i, date.strftime("%Y-%m-%d %H:%M:%S"), likes, content, brand.username, "",
                     brand.company))
    return _write_csv(Path(path), TWEET_COLUMNS, rows)


# --------------------------------------------------------------------------- CLI


def configure_synth(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("ocr", "asr", "caption", "tweets"))
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--n", type=int, default=None, help="number of items (tweets: train rows)")
    parser.add_argument("--n-test", type=int, default=None, help="tweets only: test rows (default n/5)")
    parser.add_argument("--seed", type=int, default=0)


def run_synth(args: argparse.Namespace) -> int:
    """``m2t synth KIND OUT_DIR``: a labelled set made here (rendered text, espeak-ng speech, shapes, tweets)."""
    if args.n is not None and args.n < 1:
        raise UserError("--n must be at least 1")
    if args.kind == "ocr":
        print(make_ocr_set(args.out_dir, n=args.n or 20, seed=args.seed))
    elif args.kind == "asr":
        print(make_asr_set(args.out_dir, n=args.n or 10, seed=args.seed))
    elif args.kind == "caption":
        print(make_caption_set(args.out_dir, n=args.n or 20, seed=args.seed))
    else:
        n_train = args.n or 300
        n_test = args.n_test if args.n_test is not None else max(1, n_train // 5)
        for path in make_tweet_set(args.out_dir, n_train=n_train, n_test=n_test, seed=args.seed):
            print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.devtools.synthetic …``: the same as ``m2t synth …`` (this module's own parser, so a
    command module never reaches up into the dispatch table)."""
    parser = argparse.ArgumentParser(prog="python -m core.devtools.synthetic",
                                     description="make a labelled set here: ocr, asr, caption or tweets")
    configure_synth(parser)
    return run_guarded(lambda: run_synth(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
