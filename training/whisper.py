"""LoRA fine-tuning of Whisper on ``audio,text`` pairs, with WER before and after.

The offline Whisper ships only as CTranslate2; ``training.ct2_whisper`` converts it once into a
transformers folder (cached). LoRA goes on the attention projections (``q_proj``, ``v_proj`` by
default) and, optionally, the last N decoder layers are unfrozen whole. Before saving, LoRA is
merged into the weights, so the output is a plain ``WhisperForConditionalGeneration`` folder
plus processor files: core.stages.asr's transformers backend loads it with no peft involved
(``m2t transcribe --model DIR``).

Audio is decoded and resampled to 16 kHz mono through ``core.media.decode``; WER/CER come from
``core.eval.metrics.speech_scores`` on a held-out split, for the base model and for the tuned folder
as core loads it, and both runs are recorded (task "asr").

    python -m training.whisper --data data/generated/asr/asr.csv --output-dir artifacts/whisper-lora
"""

from __future__ import annotations

import gc
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import MediaError, UserError
from core.media.decode import load_media
from core.registry import resolve
from core.stages.asr import ASR, load_asr, transcribe
from core.tables import read_table
from training.config import TrainConfig, field, parse_config, run_trainer, save_config, set_seed
from training.ct2_whisper import whisper_folder
from training.evaluation import SPEECH_METRICS, EvalResult, comparison_table, finish_run, record, score_speech
from training.loop import train

IGNORE = -100


@dataclass(kw_only=True)
class WhisperTrainConfig(TrainConfig):
    data: str = field(help="CSV with columns audio (path, relative to the CSV) and text")
    eval_data: str = field("", help="held-out CSV (default: --eval-fraction of --data)")
    eval_fraction: float = field(0.2, help="share of --data held out when --eval-data is not given")
    model: str = field("whisper-base", help="ASR alias (CTranslate2, converted once) or a transformers Whisper folder")
    output_dir: str = field("artifacts/whisper-lora", help="merged Whisper folder (also checkpoints and logs)")
    r: int = field(8, help="LoRA rank")
    lora_alpha: int = field(16, help="LoRA alpha")
    lora_dropout: float = field(0.05, help="dropout on the LoRA branch")
    target_modules: list[str] = field(help="attention projections to adapt", factory=lambda: ["q_proj", "v_proj"])
    unfreeze_last_decoder_layers: int = field(0, help="also train these last decoder layers in full")
    language: str = field("en", help="language token in the training labels (multilingual checkpoints)")
    learning_rate: float = field(1e-4, help="peak learning rate")
    epochs: int = field(3, help="passes over the training split")
    max_label_tokens: int = field(128, help="label tokens per clip (longer transcripts are cut)")
    warmup_ratio: float = field(0.1, help="share of steps spent warming up")
    save_every: int = field(25, help="optimizer steps between checkpoints")


# --------------------------------------------------------------------------- data


def read_speech_csv(path: Path) -> list[dict]:
    """Rows ``{"audio": absolute path, "text"}``; a clear error for a CSV that is not a speech set."""
    frame = read_table(path, ("audio", "text"), what="a speech set has audio,text")
    base = path.resolve().parent
    return [{"audio": str(base / a) if not Path(a).is_absolute() else a, "text": t.strip()}
            for a, t in zip(frame["audio"], frame["text"], strict=True) if a.strip() and t.strip()]


def load_split(cfg: WhisperTrainConfig) -> tuple[list[dict], list[dict]]:
    rows = read_speech_csv(Path(cfg.data))
    if cfg.eval_data:
        return rows, read_speech_csv(Path(cfg.eval_data))
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    n_eval = max(1, round(len(rows) * cfg.eval_fraction)) if cfg.eval_fraction and len(rows) > 1 else 0
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def audio_of(row: dict):
    media = load_media(Path(row["audio"]))  # any format; resampled to 16 kHz mono by core.media.decode
    if media.audio is None:
        raise MediaError(f"{row['audio']}: no audio track")
    return media.audio


def label_ids(tokenizer, text: str, decoder_start: int, max_tokens: int) -> list[int]:
    """``<|lang|><|transcribe|><|notimestamps|> text <|endoftext|>``: the model adds ``<|startoftranscript|>``."""
    ids = tokenizer(" " + text).input_ids
    if ids and ids[0] == decoder_start:
        ids = ids[1:]
    if len(ids) > max_tokens:  # keep the closing <|endoftext|> so the model still learns to stop
        ids = ids[: max_tokens - 1] + ids[-1:]
    return ids


def encode(rows: list[dict], processor, decoder_start: int, max_tokens: int) -> list[dict]:
    from tqdm import tqdm

    out = []
    for row in tqdm(rows, desc="features", unit="clip", file=sys.stderr, disable=None):
        feats = processor.feature_extractor(audio_of(row), sampling_rate=16_000, return_tensors="pt").input_features[0]
        labels = label_ids(processor.tokenizer, row["text"], decoder_start, max_tokens)
        out.append({"features": feats, "labels": labels})
    return out


def collate(batch: list[dict], device: str) -> dict[str, torch.Tensor]:
    width = max(len(x["labels"]) for x in batch)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for i, x in enumerate(batch):
        labels[i, : len(x["labels"])] = torch.tensor(x["labels"])
    return {"input_features": torch.stack([x["features"] for x in batch]).to(device), "labels": labels.to(device)}


# --------------------------------------------------------------------------- model


def attach_lora(model, cfg: WhisperTrainConfig):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), bias="none")
    peft_model = get_peft_model(model, lora)
    if cfg.unfreeze_last_decoder_layers:
        layers = peft_model.base_model.model.model.decoder.layers
        for layer in layers[-cfg.unfreeze_last_decoder_layers:]:
            for name, param in layer.named_parameters():
                if "lora_" not in name:
                    param.requires_grad = True
    return peft_model


def evaluate_asr(asr: ASR, rows: list[dict], label: str) -> EvalResult:
    """Transcripts through core.stages.asr (what the app runs), scored with WER/CER."""
    from tqdm import tqdm

    start = time.perf_counter()
    predictions = [transcribe(asr, audio_of(r)).text
                   for r in tqdm(rows, desc=f"transcribe ({label})", unit="clip", file=sys.stderr, disable=None)]
    seconds = time.perf_counter() - start
    return score_speech(label, predictions, [r["text"] for r in rows], [r["audio"] for r in rows], seconds)


def run(cfg: WhisperTrainConfig) -> dict:
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    set_seed(cfg.seed)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "training_config.json")
    train_rows, eval_rows = load_split(cfg)
    if not train_rows:
        raise UserError(f"{cfg.data}: no training clips")
    source = whisper_folder(cfg.model)
    processor = WhisperProcessor.from_pretrained(source)
    model = WhisperForConditionalGeneration.from_pretrained(source, dtype=torch.float32).to(cfg.device)
    gen = model.generation_config
    if getattr(gen, "lang_to_id", None):
        processor.tokenizer.set_prefix_tokens(language=cfg.language, task="transcribe", predict_timestamps=False)
    else:  # English-only or custom checkpoints: no language/task tokens in the labels
        processor.tokenizer.set_prefix_tokens(predict_timestamps=False)
    base_spec = resolve("asr", str(source), device=cfg.device)

    before = None
    if eval_rows and not cfg.skip_eval:
        model.eval()
        before = evaluate_asr(ASR(spec=base_spec, model=model, processor=processor, device=cfg.device),
                              eval_rows, "base")
        record(before, task="asr", model=cfg.model, adapter=None, dataset=Path(cfg.eval_data or cfg.data),
               store_path=cfg.results_db)

    examples = encode(train_rows, processor, model.config.decoder_start_token_id, cfg.max_label_tokens)
    set_seed(cfg.seed)
    peft_model = attach_lora(model, cfg)
    loop = cfg.loop_config()
    state = train(peft_model, examples, lambda m, batch: m(**collate(batch, cfg.device)).loss, loop, out,
                  desc="Whisper LoRA")
    merged = peft_model.merge_and_unload()  # a plain Whisper again: core loads it without peft
    merged.save_pretrained(out)
    processor.save_pretrained(out)
    del merged, peft_model, model
    gc.collect()

    after = None
    if eval_rows and not cfg.skip_eval:
        tuned = load_asr(resolve("asr", str(out), device=cfg.device))
        after = evaluate_asr(tuned, eval_rows, "tuned")
        record(after, task="asr", model=cfg.model, adapter=str(out), dataset=Path(cfg.eval_data or cfg.data),
               store_path=cfg.results_db)
    fields = {"output": str(out), "base_model": str(source), "train_clips": len(train_rows),
              "eval_clips": len(eval_rows)}
    card = (
        f"# Whisper fine-tuned from {cfg.model}\n\nLoRA r={cfg.r} alpha={cfg.lora_alpha} on "
        f"{', '.join(cfg.target_modules)}, last {cfg.unfreeze_last_decoder_layers} decoder layers unfrozen, merged "
        f"into the weights. {state.step} steps on {len(train_rows)} clips from `{cfg.data}`.\n\n"
        f"Held-out WER/CER (%), {len(eval_rows)} clips:\n\n{comparison_table(before, after, SPEECH_METRICS)}\n\n"
        f"Use: `m2t transcribe --model {out} FILE`\n")
    summary = finish_run(out, cfg, state, before, after, fields, card)
    return summary


def main(argv: list[str] | None = None) -> int:
    cfg, _ = parse_config(WhisperTrainConfig, argv, __doc__, prog="python -m training.whisper")
    return run_trainer(run, cfg)


if __name__ == "__main__":
    raise SystemExit(main())
