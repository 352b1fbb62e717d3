"""``m2t …`` / ``python -m core …``: one dispatch table for every command.

Each entry names the module that owns the command; the module provides ``configure_<name>(parser)``
and ``run_<name>(args) -> int``. Modules import their heavy libraries inside ``run_*``, so building
the parser (and ``--help``) stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str
    help: str
    aliases: tuple[str, ...] = ()
    common: bool = True  # takes --profile/--device/--json


COMMANDS: dict[str, Command] = {
    "predict": Command("core.commands", "predict a tweet for media + metadata"),
    "batch": Command("core.commands", "predict tweets for every row of a tweet-dump CSV"),
    "likes": Command("core.likes_command", "predict likes for every row of a tweet dump, learned from a history dump"),
    "caption": Command("core.commands", "caption images", aliases=("captioning",)),
    "ocr": Command("core.commands", "read text in images (reading order)"),
    "asr": Command("core.commands", "transcribe audio or video", aliases=("transcribe",)),
    "evaluate": Command("core.eval.command", "score a model on a labelled set and record the run"),
    "serve": Command("core.serve.server", "run the app locally, optionally with a public ngrok link",
                     common=False),
    "bench": Command("core.devtools.bench", "benchmark load times, stage latency, batching, ASR RTFx"),
    "synth": Command("core.devtools.synthetic", "make a labelled set here: ocr, asr, caption or tweets"),
    "models": Command("core.commands", "show the model registry"),
    "prepare": Command("core.commands", "assemble and convert the offline models once"),
}


def _common_flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", help="model profile: offline (default) or hub")
    common.add_argument("--device", help="cpu, cuda or auto (default)")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("--allow-private-urls", action="store_true",
                        help="also fetch media URLs on loopback/private/link-local addresses (local use; "
                             "same as M2T_ALLOW_PRIVATE_URLS=1)")
    return common


def build_parser(prog: str = "m2t") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Media + metadata → tweet.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_flags()
    for name, command in COMMANDS.items():
        module = importlib.import_module(command.module)
        p = sub.add_parser(name, parents=[common] if command.common else [], help=command.help,
                           aliases=list(command.aliases), description=command.help)
        getattr(module, f"configure_{name}")(p)
        p.set_defaults(run=getattr(module, f"run_{name}"), command=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.console import quiet_libraries, run_guarded

    args = build_parser().parse_args(argv)
    if getattr(args, "allow_private_urls", False):
        import os

        from core.media.fetch import ALLOW_PRIVATE_ENV

        os.environ[ALLOW_PRIVATE_ENV] = "1"  # read at every fetch, also by code that never sees args
    if COMMANDS[args.command].common:  # serve only starts Streamlit: importing transformers would slow it
        from core.registry import current_profile

        def run() -> int:
            quiet_libraries(offline=current_profile(args.profile) == "offline")
            return args.run(args)

        return run_guarded(run)
    return run_guarded(lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())
