"""Media in: paths, uploads, http(s) URLs and tweet-dump ``media`` fields → images + 16 kHz audio."""

from core.media.decode import (
    AUDIO_EXTS,
    GIF_EXTS,
    IMAGE_EXTS,
    SAMPLE_RATE,
    SUPPORTED_EXTS,
    VIDEO_EXTS,
    Media,
    decode_bytes,
    load_media,
)

__all__ = ["AUDIO_EXTS", "GIF_EXTS", "IMAGE_EXTS", "SAMPLE_RATE", "SUPPORTED_EXTS", "VIDEO_EXTS", "Media",
           "decode_bytes", "load_media"]
