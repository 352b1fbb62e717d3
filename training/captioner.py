"""Fine-tune a ViT + GPT-2 captioner (VisionEncoderDecoderModel) on ``path|url,caption`` data.

Start from a checkpoint folder, or, with no download possible, build a small model from
configs: ViT and GPT-2 configs sized by the flags, and a word-level tokenizer learned from the
training captions with the ``tokenizers`` library, wrapped as ``PreTrainedTokenizerFast``.
Only the last N decoder blocks, every cross-attention block and the LM head (tied to the
token embedding in GPT-2) train; the rest stays frozen, which is what keeps a fine-tune of a
pretrained captioner cheap and stable.

The output folder holds model, tokenizer and image processor together, which is exactly what
core.stages.caption's "vision-encoder-decoder" backend loads (``m2t caption --model DIR``).
Captions of a held-out split are scored with BLEU and CIDEr-D from ``core.eval.metrics`` through
that same loader, and the run is recorded (task "caption").

    python -m training.captioner --data data/generated/caption/captions.csv --output-dir artifacts/captioner
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
from core.stages.caption import caption_images, load_captioner
from core.tables import read_table
from training.config import TrainConfig, field, parse_config, run_trainer, save_config, set_seed
from training.evaluation import TEXT_METRICS, EvalResult, comparison_table, finish_run, record, score_text
from training.loop import train

IGNORE = -100
SPECIAL = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
INIT_DIR = "init"  # the starting model, saved once so a resumed run has identical frozen weights


@dataclass(kw_only=True)
class CaptionerConfig(TrainConfig):
    data: str = field(help="CSV or parquet with a caption column and a path (relative to the file) or url column")
    eval_data: str = field("", help="held-out CSV/parquet (default: --eval-fraction of --data)")
    eval_fraction: float = field(0.2, help="share of images held out when --eval-data is not given")
    init: str = field("", help="VisionEncoderDecoder folder to start from (default: build a small one from configs)")
    output_dir: str = field("artifacts/captioner", help="folder core.stages.caption loads (also checkpoints, logs)")
    image_size: int = field(64, help="new model: input side in pixels")
    patch_size: int = field(8, help="new model: ViT patch side")
    hidden_size: int = field(128, help="new model: width of encoder and decoder")
    encoder_layers: int = field(2, help="new model: ViT blocks")
    decoder_layers: int = field(2, help="new model: GPT-2 blocks")
    heads: int = field(4, help="new model: attention heads")
    train_last_decoder_layers: int = field(2, help="decoder blocks to train (cross-attention and LM head always train)")
    train_encoder: bool = field(False, help="also train the ViT encoder")
    max_length: int = field(32, help="caption tokens (longer captions are cut, the end token kept)")
    learning_rate: float = field(1e-3, help="peak learning rate")
    epochs: int = field(10, help="passes over the training images")
    batch_size: int = field(8, help="images per forward pass")


# --------------------------------------------------------------------------- data


def read_caption_table(path: Path) -> list[dict]:
    """Rows ``{"location", "caption"}``; location is an absolute path or a URL."""
    frame = read_table(path)
    source = "path" if "path" in frame.columns else "url" if "url" in frame.columns else None
    if source is None or "caption" not in frame.columns:
        raise UserError(f"{path}: needs a caption column and a path or url column; found {', '.join(frame.columns)}")
    base = path.resolve().parent
    rows = []
    for loc, caption in zip(frame[source].astype(str), frame["caption"].astype(str), strict=True):
        if loc.strip() and caption.strip():
            absolute = loc if loc.startswith(("http://", "https://")) or Path(loc).is_absolute() else str(base / loc)
            rows.append({"location": absolute, "caption": " ".join(caption.split())})
    return rows


def load_images(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Rows with their first image attached; unreadable images are dropped and reported, not fatal."""
    kept, errors = [], []
    for row in rows:
        try:
            media = load_media(row["location"])
        except MediaError as exc:
            errors.append(str(exc))
            continue
        if media.images:
            kept.append({**row, "image": media.images[0]})
    return kept, errors


def split_rows(rows: list[dict], cfg: CaptionerConfig) -> tuple[list[dict], list[dict]]:
    """Held-out images (all captions of an image stay on one side)."""
    if cfg.eval_data:
        return rows, read_caption_table(Path(cfg.eval_data))
    images = sorted({r["location"] for r in rows})
    random.Random(cfg.seed).shuffle(images)
    n_eval = max(1, round(len(images) * cfg.eval_fraction)) if cfg.eval_fraction and len(images) > 1 else 0
    held = set(images[:n_eval])
    return [r for r in rows if r["location"] not in held], [r for r in rows if r["location"] in held]


# --------------------------------------------------------------------------- model


def word_tokenizer(captions: list[str]):
    """A lowercase word-level tokenizer over the training captions: tiny vocabulary, exact round trip."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=SPECIAL["unk_token"]))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIAL.values()), min_frequency=1)
    tok.train_from_iterator(sorted(captions), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)


def build_model(cfg: CaptionerConfig, captions: list[str], folder: Path) -> Path:
    """A small ViT + GPT-2 captioner from configs, saved with its tokenizer and image processor."""
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    tokenizer = word_tokenizer(captions)
    encoder = ViTConfig(image_size=cfg.image_size, patch_size=cfg.patch_size, hidden_size=cfg.hidden_size,
                        num_hidden_layers=cfg.encoder_layers, num_attention_heads=cfg.heads,
                        intermediate_size=4 * cfg.hidden_size)
    decoder = GPT2Config(vocab_size=len(tokenizer), n_embd=cfg.hidden_size, n_layer=cfg.decoder_layers,
                         n_head=cfg.heads, n_positions=max(64, cfg.max_length + 2),
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(cfg.seed)
    model = VisionEncoderDecoderModel(config=config)
    gen = model.generation_config
    gen.decoder_start_token_id, gen.bos_token_id = tokenizer.bos_token_id, tokenizer.bos_token_id
    gen.pad_token_id, gen.eos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    ViTImageProcessor(size={"height": cfg.image_size, "width": cfg.image_size}).save_pretrained(folder)
    return folder


def freeze(model, cfg: CaptionerConfig) -> dict[str, int]:
    """Train the last N decoder blocks, all cross-attention, the LM head and final norm; freeze the rest."""
    for p in model.parameters():
        p.requires_grad = False
    decoder = model.decoder
    blocks = decoder.transformer.h if hasattr(decoder, "transformer") else None
    if blocks is None:
        raise UserError("only GPT-2-style decoders (decoder.transformer.h) are supported for partial training")
    n = len(blocks) if cfg.train_last_decoder_layers < 0 else min(cfg.train_last_decoder_layers, len(blocks))
    for block in list(blocks)[len(blocks) - n:]:
        for p in block.parameters():
            p.requires_grad = True
    for block in blocks:
        for name in ("crossattention", "ln_cross_attn"):
            if hasattr(block, name):
                for p in getattr(block, name).parameters():
                    p.requires_grad = True
    for p in [*decoder.lm_head.parameters(), *decoder.transformer.ln_f.parameters()]:
        p.requires_grad = True
    if cfg.train_encoder:
        for p in model.encoder.parameters():
            p.requires_grad = True
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": sum(p.numel() for p in model.parameters()), "decoder_blocks": n}


def encode(rows: list[dict], processor, tokenizer, max_length: int) -> list[dict]:
    pixels = processor(images=[r["image"].convert("RGB") for r in rows], return_tensors="pt")["pixel_values"]
    out = []
    for row, pix in zip(rows, pixels, strict=True):
        ids = tokenizer(row["caption"], add_special_tokens=False)["input_ids"][: max_length - 1]
        out.append({"pixel_values": pix, "labels": ids + [tokenizer.eos_token_id]})
    return out


def collate(batch: list[dict], device: str) -> dict[str, torch.Tensor]:
    width = max(len(x["labels"]) for x in batch)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for i, x in enumerate(batch):
        labels[i, : len(x["labels"])] = torch.tensor(x["labels"])
    return {"pixel_values": torch.stack([x["pixel_values"] for x in batch]).to(device), "labels": labels.to(device)}


def evaluate_folder(folder: Path, rows: list[dict], label: str, device: str) -> EvalResult:
    """Captions through core.stages.caption (what the app runs); references grouped per image."""
    cap = load_captioner(resolve("caption", str(folder), device=device))
    groups: dict[str, dict] = {}
    for r in rows:
        groups.setdefault(r["location"], {"image": r["image"], "refs": []})["refs"].append(r["caption"])
    locations = list(groups)
    start = time.perf_counter()
    predictions = []
    for i in range(0, len(locations), 16):
        chunk = locations[i:i + 16]
        predictions += [c.caption for c in caption_images(cap, [groups[loc]["image"] for loc in chunk])]
    seconds = time.perf_counter() - start
    refs = [groups[loc]["refs"] for loc in locations]
    result = score_text(label, predictions, refs, locations, seconds)
    result.references = [" | ".join(r) for r in refs]
    return result


def run(cfg: CaptionerConfig) -> dict:
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    set_seed(cfg.seed)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "training_config.json")
    train_rows, eval_rows = split_rows(read_caption_table(Path(cfg.data)), cfg)
    train_rows, train_errors = load_images(train_rows)
    eval_rows, eval_errors = load_images(eval_rows)
    for error in train_errors + eval_errors:
        print(f"skipped: {error}", file=sys.stderr)
    if not train_rows:
        raise UserError(f"{cfg.data}: no readable training images")

    init = out / INIT_DIR
    if not (init / "config.json").exists():
        if cfg.init:
            source = Path(cfg.init)
            VisionEncoderDecoderModel.from_pretrained(source).save_pretrained(init)
            AutoTokenizer.from_pretrained(source).save_pretrained(init)
            AutoImageProcessor.from_pretrained(source).save_pretrained(init)
        else:
            build_model(cfg, [r["caption"] for r in train_rows], init)
    before = None
    if cfg.init and eval_rows and not cfg.skip_eval:
        before = evaluate_folder(init, eval_rows, "base", cfg.device)
        record(before, task="caption", model=cfg.init, adapter=None, dataset=Path(cfg.eval_data or cfg.data),
               store_path=cfg.results_db)

    model = VisionEncoderDecoderModel.from_pretrained(init).to(cfg.device)
    tokenizer = AutoTokenizer.from_pretrained(init)
    processor = AutoImageProcessor.from_pretrained(init)
    sizes = freeze(model, cfg)
    print(f"training {sizes['trainable']:,} of {sizes['total']:,} parameters", file=sys.stderr)
    examples = encode(train_rows, processor, tokenizer, cfg.max_length)
    loop = cfg.loop_config()
    state = train(model, examples, lambda m, batch: m(**collate(batch, cfg.device)).loss, loop, out,
                  desc="captioner")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    processor.save_pretrained(out)
    del model
    gc.collect()

    after = None
    if eval_rows and not cfg.skip_eval:
        after = evaluate_folder(out, eval_rows, "tuned", cfg.device)
        record(after, task="caption", model=cfg.init or "vit-gpt2-small (from configs)", adapter=str(out),
               dataset=Path(cfg.eval_data or cfg.data), store_path=cfg.results_db)
    fields = {
        "output": str(out),
        "parameters": sizes,
        "train_images": len({r["location"] for r in train_rows}),
        "eval_images": len({r["location"] for r in eval_rows}),
        "skipped_images": len(train_errors) + len(eval_errors),
        "examples": list(zip(after.predictions[:5], after.references[:5], strict=True)) if after else [],
    }
    card = (
        f"# ViT + GPT-2 captioner\n\nStarted from `{cfg.init or 'small configs (random init)'}`; trained "
        f"{sizes['trainable']:,} of {sizes['total']:,} parameters (last {sizes['decoder_blocks']} decoder blocks, "
        f"cross-attention, LM head) for {state.step} steps on {fields['train_images']} images from `{cfg.data}`.\n\n"
        f"Held-out captions ({fields['eval_images']} images):\n\n{comparison_table(before, after, TEXT_METRICS)}\n\n"
        f"Use: `m2t caption --model {out} IMAGE`\n")
    summary = finish_run(out, cfg, state, before, after, fields, card)
    return summary


def main(argv: list[str] | None = None) -> int:
    cfg, _ = parse_config(CaptionerConfig, argv, __doc__, prog="python -m training.captioner")
    return run_trainer(run, cfg)


if __name__ == "__main__":
    raise SystemExit(main())
