"""Speech to text with timed segments.

Offline: faster-whisper (CTranslate2, int8 on CPU) with the packaged Whisper base or tiny.en.
Hub or fine-tuned: a transformers Whisper checkpoint (``WhisperForConditionalGeneration``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from core.devices import pick_device, pick_dtype
from core.errors import MediaError, ModelUnavailableError, first_line
from core.model_files import whisper_dir
from core.registry import ModelSpec

SAMPLE_RATE = 16_000
MIN_SECONDS = 0.1


@dataclass
class Segment:
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    text: str
    segments: list[Segment] = field(default_factory=list)
    language: str | None = None
    duration: float = 0.0

    def to_dict(self) -> dict:
        return {"text": self.text, "segments": [asdict(s) for s in self.segments], "language": self.language}


@dataclass
class ASR:
    spec: ModelSpec
    model: object
    processor: object | None = None
    device: str = "cpu"


def load_asr(spec: ModelSpec) -> ASR:
    device = pick_device(spec.device)
    if spec.backend == "faster-whisper":
        from faster_whisper import WhisperModel

        compute = "int8" if device == "cpu" else "float16"
        folder = whisper_dir(spec)
        try:
            model = WhisperModel(str(folder), device=device, compute_type=compute)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailableError(f"cannot load the Whisper model in {folder}: {exc}") from None
        return ASR(spec=spec, model=model, device=device)
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    try:
        processor = WhisperProcessor.from_pretrained(spec.model)
        model = WhisperForConditionalGeneration.from_pretrained(spec.model, dtype=pick_dtype(device, spec.dtype))
    except OSError as exc:
        raise ModelUnavailableError(
            f"ASR model {spec.model!r} cannot be loaded: {first_line(exc)}. Offline, use whisper-base "
            "or whisper-tiny.en."
        ) from None
    model.to(device).eval()
    return ASR(spec=spec, model=model, processor=processor, device=device)


def _check_audio(audio: np.ndarray | None) -> np.ndarray:
    if audio is None or audio.size < MIN_SECONDS * SAMPLE_RATE:
        raise MediaError("the audio is empty or shorter than 0.1 s; nothing to transcribe")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _faster_whisper(asr: ASR, audio: np.ndarray, language: str | None) -> Transcript:
    english_only = asr.spec.model.endswith(".en")
    segments, info = asr.model.transcribe(
        audio, beam_size=5, language="en" if english_only else language, condition_on_previous_text=False
    )
    segs = [Segment(start=round(s.start, 2), end=round(s.end, 2), text=s.text.strip()) for s in segments]
    text = " ".join(s.text for s in segs if s.text)
    return Transcript(text=text, segments=segs, language=info.language, duration=len(audio) / SAMPLE_RATE)


def _transformers_whisper(asr: ASR, audio: np.ndarray, language: str | None) -> Transcript:
    import torch

    chunk = 30 * SAMPLE_RATE  # Whisper sees 30 s windows; longer audio is cut into consecutive windows
    segs: list[Segment] = []
    dtype = next(asr.model.parameters()).dtype
    for start in range(0, len(audio), chunk):
        piece = audio[start:start + chunk]
        feats = asr.processor(piece, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        gen = asr.model.generation_config
        kwargs = {}
        if getattr(gen, "task_to_id", None):  # multilingual checkpoints; English-only and custom ones lack it
            kwargs["task"] = "transcribe"
        if language and getattr(gen, "lang_to_id", None):
            kwargs["language"] = language
        with torch.inference_mode():
            ids = asr.model.generate(feats.to(asr.device, dtype), max_new_tokens=200, **kwargs)
        text = asr.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()
        if text:
            segs.append(Segment(start=start / SAMPLE_RATE, end=(start + len(piece)) / SAMPLE_RATE, text=text))
    return Transcript(text=" ".join(s.text for s in segs), segments=segs, language=language,
                      duration=len(audio) / SAMPLE_RATE)


def transcribe(asr: ASR, audio: np.ndarray | None, language: str | None = None) -> Transcript:
    audio = _check_audio(audio)
    if asr.spec.backend == "faster-whisper":
        return _faster_whisper(asr, audio, language)
    return _transformers_whisper(asr, audio, language)


def _timestamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{i}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text}\n"
        for i, s in enumerate(transcript.segments, 1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    cues = [f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text}\n" for s in transcript.segments]
    return "WEBVTT\n\n" + "\n".join(cues)
