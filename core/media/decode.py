"""Turn any media a user has into images and a 16 kHz mono audio track.

Sources: a local path, raw bytes (uploads), an http(s) URL, or a tweet dump's ``media``
field. Photos become one image; GIFs and videos become a few evenly spaced keyframes plus
their audio; audio files become a waveform. Every failure is a ``MediaError`` with a
message a person can act on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from core.errors import MediaError
from core.media.dump_field import looks_like_dump, parse_media_field
from core.media.fetch import DEFAULT_MAX_BYTES, fetch_bytes, is_url

SAMPLE_RATE = 16_000
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
GIF_EXTS = {".gif"}
VIDEO_EXTS = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}
AUDIO_EXTS = {".wav", ".mp3", ".m4a", ".ogg", ".flac", ".opus", ".aac"}
SUPPORTED_EXTS = IMAGE_EXTS | GIF_EXTS | VIDEO_EXTS | AUDIO_EXTS
DEFAULT_KEYFRAMES = 3
MAX_IMAGE_SIDE = 1600  # larger photos only slow OCR down; text stays legible at this size


@dataclass
class Media:
    """What the stages consume: images (maybe none) and an audio track (maybe none)."""

    kind: str  # image | gif | video | audio | mixed
    source: str
    images: list[Image.Image] = field(default_factory=list)
    audio: np.ndarray | None = None  # float32, mono, SAMPLE_RATE
    duration: float | None = None
    errors: list[str] = field(default_factory=list)  # non-fatal problems (e.g. one dead link of two)

    @property
    def audio_seconds(self) -> float:
        return 0.0 if self.audio is None else len(self.audio) / SAMPLE_RATE


def _limit_size(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    if max(image.size) > MAX_IMAGE_SIDE:
        image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    return image


def _evenly_spaced(count: int, k: int) -> list[int]:
    if count <= 0:
        return []
    if count <= k:
        return list(range(count))
    return sorted({round(i * (count - 1) / (k - 1)) for i in range(k)}) if k > 1 else [count // 2]


def decode_image(data: bytes, name: str = "image") -> Media:
    """A still image, or the keyframes of an animated GIF/WebP/PNG."""
    try:
        image = Image.open(io.BytesIO(data))
        n_frames = getattr(image, "n_frames", 1)
        if n_frames > 1:
            frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
            picks = [_limit_size(frames[i]) for i in _evenly_spaced(len(frames), DEFAULT_KEYFRAMES)]
            return Media(kind="gif", source=name, images=picks)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{name}: not a readable image ({exc.__class__.__name__}); is the file corrupt?") from None
    return Media(kind="image", source=name, images=[_limit_size(image)])


def _decode_audio(container: av.container.InputContainer) -> np.ndarray | None:
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks = []
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        return None
    return np.concatenate(chunks).astype(np.float32)


def _decode_keyframes(container: av.container.InputContainer, k: int) -> tuple[list[Image.Image], float | None]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    frames: list[Image.Image] = []
    if duration:
        targets = [duration * (i + 0.5) / k for i in range(k)]
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if frame.time >= targets[len(frames)]:
                frames.append(_limit_size(frame.to_image()))
                if len(frames) == k:
                    break
    if not frames:  # unknown duration: keep every frame's image cheaply is too costly, take the first k
        container.seek(0)
        for frame in container.decode(stream):
            frames.append(_limit_size(frame.to_image()))
            if len(frames) >= k:
                break
    return frames, duration


def decode_av(data: bytes, name: str = "media", keyframes: int = DEFAULT_KEYFRAMES) -> Media:
    """Video (keyframes + audio) or audio-only file, decoded with FFmpeg through PyAV."""
    try:
        with av.open(io.BytesIO(data)) as container:
            has_video = bool(container.streams.video)
            images, duration = _decode_keyframes(container, keyframes) if has_video else ([], None)
        with av.open(io.BytesIO(data)) as container:
            audio = _decode_audio(container)
            if duration is None and container.duration:
                duration = container.duration / av.time_base
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise MediaError(f"{name}: cannot decode this audio/video file ({exc.__class__.__name__})") from None
    if not images and (audio is None or audio.size == 0):
        raise MediaError(f"{name}: the file has no picture and no sound")
    if duration is None and audio is not None:
        duration = len(audio) / SAMPLE_RATE
    kind = "video" if has_video else "audio"
    return Media(kind=kind, source=name, images=images, audio=audio, duration=duration)


def decode_bytes(data: bytes, name: str = "upload") -> Media:
    """Dispatch on extension, then on content: a misnamed file still decodes."""
    if not data:
        raise MediaError(f"{name}: the file is empty (0 bytes)")
    if len(data) > DEFAULT_MAX_BYTES:
        raise MediaError(f"{name}: {len(data) / 1e6:.0f} MB is over the {DEFAULT_MAX_BYTES / 1e6:.0f} MB limit")
    ext = Path(name.split("?")[0]).suffix.lower()
    if ext and ext not in SUPPORTED_EXTS and not ext.startswith(".jpg"):
        # URLs often carry no extension or a query string; only refuse names that clearly are something else.
        if ext in {".txt", ".pdf", ".csv", ".json", ".zip", ".doc", ".docx", ".html", ".py"}:
            raise MediaError(
                f"{name}: unsupported format {ext}; use an image (jpg, png, webp, gif), "
                "a video (mp4, mov, webm) or audio (wav, mp3, m4a, ogg, flac)"
            )
    if ext in VIDEO_EXTS | AUDIO_EXTS:
        return decode_av(data, name)
    try:
        return decode_image(data, name)
    except MediaError:
        if ext in IMAGE_EXTS | GIF_EXTS:
            raise
    try:
        return decode_av(data, name)
    except MediaError:
        raise MediaError(
            f"{name}: not a supported image, video or audio file; use jpg, png, webp, gif, mp4, mov, webm, "
            "wav, mp3, m4a, ogg or flac"
        ) from None


def _read_path(path: Path) -> bytes:
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not a media file")
    size = path.stat().st_size
    if size > DEFAULT_MAX_BYTES:
        raise MediaError(f"{path}: {size / 1e6:.0f} MB is over the {DEFAULT_MAX_BYTES / 1e6:.0f} MB limit")
    return path.read_bytes()


def _load_location(location: str, base_dir: Path | None) -> Media:
    if is_url(location):
        return decode_bytes(fetch_bytes(location), location)
    path = Path(location).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return decode_bytes(_read_path(path), str(path))


def _merge(parts: list[Media], source: str, errors: list[str]) -> Media:
    images = [img for part in parts for img in part.images]
    audio = next((p.audio for p in parts if p.audio is not None), None)
    kinds = {p.kind for p in parts}
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    duration = next((p.duration for p in parts if p.duration), None)
    return Media(kind=kind, source=source, images=images, audio=audio, duration=duration, errors=errors)


def load_dump_field(text: str, base_dir: Path | None = None) -> Media:
    """Every item of a tweet dump's media field; items whose links are dead are skipped and noted."""
    items = parse_media_field(text)
    if not items:
        raise MediaError("the media field has no Photo, Video or Gif entry with a URL")
    parts: list[Media] = []
    errors: list[str] = []
    for item in items:
        for url in (item.url, *item.fallback_urls):
            try:
                parts.append(_load_location(url, base_dir))
                break
            except MediaError as exc:
                errors.append(str(exc))
    if not parts:
        raise MediaError("; ".join(errors))
    return _merge(parts, text.strip(), errors)


def load_media(
    source: str | Path | bytes | Media,
    *,
    filename: str | None = None,
    base_dir: Path | None = None,
) -> Media:
    """Media from a path, URL, tweet-dump media field, or bytes (then ``filename`` names the format)."""
    if isinstance(source, Media):
        return source
    if isinstance(source, bytes | bytearray):
        return decode_bytes(bytes(source), filename or "upload")
    if isinstance(source, Path):
        return _load_location(str(source), base_dir)
    text = str(source).strip()
    if not text:
        raise MediaError("no media given")
    if looks_like_dump(text):
        return load_dump_field(text, base_dir)
    return _load_location(text, base_dir)
