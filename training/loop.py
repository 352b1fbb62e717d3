"""One small training loop shared by every trainer: accumulation, checkpoints, exact resume.

A plain torch loop rather than HF ``Trainer``: the three trainers train different model
families (causal LM + LoRA, ViT+GPT-2, Whisper + LoRA) and each needs only "forward, loss,
step", plus a checkpoint that holds just the trainable tensors (a few MB for LoRA) so resuming
is cheap. Batches of an epoch come from a seeded shuffle, so a resumed run skips exactly the
batches it already saw and continues the same step counter, learning-rate schedule and RNGs.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "state.json"


@dataclass
class LoopConfig:
    epochs: int = 1
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    max_steps: int = 0  # stop after this many optimizer steps; the LR schedule still spans all epochs
    save_every: int = 50  # optimizer steps between checkpoints (one is also written at the end)
    keep_checkpoints: int = 2
    seed: int = 0
    resume: bool = True


@dataclass
class LoopState:
    """Where training stands; saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of ``epoch`` already consumed
    losses: list[float] = field(default_factory=list)  # mean loss of each optimizer step
    seconds: float = 0.0  # training time summed over runs
    resumed_from: int | None = None

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.step if self.step else float("nan")


def epoch_batches(items: Sequence[Any], batch_size: int, seed: int, epoch: int, shuffle: bool = True) -> list[list]:
    """The batches of one epoch: a shuffle seeded by (seed, epoch), so a resumed run sees the same order."""
    order = list(range(len(items)))
    if shuffle:
        random.Random(seed * 100_003 + epoch).shuffle(order)
    return [[items[i] for i in order[s:s + batch_size]] for s in range(0, len(order), batch_size)]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a folder without state.json was interrupted mid-write)."""
    found = [p for p in folder.glob("step-*") if (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def _rng_state() -> dict:
    return {"python": random.getstate(), "torch": torch.get_rng_state()}


def _save(folder: Path, model, optimizer, scheduler, state: LoopState, keep: int) -> Path:
    target = folder / f"step-{state.step}"
    tmp = folder / f".step-{state.step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(trainable_state(model), tmp / "trainable.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state()},
               tmp / "optimizer.pt")
    (tmp / STATE_FILE).write_text(json.dumps(asdict(state)))  # written last: marks the checkpoint complete
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    for old in checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _restore(path: Path, model, optimizer, scheduler) -> LoopState:
    weights = torch.load(path / "trainable.pt", map_location="cpu")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected:
        raise RuntimeError(f"checkpoint {path} has tensors this model lacks: {unexpected[:3]}…")
    extra = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    random.setstate(extra["rng"]["python"])
    torch.set_rng_state(extra["rng"]["torch"])
    data = json.loads((path / STATE_FILE).read_text())
    data.pop("resumed_from", None)
    return LoopState(**data, resumed_from=data["step"])


def _log(log_file: Path, record: dict) -> None:
    with log_file.open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def train(
    model: torch.nn.Module,
    items: Sequence[Any],
    loss_fn: Callable[[torch.nn.Module, list], torch.Tensor],
    cfg: LoopConfig,
    output_dir: Path,
    desc: str = "train",
) -> LoopState:
    """Train the parameters of ``model`` that require grad on ``items``; checkpoints in ``output_dir/checkpoints``.

    ``loss_fn(model, batch)`` returns the mean loss of one batch (a list of items). Returns the
    final state; ``state.losses`` holds one value per optimizer step of every run so far.
    """
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    ckpt_dir = output_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters: check the LoRA targets / unfrozen layers")
    batches_per_epoch = math.ceil(len(items) / cfg.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
    total_steps = max(1, steps_per_epoch * cfg.epochs)
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    state = LoopState()
    previous = checkpoints(ckpt_dir)
    if cfg.resume and previous:
        state = _restore(previous[-1], model, optimizer, scheduler)
        print(f"resuming from {previous[-1]} (step {state.step})", file=sys.stderr)
    stop_at = min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps
    log_file = output_dir / "train_log.jsonl"
    model.train()
    bar = tqdm(total=stop_at, initial=min(state.step, stop_at), desc=desc, unit="step", file=sys.stderr,
               disable=None, dynamic_ncols=True)
    pending: list[float] = []
    started = time.perf_counter()
    while state.step < stop_at and state.epoch < cfg.epochs:
        batches = epoch_batches(items, cfg.batch_size, cfg.seed, state.epoch)
        while state.batch_in_epoch < len(batches) and state.step < stop_at:
            batch = batches[state.batch_in_epoch]
            # The last group of an epoch may hold fewer than grad_accum batches: scale by its real size.
            group = min(cfg.grad_accum, len(batches) - (state.batch_in_epoch // cfg.grad_accum) * cfg.grad_accum)
            loss = loss_fn(model, batch)
            (loss / group).backward()
            pending.append(float(loss.detach()))
            state.batch_in_epoch += 1
            if len(pending) == group:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.step += 1
                state.losses.append(sum(pending) / len(pending))
                now = time.perf_counter()
                state.seconds += now - started
                started = now
                pending = []
                bar.update(1)
                bar.set_postfix(loss=f"{state.losses[-1]:.3f}", epoch=state.epoch)
                _log(log_file, {"step": state.step, "epoch": state.epoch, "loss": state.losses[-1],
                                "lr": scheduler.get_last_lr()[0], "seconds": round(state.seconds, 2)})
                if cfg.save_every and state.step % cfg.save_every == 0:
                    _save(ckpt_dir, model, optimizer, scheduler, state, cfg.keep_checkpoints)
        if state.batch_in_epoch >= len(batches):
            state.epoch += 1
            state.batch_in_epoch = 0
    bar.close()
    if state.step and not (ckpt_dir / f"step-{state.step}" / STATE_FILE).is_file():
        _save(ckpt_dir, model, optimizer, scheduler, state, cfg.keep_checkpoints)
    model.eval()
    return state
