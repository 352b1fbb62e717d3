"""training.captioner: a small ViT + GPT-2 built from configs, trained on drawn shapes, loaded by core."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from core.devtools.synthetic import make_caption_set
from core.eval.store import ResultsStore
from core.registry import resolve
from core.stages.caption import caption_images, load_captioner
from training.captioner import CaptionerConfig, main, read_caption_table, run, word_tokenizer


@pytest.fixture(scope="module")
def caption_csv(tmp_path_factory):
    return make_caption_set(tmp_path_factory.mktemp("captions"), n=16, seed=0)


def test_word_tokenizer_round_trips_captions():
    tok = word_tokenizer(["a red circle on a white background", "a blue star on a gray background"])
    ids = tok("A red star on a white background")["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == "a red star on a white background"
    assert {tok.bos_token, tok.eos_token, tok.pad_token} == {"<s>", "</s>", "<pad>"}


def test_captioner_trains_resumes_and_loads_in_core(caption_csv, tmp_path):
    out, db = tmp_path / "captioner", tmp_path / "results.sqlite"
    cfg = CaptionerConfig(data=str(caption_csv), output_dir=str(out), image_size=32, patch_size=8, hidden_size=32,
                          encoder_layers=1, decoder_layers=2, heads=2, train_last_decoder_layers=1, batch_size=4,
                          epochs=10, max_steps=8, save_every=4, learning_rate=5e-3, warmup_ratio=0.0,
                          results_db=str(db))
    first = run(cfg)
    assert first["steps"] == 8 and first["train_images"] == 13 and first["eval_images"] == 3
    losses = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2, losses
    # Frozen: the encoder and the first decoder block; trained: the last block, cross-attention, LM head.
    assert 0 < first["parameters"]["trainable"] < first["parameters"]["total"]

    again = run(CaptionerConfig(**{**cfg.__dict__, "max_steps": 12}))
    assert again["resumed_from"] == 8 and again["steps"] == 12
    assert [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()] == list(range(1, 13))

    spec = resolve("caption", str(out), device="cpu")
    assert spec.backend == "vision-encoder-decoder"
    (caption,) = caption_images(load_captioner(spec), [Image.new("RGB", (320, 240), "white")])
    assert isinstance(caption.caption, str)
    runs = ResultsStore(db).runs("caption")
    assert len(runs) == 2 and runs[-1].adapter == str(out)
    assert {"bleu", "cider"} <= runs[-1].metrics.keys() and runs[-1].n == 3


def test_frozen_weights_stay_frozen(caption_csv, tmp_path):
    import torch
    from transformers import VisionEncoderDecoderModel

    out = tmp_path / "cap"
    run(CaptionerConfig(data=str(caption_csv), output_dir=str(out), image_size=32, hidden_size=32, encoder_layers=1,
                        decoder_layers=2, heads=2, train_last_decoder_layers=1, max_steps=2, skip_eval=True))
    start, end = (VisionEncoderDecoderModel.from_pretrained(p) for p in (out / "init", out))
    s, e = start.state_dict(), end.state_dict()
    assert torch.equal(s["encoder.embeddings.patch_embeddings.projection.weight"],
                       e["encoder.embeddings.patch_embeddings.projection.weight"])
    assert torch.equal(s["decoder.transformer.h.0.mlp.c_fc.weight"], e["decoder.transformer.h.0.mlp.c_fc.weight"])
    assert not torch.equal(s["decoder.transformer.h.1.mlp.c_fc.weight"], e["decoder.transformer.h.1.mlp.c_fc.weight"])
    assert not torch.equal(s["decoder.transformer.h.0.crossattention.c_attn.weight"],
                           e["decoder.transformer.h.0.crossattention.c_attn.weight"])


def test_parquet_with_urls_and_a_clear_error(tmp_path, media_server):
    import pandas as pd

    base_url, _ = media_server
    path = tmp_path / "lvis.parquet"
    pd.DataFrame({"url": [f"{base_url}/poster.png"], "caption": ["a  poster with   text"]}).to_parquet(path)
    assert read_caption_table(path) == [{"location": f"{base_url}/poster.png", "caption": "a poster with text"}]
    bad = tmp_path / "bad.csv"
    bad.write_text("image,text\nx.png,y\n")
    assert main(["--data", str(bad), "--output-dir", str(tmp_path / "o")]) == 2
