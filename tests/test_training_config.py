"""training.config and training.loop: flags from dataclasses, presets, seeded batches, checkpoint resume."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass

import pytest
import torch

from training.config import apply_preset, field, parse_config
from training.loop import LoopConfig, checkpoints, epoch_batches, train


@dataclass
class Demo:
    data: str = field(help="required input")
    rate: float = field(0.1, help="a float")
    flag: bool = field(True, help="a switch")
    names: list[str] = field(help="a list", factory=lambda: ["a", "b"])


def test_flags_mirror_the_dataclass_and_remember_what_was_typed():
    cfg, explicit = parse_config(Demo, ["--data", "x.csv", "--no-flag", "--names", "q", "v", "o"])
    assert cfg == Demo(data="x.csv", rate=0.1, flag=False, names=["q", "v", "o"])
    assert explicit == {"data", "flag", "names"}
    assert apply_preset(cfg, {"rate": 0.5, "flag": True}, explicit) == Demo("x.csv", 0.5, False, ["q", "v", "o"])
    with pytest.raises(SystemExit):
        parse_config(Demo, [])  # --data is required


@pytest.mark.parametrize("command", ["instruction_data", "lora_llm", "captioner", "whisper", "ct2_whisper"])
def test_every_command_has_help(command, capsys):
    module = importlib.import_module(f"training.{command}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m training.{command}") and "--" in out


def test_epoch_order_is_seeded_per_epoch():
    items = list(range(10))
    assert epoch_batches(items, 4, seed=1, epoch=0) == epoch_batches(items, 4, seed=1, epoch=0)
    assert epoch_batches(items, 4, seed=1, epoch=0) != epoch_batches(items, 4, seed=1, epoch=1)
    assert sorted(sum(epoch_batches(items, 4, seed=1, epoch=2), [])) == items
    assert [len(b) for b in epoch_batches(items, 4, seed=1, epoch=0)] == [4, 4, 2]


def _regression(seed: int = 0):
    torch.manual_seed(seed)
    x = torch.randn(24, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    model = torch.nn.Linear(3, 1)
    items = list(zip(x, y, strict=True))

    def loss_fn(m, batch):
        xs, ys = torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])
        return torch.nn.functional.mse_loss(m(xs).squeeze(-1), ys)

    return model, items, loss_fn


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    """Stopping at step 5 and resuming gives bit-identical weights to one uninterrupted run."""
    cfg = LoopConfig(epochs=3, batch_size=4, grad_accum=2, learning_rate=0.05, save_every=2, warmup_ratio=0.1)
    model, items, loss_fn = _regression()
    whole = train(model, items, loss_fn, cfg, tmp_path / "whole")
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    assert whole.step == 9 and len(whole.losses) == 9

    model, items, loss_fn = _regression()
    part = train(model, items, loss_fn, LoopConfig(**{**cfg.__dict__, "max_steps": 5}), tmp_path / "split")
    assert part.step == 5
    model, items, loss_fn = _regression()  # a fresh process: weights come back from the checkpoint
    rest = train(model, items, loss_fn, cfg, tmp_path / "split")
    assert rest.resumed_from == 5 and rest.step == 9 and rest.losses == whole.losses
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference[key]), key
    assert [int(p.name.split("-")[1]) for p in checkpoints(tmp_path / "split" / "checkpoints")] == [8, 9]
    log = [json.loads(line)["step"] for line in (tmp_path / "split" / "train_log.jsonl").read_text().splitlines()]
    assert log == list(range(1, 10))
