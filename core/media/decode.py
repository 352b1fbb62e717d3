"""Turn any media a user has into images and a 16 kHz mono audio track.

Sources: a local path, raw bytes (uploads), an http(s) URL, or a tweet dump's ``media``
field. Photos become one image; GIFs and videos become a few evenly spaced keyframes plus
their audio; audio files become a waveform. Every failure is a ``MediaError`` with a
message a person can act on.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import MediaError, UserError
from core.media.dump_field import looks_like_dump, read_media_field
from core.media.fetch import DEFAULT_MAX_BYTES, fetch_bytes, is_url

SAMPLE_RATE = 16_000
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
GIF_EXTS = {".gif"}
VIDEO_EXTS = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}
AUDIO_EXTS = {".wav", ".mp3", ".m4a", ".ogg", ".flac", ".opus", ".aac"}
SUPPORTED_EXTS = IMAGE_EXTS | GIF_EXTS | VIDEO_EXTS | AUDIO_EXTS
DEFAULT_KEYFRAMES = 3
MAX_IMAGE_SIDE = 1600  # larger photos only slow OCR down; text stays legible at this size

# Budgets for media from strangers (the app is shared publicly; batch files come from anywhere). Each is read
# from its environment variable at every call, so a deployment (or a test) can change it without a restart.
DEFAULT_MAX_PIXELS = 40_000_000  # 40 MP: any phone photo; a 30000x30000 "bomb" would need 2.7 GB as RGB
ANIMATION_BUDGET_FRAMES = 25  # an animation decodes at most this many full-size frames' worth of pixels
DEFAULT_MAX_AUDIO_S = 300.0  # Whisper base at RTFx ~4.6 on 2 CPU cores: 5 min of audio is about a minute's work
DEFAULT_MAX_VIDEO_S = 300.0  # a video's keyframes and its audio track are decoded from the start
MAX_VIDEO_FPS = 240  # frames decoded per second of allowed duration before a timestamp-less stream is cut off


def _env_limit(name: str, default: float) -> float:
    """A positive number from the environment, ``default`` when unset; a typo is a one-line error."""
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name} must be a number, not {raw!r}") from None
    if not value > 0:
        raise UserError(f"{name} must be above 0, got {raw}")
    return value


def max_pixels() -> int:
    """Largest image (or video frame) accepted, in pixels: ``M2T_MAX_PIXELS``, default 40 MP."""
    return int(_env_limit("M2T_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def max_audio_seconds() -> float:
    """Longest audio track accepted (also a video's): ``M2T_MAX_AUDIO_S``, default 300 s."""
    return _env_limit("M2T_MAX_AUDIO_S", DEFAULT_MAX_AUDIO_S)


def max_video_seconds() -> float:
    """Longest video accepted: ``M2T_MAX_VIDEO_S``, default 300 s."""
    return _env_limit("M2T_MAX_VIDEO_S", DEFAULT_MAX_VIDEO_S)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.0f} MP" if pixels >= 10e6 else f"{pixels / 1e6:.1f} MP"


def _check_pixels(size: tuple[int, int], name: str, what: str = "image") -> None:
    """Refuse a picture from its declared size, before a single pixel is decoded."""
    width, height = size
    limit = max_pixels()
    if width * height > limit:
        raise MediaError(
            f"{name}: the {what} is {width}x{height} ({_megapixels(width * height)}), over the "
            f"{_megapixels(limit)} limit (M2T_MAX_PIXELS)"
        )


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


def _animation_keyframes(image: Image.Image, n_frames: int, name: str) -> tuple[list[Image.Image], list[str]]:
    """Evenly spaced keyframes of an animation, decoded one frame at a time.

    ``seek`` decodes the frames in between one by one and keeps only the current one (plus what the
    format needs for disposal), and each pick is shrunk right away, so memory stays at a few frames
    whatever the frame count. Decoding time grows with frames x pixels, so a long animation gives its
    keyframes from the frames that fit in :data:`ANIMATION_BUDGET_FRAMES` full-size frames, noted.
    """
    width, height = image.size
    budget = max(1, ANIMATION_BUDGET_FRAMES * max_pixels() // max(1, width * height))
    notes = []
    usable = min(n_frames, budget)
    if usable < n_frames:
        notes.append(f"{name}: keyframes taken from the first {usable} of {n_frames} frames "
                     f"(an animation decodes at most {ANIMATION_BUDGET_FRAMES} frames' worth of M2T_MAX_PIXELS)")
    picks: list[Image.Image] = []
    for index in _evenly_spaced(usable, DEFAULT_KEYFRAMES):
        try:
            image.seek(index)
        except EOFError:  # the header promised more frames than the file holds
            break
        _check_pixels(image.size, name)  # multi-page TIFFs may change size from page to page
        picks.append(_limit_size(image))
    if not picks:
        raise MediaError(f"{name}: an animation without a readable frame; is the file corrupt?")
    return picks, notes


def _bomb_message(name: str, exc: Exception) -> str:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" ({_megapixels(int(found.group(1)))})" if found else ""
    return f"{name}: the image is too large{size}, over the {_megapixels(max_pixels())} limit (M2T_MAX_PIXELS)"


def decode_image(data: bytes, name: str = "image") -> Media:
    """A still image, or the keyframes of an animated GIF/WebP/PNG; refused from its header when too large.

    PIL reads only the header in ``Image.open``, so the pixel cap costs nothing; PIL's own
    decompression-bomb guard (a warning above ~89 MP, an error above ~179 MP) becomes the same one-line
    error instead of a warning on stderr or an exception that is not an ``OSError``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixels(image.size, name)
            n_frames = getattr(image, "n_frames", 1)
            if n_frames > 1:
                frames, notes = _animation_keyframes(image, n_frames, name)
                return Media(kind="gif", source=name, images=frames, errors=notes)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(_bomb_message(name, exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"{name}: not a readable image ({exc.__class__.__name__}); is the file corrupt?") from None
    return Media(kind="image", source=name, images=[_limit_size(image)])


def _too_long(name: str, seconds: float, limit: float, what: str, env: str, *, while_decoding: bool = False) -> str:
    said = "runs past" if while_decoding else f"is {seconds:.0f} s long, over"
    return f"{name}: the {what} {said} the {limit:.0f} s limit ({env})"


def _decode_audio(container: av.container.InputContainer, name: str, limit_s: float) -> np.ndarray | None:
    """The first audio track as 16 kHz mono float32, stopped with an error once it passes ``limit_s``.

    Counting while decoding catches what a header check cannot: streams with no duration in their
    header, and headers that understate it.
    """
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    limit_samples = int(limit_s * SAMPLE_RATE)
    chunks = []
    total = 0
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
            total += chunks[-1].size
        if total > limit_samples:
            raise MediaError(_too_long(name, 0, limit_s, "audio", "M2T_MAX_AUDIO_S", while_decoding=True))
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        return None
    return np.concatenate(chunks).astype(np.float32)


def _declared_duration(container: av.container.InputContainer) -> float | None:
    """Seconds the container's header claims (None when it does not say); checked before decoding."""
    if container.duration:
        return container.duration / av.time_base
    durations = [float(s.duration * s.time_base) for s in container.streams
                 if s.duration is not None and s.time_base is not None]
    return max(durations) if durations else None


def _decode_keyframes(
    container: av.container.InputContainer, k: int, name: str, limit_s: float
) -> tuple[list[Image.Image], float | None]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    frames: list[Image.Image] = []
    max_frames = int(limit_s * MAX_VIDEO_FPS) + 1
    if duration:
        targets = [duration * (i + 0.5) / k for i in range(k)]
        for count, frame in enumerate(container.decode(stream)):
            if count > max_frames or (frame.time is not None and frame.time > limit_s):
                # The header understated the length (or gives no timestamps): stop, do not decode it all.
                raise MediaError(_too_long(name, 0, limit_s, "video", "M2T_MAX_VIDEO_S", while_decoding=True))
            if frame.time is None:
                continue
            if frame.time >= targets[len(frames)]:
                _check_pixels((frame.width, frame.height), name, "video frame")
                frames.append(_limit_size(frame.to_image()))
                if len(frames) == k:
                    break
    if not frames:  # unknown duration: keep every frame's image cheaply is too costly, take the first k
        container.seek(0)
        for frame in container.decode(stream):
            _check_pixels((frame.width, frame.height), name, "video frame")
            frames.append(_limit_size(frame.to_image()))
            if len(frames) >= k:
                break
    return frames, duration


def decode_av(data: bytes, name: str = "media", keyframes: int = DEFAULT_KEYFRAMES) -> Media:
    """Video (keyframes + audio) or audio-only file, decoded with FFmpeg through PyAV.

    The header's duration and frame size are checked before anything is decoded (``M2T_MAX_VIDEO_S``,
    ``M2T_MAX_AUDIO_S``, ``M2T_MAX_PIXELS``), and the decoders stop at the limits when the header is silent
    or wrong, so a long or huge file costs a second, not a minute of CPU and gigabytes of memory.
    """
    audio_limit, video_limit = max_audio_seconds(), max_video_seconds()
    try:
        with av.open(io.BytesIO(data)) as container:
            has_video = bool(container.streams.video)
            declared = _declared_duration(container)
            if declared is not None and has_video and declared > video_limit:
                raise MediaError(_too_long(name, declared, video_limit, "video", "M2T_MAX_VIDEO_S"))
            if declared is not None and container.streams.audio and declared > audio_limit:
                what = "video's sound" if has_video else "audio"
                raise MediaError(_too_long(name, declared, audio_limit, what, "M2T_MAX_AUDIO_S"))
            if has_video:
                ctx = container.streams.video[0].codec_context
                if ctx.width and ctx.height:
                    _check_pixels((ctx.width, ctx.height), name, "video frame")
            images, duration = _decode_keyframes(container, keyframes, name, video_limit) if has_video else ([], None)
        with av.open(io.BytesIO(data)) as container:
            audio = _decode_audio(container, name, audio_limit)
            if duration is None and container.duration:
                duration = container.duration / av.time_base
    except (av.error.FFmpegError, OSError, ValueError, IndexError, MemoryError) as exc:
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
    """The file's bytes; the OS's refusals (a name too long, a NUL byte, no permission) are one line too."""
    try:
        if not path.exists():
            raise MediaError(f"{path}: no such file")
        if path.is_dir():
            raise MediaError(f"{path}: is a folder, not a media file")
        size = path.stat().st_size
        if size > DEFAULT_MAX_BYTES:
            raise MediaError(f"{path}: {size / 1e6:.0f} MB is over the {DEFAULT_MAX_BYTES / 1e6:.0f} MB limit")
        return path.read_bytes()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        raise MediaError(f"{str(path)[:200]}: cannot read this file ({reason})") from None


# One message whatever the text is, so a visitor cannot probe which server paths exist.
LOCAL_PATHS_REFUSED = ("only uploads and http(s) URLs are accepted here: file paths and other kinds of "
                       "links are not read")


def _load_location(location: str, base_dir: Path | None, allow_local: bool = True) -> Media:
    if is_url(location):
        return decode_bytes(fetch_bytes(location), location)
    if not allow_local:  # before any filesystem call: existence must not leak through timing or errors
        raise MediaError(LOCAL_PATHS_REFUSED)
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


def load_dump_field(text: str, base_dir: Path | None = None, *, allow_local: bool = True) -> Media:
    """Every item of a tweet dump's media field; items whose links are dead are skipped and noted.
    ``allow_local=False`` refuses items that are not http(s) URLs (the app: no server paths)."""
    items = read_media_field(text)
    if not items:
        raise MediaError("the media field has no Photo, Video or Gif entry with a URL")
    parts: list[Media] = []
    errors: list[str] = []
    for item in items:
        for url in (item.url, *item.fallback_urls):
            try:
                parts.append(_load_location(url, base_dir, allow_local))
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
    allow_local: bool = True,
) -> Media:
    """Media from a path, URL, tweet-dump media field, or bytes (then ``filename`` names the format).

    ``allow_local=False`` is for text from untrusted visitors (the app): only bytes and http(s) URLs
    (also inside a dump field) are media; anything else gets the same refusal, existing or not.
    """
    if isinstance(source, Media):
        return source
    if isinstance(source, bytes | bytearray):
        return decode_bytes(bytes(source), filename or "upload")
    if isinstance(source, Path):
        return _load_location(str(source), base_dir, allow_local)
    text = str(source).strip()
    if not text:
        raise MediaError("no media given")
    if looks_like_dump(text):
        return load_dump_field(text, base_dir, allow_local=allow_local)
    return _load_location(text, base_dir, allow_local)
