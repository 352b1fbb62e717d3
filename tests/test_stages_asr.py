import numpy as np
import pytest

from core.errors import MediaError
from core.eval.metrics import sample_wer
from core.media.decode import load_media
from core.model_files import whisper_dir
from core.registry import resolve
from core.stages.asr import Segment, Transcript, load_asr, to_srt, to_vtt, transcribe
from tests.conftest import SPEECH_TEXT

# The words espeak says clearly: Whisper gives each 0.94-1.0 (base and tiny.en alike). "Our", "Come", "free" and
# "croissant" it hears as near-even calls (0.15-0.78), which a CPU's int8 rounding may turn either way, so the
# word error rate bounds leave room for them (15 words: one is 6.7 points).
CLEAR_WORDS = ("coffee", "shop", "opens", "monday", "morning")


def assert_heard(text: str, max_wer: float) -> None:
    words = text.lower().replace(".", " ").split()
    assert all(w in words for w in CLEAR_WORDS), text
    assert sample_wer(text, SPEECH_TEXT) <= max_wer, text


@pytest.mark.slow
def test_whisper_base_transcribes_espeak_speech(asr, speech_path):
    transcript = transcribe(asr, load_media(speech_path).audio)
    assert_heard(transcript.text, 30.0)  # measured 0 on an AMD EPYC; four near-even words at most
    assert transcript.segments and transcript.segments[0].start >= 0
    assert all(s.end >= s.start for s in transcript.segments)
    assert transcript.language == "en"


@pytest.mark.slow
def test_tiny_en_transcribes_the_video_soundtrack(video_path):
    tiny = load_asr(resolve("asr", "whisper-tiny.en", device="cpu"))
    transcript = transcribe(tiny, load_media(video_path).audio)
    assert_heard(transcript.text, 40.0)  # tiny.en on AAC-compressed audio: measured 13.3 ("a free quass off")


def test_empty_or_silent_audio_is_a_clear_error(asr):
    with pytest.raises(MediaError, match="empty"):
        transcribe(asr, np.zeros(100, dtype=np.float32))
    with pytest.raises(MediaError, match="empty"):
        transcribe(asr, None)


def test_srt_and_vtt_timestamps():
    t = Transcript(text="a b", segments=[Segment(0.0, 1.5, "a"), Segment(61.25, 3725.5, "b")])
    assert to_srt(t).splitlines()[:3] == ["1", "00:00:00,000 --> 00:00:01,500", "a"]
    assert "00:01:01,250 --> 01:02:05,500" in to_srt(t)
    assert to_vtt(t).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\na\n")


@pytest.mark.slow
def test_transformers_whisper_backend_loads_a_local_folder(tmp_path, speech_path):
    from tests.tiny_models import tiny_whisper

    tokenizer_file = whisper_dir(resolve("asr", "whisper-base")) / "tokenizer.json"
    folder = tiny_whisper(tmp_path / "whisper-tiny-random", tokenizer_file)
    spec = resolve("asr", str(folder), device="cpu")
    assert spec.backend == "transformers-whisper"
    model = load_asr(spec)
    model.model.generation_config.max_length = 8
    transcript = transcribe(model, load_media(speech_path).audio)
    assert isinstance(transcript.text, str)
    assert transcript.duration == pytest.approx(load_media(speech_path).audio_seconds)
