"""Dataclass → argparse, in the style of the peft/transformers example scripts.

Each command declares one config dataclass; its fields become ``--flags`` (underscores as
dashes), its field metadata ``help`` becomes the flag's help, and the dataclass defaults stay
the single source of truth. Options a person typed are remembered, so a preset (e.g. QLoRA)
fills only what was not given explicitly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def field(default: Any = dataclasses.MISSING, *, help: str, factory: Any = None) -> Any:  # noqa: A002
    """A dataclass field with help text (``factory`` for list defaults)."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(kw_only=True)
class TrainConfig:
    """What every trainer shares: the loop, checkpoints, evaluation and seed. Trainers extend it and
    restate only the defaults that differ (as nanoGPT's ``config/`` presets do)."""

    output_dir: str = field("artifacts/model", help="output folder (also holds checkpoints and logs)")
    learning_rate: float = field(2e-4, help="peak learning rate (linear warmup and decay)")
    epochs: int = field(1, help="passes over the training split")
    batch_size: int = field(4, help="examples per forward pass")
    grad_accum: int = field(1, help="forward passes per optimizer step")
    max_steps: int = field(0, help="stop after N optimizer steps (0: all epochs); resume continues the schedule")
    warmup_ratio: float = field(0.05, help="share of steps spent warming up the learning rate")
    save_every: int = field(50, help="optimizer steps between checkpoints")
    resume: bool = field(True, help="continue from the last checkpoint in output-dir/checkpoints")
    skip_eval: bool = field(False, help="train and save only; no before/after scoring")
    results_db: str = field("", help="results store (default: $M2T_RESULTS_DB or ~/.cache/media2tweet/results.sqlite)")
    device: str = field("cpu", help="cpu | cuda")
    seed: int = field(0, help="seed of the split, the initialisation and shuffling")

    def loop_config(self):
        """The training loop's settings (``training.loop.LoopConfig``) taken from this config."""
        from training.loop import LoopConfig

        return LoopConfig(epochs=self.epochs, batch_size=self.batch_size, grad_accum=self.grad_accum,
                          learning_rate=self.learning_rate, warmup_ratio=self.warmup_ratio,
                          max_steps=self.max_steps, save_every=self.save_every, seed=self.seed, resume=self.resume)


def _unwrap_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def build_parser(cls: type, description: str = "", prog: str | None = None) -> argparse.ArgumentParser:
    """A parser whose flags mirror ``cls``'s fields; unset flags stay absent from the namespace."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        hint = _unwrap_optional(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else (f.default if f.default is not dataclasses.MISSING else f.default_factory())
        kwargs: dict[str, Any] = {"help": f.metadata.get("help", ""), "dest": f.name}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is list:
            (item,) = typing.get_args(hint) or (str,)
            kwargs.update(nargs="*", type=item)
        else:
            kwargs["type"] = hint
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = argparse.SUPPRESS
            kwargs["help"] += f" (default: {default!r})" if kwargs["help"] else f"default: {default!r}"
        parser.add_argument(flag, **kwargs)
    return parser


def check_outputs(cfg: Any) -> None:
    """Where a trainer will write, checked before any model loads (a typo must not cost a training run).

    ``output_dir`` must be a folder that exists or can be created; the results store, when the run will
    record scores there, must be a usable SQLite store (not garbage, not locked past the busy timeout).
    """
    from core.eval.store import check_store
    from core.outputs import writable_folder

    for name in ("output_dir", "out_dir", "out"):  # the trainers, instruction_data, ct2_whisper
        if isinstance(getattr(cfg, name, None), str) and getattr(cfg, name):
            writable_folder(getattr(cfg, name), "--" + name.replace("_", "-"))
    if hasattr(cfg, "results_db") and not getattr(cfg, "skip_eval", False):
        check_store(cfg.results_db or None)


def parse_config(
    cls: type[T], argv: list[str] | None = None, description: str = "", prog: str | None = None
) -> tuple[T, set[str]]:
    """The config from the command line, and the names of the options given explicitly.

    Output paths are checked here, while only arguments are known: a bad one exits 2 with one
    ``error:`` line, as argparse does for a bad flag.
    """
    import sys

    from core.errors import UserError

    parser = build_parser(cls, description, prog)
    namespace = parser.parse_args(argv)
    given = vars(namespace)
    cfg = cls(**given)
    try:
        check_outputs(cfg)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return cfg, set(given)


def apply_preset(cfg: T, preset: dict[str, Any], explicit: set[str]) -> T:
    """``preset`` values for every field the person did not set on the command line."""
    return dataclasses.replace(cfg, **{k: v for k, v in preset.items() if k not in explicit})


def save_config(cfg: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(cfg), indent=2, default=str) + "\n")


def set_seed(seed: int) -> None:
    """One fixed seed for Python, NumPy and torch, so two runs of a command agree."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_trainer(run: Callable[[Any], dict], cfg: Any) -> int:
    """The trainers' shared command-line ending: a ``UserError`` is one ``error:`` line and exit 2."""
    import sys

    from core.errors import UserError

    try:
        summary = run(cfg)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0
