"""training.ct2_whisper + training.whisper: CTranslate2 → transformers, then LoRA with WER before/after."""

from __future__ import annotations

import json

import pytest

from core.devtools.synthetic import make_asr_set
from core.eval.metrics import sample_wer
from core.eval.store import ResultsStore
from core.media.decode import load_media
from core.model_files import whisper_dir
from core.registry import resolve
from core.stages.asr import load_asr, transcribe
from tests.conftest import SPEECH_TEXT
from training.ct2_whisper import converted_whisper, read_ct2, whisper_state_dict
from training.whisper import WhisperTrainConfig, label_ids, run


@pytest.fixture(scope="module")
def ct2_base():
    return whisper_dir(resolve("asr", "whisper-base"))


def test_ct2_variables_map_one_to_one_onto_transformers_whisper(ct2_base):
    """Every tensor of the transformers model is filled, and nothing is left over (no weights needed)."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    ct2 = read_ct2(ct2_base / "model.bin")
    assert (ct2.spec, ct2.revision, len(ct2.variables)) == ("WhisperSpec", 3, 212)

    class Recording(dict):
        read: set[str] = set()

        def __getitem__(self, key):
            self.read.add(key)
            return super().__getitem__(key)

    ct2.variables = Recording(ct2.variables)
    state = whisper_state_dict(ct2)
    config = WhisperConfig(vocab_size=51865, d_model=512, encoder_layers=6, decoder_layers=6,
                           encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
                           decoder_ffn_dim=2048)
    with torch.device("meta"):
        expected = WhisperForConditionalGeneration(config).state_dict()
    assert set(state) == set(expected)
    assert all(tuple(state[k].shape) == tuple(expected[k].shape) for k in expected)
    # Every array is used; only the scalar flags (num_heads, pre_norm, activation, …) are not weights.
    unused = {k for k in ct2.variables if k not in Recording.read}
    assert all(ct2.variables[k].ndim == 0 for k in unused), unused


@pytest.mark.slow
def test_converted_base_transcribes_like_faster_whisper(asr, speech_path):
    """The converted model, loaded by core's transformers backend, hears the sentence as faster-whisper does: a
    wrong weight mapping writes noise, not one word heard otherwise. fp32 here, int8 there: on "Our" and
    "croissant" (near-even calls) the two may differ, so each may miss those two words, no more."""
    from transformers import WhisperForConditionalGeneration

    folder = converted_whisper(resolve("asr", "whisper-base"))
    _, info = WhisperForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    audio = load_media(speech_path).audio
    converted = load_asr(resolve("asr", str(folder), device="cpu"))
    assert converted.spec.backend == "transformers-whisper"
    ours = transcribe(converted, audio).text
    reference = transcribe(asr, audio).text  # faster-whisper on the same CTranslate2 weights (int8)
    assert sample_wer(ours, SPEECH_TEXT) <= 15.0 and sample_wer(reference, SPEECH_TEXT) <= 15.0, (ours, reference)
    assert sample_wer(ours, reference) <= 15.0, (ours, reference)  # at most two words apart


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, ct2_base):
    from tests.tiny_models import tiny_whisper

    root = tmp_path_factory.mktemp("whisper")
    csv = make_asr_set(root / "asr", n=4, seed=1)
    return csv, tiny_whisper(root / "tiny-whisper", ct2_base / "tokenizer.json")


def test_labels_end_with_end_of_text_and_skip_the_start_token(tiny):
    from transformers import WhisperProcessor

    _, folder = tiny
    processor = WhisperProcessor.from_pretrained(folder)
    processor.tokenizer.set_prefix_tokens(language="en", task="transcribe", predict_timestamps=False)
    tok = processor.tokenizer
    start = tok.convert_tokens_to_ids("<|startoftranscript|>")
    ids = label_ids(tok, "The baker opened the blue door.", start, 64)
    assert ids[0] != start and ids[-1] == tok.eos_token_id
    assert tok.convert_ids_to_tokens(ids[:3]) == ["<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    assert tok.decode(ids, skip_special_tokens=True).strip() == "The baker opened the blue door."
    assert len(label_ids(tok, "word " * 100, start, 16)) == 16


def test_whisper_lora_trains_resumes_and_loads_in_core(tiny, tmp_path):
    csv, folder = tiny
    out, db = tmp_path / "whisper", tmp_path / "results.sqlite"
    cfg = WhisperTrainConfig(data=str(csv), model=str(folder), output_dir=str(out), eval_fraction=0.25,
                             unfreeze_last_decoder_layers=1, learning_rate=3e-2, warmup_ratio=0.0, epochs=10,
                             batch_size=2, max_steps=4, save_every=2, results_db=str(db))
    first = run(cfg)
    assert first["steps"] == 4 and first["train_clips"] == 3 and first["eval_clips"] == 1
    losses = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2, losses
    runs = ResultsStore(db).runs("asr")
    assert [r.adapter for r in runs] == [None, str(out)] and {"wer", "cer"} <= runs[0].metrics.keys()

    again = run(WhisperTrainConfig(**{**cfg.__dict__, "max_steps": 6, "skip_eval": True}))
    assert again["resumed_from"] == 4 and again["steps"] == 6

    # LoRA is merged: a plain Whisper folder that core's transformers backend loads without peft (the "tuned"
    # run above already transcribed through exactly this load_asr path).
    assert not (out / "adapter_config.json").exists()
    asr = load_asr(resolve("asr", str(out), device="cpu"))
    assert type(asr.model).__name__ == "WhisperForConditionalGeneration"
    assert not any("lora" in name for name in asr.model.state_dict())
    assert asr.processor.feature_extractor.feature_size == 80
