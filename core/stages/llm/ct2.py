"""The CTranslate2 engine for the tweet LLM: int8 weights, a cached few-shot prefix, stop strings as callbacks.

Why: transformers runs the offline LLMs in fp32 on the CPU (~8 tokens/s for Gemma-3-270m one at a
time). CTranslate2 runs the same weights in int8 and caches the decoder state of the few-shot prefix
(``static_prompt``), which is ~85 % of every prompt, so each tweet only prefills its own fields and
stops at the first stop string instead of running to the token limit.

Semantics kept from the transformers path (``core.stages.llm``): the same prompts and token ids
(``<bos>`` for few-shot prompts, none added for chat templates), the same stop-string rule (a stop
string found past the first character of the stripped new text), ``no_repeat_ngram_size`` and
``repetition_penalty`` over the generated text only, sampling for candidates, ``clean_tweet`` after.
CTranslate2 forwards a batch's prompts at once only up to its shortest prompt; the rest of a longer
row goes through the decode loop, where the n-gram ban would see it. Rows are therefore sorted by
length and a call holds rows at most ``MAX_SUFFIX_SPREAD`` tokens apart, so that part is at most the
end of the last field line. Greedy text is not bit-identical to fp32 transformers (int8 weights).
``cfg.seed`` seeds CTranslate2's sampler, whose generator lives in its worker thread: sampled
candidates repeat across processes started alike, not across calls in one process.

Conversion: the safetensors copy in the cache (``core.model_files.convert_gguf``) or a hub id / local
folder → ``cache_dir()/ct2/<name>-<quantization>`` once, atomically (temp folder + rename), with the
tokenizer files copied so the folder is self-contained. A LoRA adapter is merged into its base, then
converted into ``<name>-<sha256(adapter)[:12]>-<quantization>``. A cached folder that fails to load
(truncated ``model.bin``, missing ``config.json``) is deleted and converted again, once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ModelUnavailableError, UserError, first_line
from core.model_files import convert_gguf
from core.registry import ModelSpec, cache_dir
from core.stages.llm import LLM, GenerationConfig
from core.stages.llm.tokenizer import load_tokenizer

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
    "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
)
END_TOKENS = ("<eos>", "<end_of_turn>", "<|im_end|>", "<|endoftext|>", "</s>")
# The few-shot prompt's block separator (core.stages.prompt joins the example blocks with it): what
# precedes its last occurrence is the same for every post, whatever the post's own block holds.
BLOCK_SEPARATOR = "\n\n###\n\n"
MIN_STATIC_TOKENS = 32  # a shorter shared prefix saves less than a cache entry costs
MAX_STATIC_PREFIXES = 8  # CTranslate2 never evicts a cached prefix: a process keeps at most this many
MAX_SUFFIX_SPREAD = 8  # tokens by which rows of one call may differ in length (see the module docstring)
TOP_K = 50  # transformers' default top-k when sampling; the same here so candidates vary alike
COMPLETE = ".complete"


def compute_type(device: str) -> str:
    """int8 weights and int8 compute on CPU; int8 weights with fp16 compute on a GPU."""
    return "int8_float16" if device.startswith("cuda") else "int8"


def quantization(device: str) -> str:
    return compute_type(device)


def _safe_name(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip("/")).strip("_")[-80:] or "model"


def adapter_hash(adapter: str | Path) -> str:
    """sha256 of a LoRA adapter's config and weights: the merged model's cache key (a retrained adapter
    in the same folder gets a new conversion, the same adapter copied elsewhere reuses the old one)."""
    folder = Path(adapter)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith("adapter_"))
    if not (folder / "adapter_config.json").is_file():
        raise UserError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _source_key(spec: ModelSpec) -> str:
    """Cache name of a model: an alias's own name; a local folder or hub id by name + a hash of its path."""
    if spec.is_offline_alias:
        return spec.model
    where = str(Path(spec.model).resolve()) if Path(spec.model).exists() else spec.model
    return f"{_safe_name(Path(spec.model).name or spec.model)}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


def converted_dir(spec: ModelSpec, device: str = "cpu") -> Path:
    """``cache_dir()/ct2/<alias>-int8``, or ``<alias>-<adapter sha256[:12]>-int8`` with an adapter."""
    name = _source_key(spec)
    if spec.adapter:
        name += f"-{adapter_hash(spec.adapter)[:12]}"
    return cache_dir() / "ct2" / f"{name}-{quantization(device)}"


def _source_dir(spec: ModelSpec) -> str:
    """The transformers weights to convert: the alias's safetensors copy (made once from GGUF) or the id/folder."""
    if spec.is_offline_alias and spec.backend == "gguf":
        return str(convert_gguf(spec))
    return spec.model


def is_complete(folder: Path) -> bool:
    """A finished conversion: marker written last, every file present, model.bin of the recorded size."""
    marker = folder / COMPLETE
    if not marker.is_file() or not (folder / "config.json").is_file() or not (folder / "model.bin").is_file():
        return False
    try:
        recorded = json.loads(marker.read_text()).get("model_bin_bytes")
    except (OSError, ValueError):
        return False
    return recorded == (folder / "model.bin").stat().st_size


def _merge_adapter(source: str, adapter: str, out: Path) -> Path:
    """Base + LoRA → one plain model folder (CTranslate2 has no runtime LoRA for decoder LMs)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, token=os.environ.get("HF_TOKEN"))
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(source, token=os.environ.get("HF_TOKEN")).save_pretrained(out)
    return out


def convert(spec: ModelSpec, device: str = "cpu", force: bool = False) -> Path:
    """The CTranslate2 folder for ``spec`` (merging its adapter first), converting it on first use."""
    import ctranslate2

    target = converted_dir(spec, device)
    if is_complete(target) and not force:
        return target
    if spec.adapter and not (Path(spec.adapter) / "adapter_config.json").is_file():
        raise UserError(f"{spec.adapter}: not a LoRA adapter folder (no adapter_config.json)")
    source = _source_dir(spec)
    what = f"{spec.model} + adapter {spec.adapter}" if spec.adapter else spec.model
    print(f"converting {what} to CTranslate2 {quantization(device)} (once, ~30 s)…", file=sys.stderr, flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".merge-") as merge_tmp:
        if spec.adapter:
            source = str(_merge_adapter(source, spec.adapter, Path(merge_tmp)))
        folder = Path(source)
        copy = [str(folder / f) for f in TOKENIZER_FILES if (folder / f).is_file()] if folder.is_dir() else []
        try:
            converter = ctranslate2.converters.TransformersConverter(
                source, copy_files=copy or None, low_cpu_mem_usage=True
            )
            converter.convert(str(tmp), quantization=quantization(device), force=True)
        except Exception as exc:  # the converter raises ValueError/KeyError/OSError for unsupported models
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelUnavailableError(
                f"{what} cannot be converted to CTranslate2: {first_line(exc)}; use --backend transformers"
            ) from None
        if not copy:  # a hub id: the converter saw the files, so take the tokenizer from the same place
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(source, token=os.environ.get("HF_TOKEN")).save_pretrained(tmp)
    (tmp / COMPLETE).write_text(json.dumps({
        "source": spec.model, "adapter": spec.adapter, "quantization": quantization(device),
        "ctranslate2": ctranslate2.__version__, "model_bin_bytes": (tmp / "model.bin").stat().st_size,
    }))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def prepare_device(spec: ModelSpec) -> str:
    """Where the engine runs: the asked device, or the GPU when CTranslate2 sees one (else the CPU)."""
    import ctranslate2

    wanted = (spec.device or "auto").strip()
    if wanted in ("", "auto"):
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if wanted.startswith("cuda") and ctranslate2.get_cuda_device_count() == 0:
        raise UserError("device 'cuda' was asked for but CTranslate2 sees no CUDA GPU; use --device cpu")
    return wanted


def _open(folder: Path, device: str):
    """The generator and its tokenizer: ``tokenizers`` alone where the folder allows (no ``transformers``
    import, seconds off a cold start; the same ids, see :mod:`core.stages.llm.tokenizer`), else transformers'."""
    import ctranslate2

    kind, _, index = device.partition(":")
    generator = ctranslate2.Generator(
        str(folder), device=kind, device_index=int(index or 0), compute_type=compute_type(device),
        intra_threads=_threads() if kind == "cpu" else 0, inter_threads=1,
    )
    tokenizer = load_tokenizer(folder)
    if tokenizer.pad_token is None:  # as the transformers path sets it: training collates with it
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return generator, tokenizer


@dataclass
class CT2Runner:
    """A loaded CTranslate2 generator, its tokenizer, and the static prefixes this process has cached."""

    generator: object
    tokenizer: object
    folder: Path
    prefixes: list[tuple[str, ...]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    _end_tokens: list[str] | None = field(default=None, init=False, repr=False)

    def end_tokens(self) -> list[str]:
        """The single tokens that end a tweet: EOS and the chat end-of-turn markers this vocabulary has.

        Worked out once per runner: ``get_vocab()`` builds a 262,144-entry dict for Gemma (0.38 s on
        2 cores), which was a fifth of every warm tweet when done per call."""
        if self._end_tokens is None:
            tok = self.tokenizer
            names = {*END_TOKENS, getattr(tok, "eos_token", None)} - {None}
            unk = tok.unk_token_id
            self._end_tokens = sorted(
                t for t in names if (i := tok.convert_tokens_to_ids(t)) is not None and (i != unk or t == tok.unk_token)
            )
        return self._end_tokens


def open_runner(spec: ModelSpec) -> tuple[CT2Runner, str]:
    """Convert (once) and open; a cached conversion that does not open is rebuilt once, then a one-line error."""
    device = prepare_device(spec)
    folder = convert(spec, device)
    try:
        generator, tokenizer = _open(folder, device)
    except (RuntimeError, ValueError, OSError) as first:
        print(f"the converted model in {folder} does not load ({first_line(first)}); converting again…",
              file=sys.stderr, flush=True)
        folder = convert(spec, device, force=True)
        try:
            generator, tokenizer = _open(folder, device)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailableError(
                f"the CTranslate2 model in {folder} does not load after converting it again: {first_line(exc)}; "
                "delete that folder or use --backend transformers"
            ) from None
    return CT2Runner(generator=generator, tokenizer=tokenizer, folder=folder), device


def load(spec: ModelSpec) -> LLM:
    """The converted model, opened, as an :class:`LLM` whose ``runner`` is the :class:`CT2Runner`."""
    runner, device = open_runner(spec)
    return LLM(spec=spec, model=None, tokenizer=runner.tokenizer, device=device, engine="ctranslate2", runner=runner)


# --------------------------------------------------------------------------- prompts → tokens


def _common_prefix(rows: list[list[str]]) -> int:
    if not rows:
        return 0
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def static_prefix(runner: CT2Runner, prompts: list[str], rows: list[list[str]], add_special: bool) -> tuple[str, ...]:
    """The token prefix that every row of this call shares and whose decoder state is worth caching.

    First choice: the text before the prompt's last few-shot block separator, the same for every post
    (examples added later, e.g. brand history, sit after it). Tokenised on its own, its last token is
    dropped (it may merge differently with what follows) and it must be a prefix of every row.
    Otherwise (chat prompts) the rows' longest common token prefix, if the call has two or more rows.
    A row always keeps at least one token of its own; prefixes shorter than ``MIN_STATIC_TOKENS`` and
    new prefixes beyond ``MAX_STATIC_PREFIXES`` per process are not cached (no eviction exists).
    """
    tok = runner.tokenizer
    candidate: list[str] = []
    cut = prompts[0].rfind(BLOCK_SEPARATOR)
    if cut > 0 and all(p.startswith(prompts[0][:cut + len(BLOCK_SEPARATOR)]) for p in prompts):
        text = prompts[0][:cut + len(BLOCK_SEPARATOR)]
        candidate = tok.convert_ids_to_tokens(tok.encode(text, add_special_tokens=add_special))[:-1]
    elif len(rows) > 1:
        candidate = rows[0][:_common_prefix(rows)]
    shortest = min(len(r) for r in rows)
    candidate = candidate[:shortest - 1]
    if len(candidate) < MIN_STATIC_TOKENS or any(r[:len(candidate)] != candidate for r in rows):
        return ()
    key = tuple(candidate)
    with runner.lock:
        if key not in runner.prefixes:
            if len(runner.prefixes) >= MAX_STATIC_PREFIXES:
                return ()
            runner.prefixes.append(key)
    return key


def _chunks(order: list[int], lengths: list[int], batch_size: int) -> list[list[int]]:
    """Rows sorted by length, cut into calls of at most ``batch_size`` rows within ``MAX_SUFFIX_SPREAD``."""
    chunks: list[list[int]] = []
    for i in order:
        if chunks and len(chunks[-1]) < batch_size and lengths[i] - lengths[chunks[-1][0]] <= MAX_SUFFIX_SPREAD:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


# --------------------------------------------------------------------------- generation


def _stop_callback(tokenizer, stop_strings: tuple[str, ...], min_new_tokens: int, store: dict):
    """Per generated token: end that row/hypothesis once its new text holds a stop string past its
    first character (the transformers path's rule), and add up its log-probabilities for ranking."""

    def callback(step) -> bool:
        ids, logprob = store.setdefault((step.batch_id, step.hypothesis_id), ([], [0.0]))
        ids.append(step.token_id)
        if step.log_prob is not None:
            logprob[0] += float(step.log_prob)
        if len(ids) < max(1, min_new_tokens) or not stop_strings:
            return False
        text = tokenizer.decode(ids[-24:] if len(ids) > 24 else ids, skip_special_tokens=False)
        if len(ids) > 24:  # a stop string could only just have appeared: the tail decides, the full text confirms
            if not any(s in text for s in stop_strings):
                return False
            text = tokenizer.decode(ids, skip_special_tokens=False)
        text = text.lstrip()
        return any(text.find(s) > 0 for s in stop_strings)

    return callback


def generate(
    llm: LLM,
    prompts: list[str],
    cfg: GenerationConfig,
    progress: Callable[[int, int], None] | None,
    stats: dict | None,
    stop_strings: tuple[str, ...],
    *,
    scores: bool = False,
) -> list[list[tuple[str, float | None]]]:
    """Raw (uncleaned) texts, ``cfg.num_candidates`` per prompt, each with its mean log-probability per
    generated token when ``scores`` (a log-softmax over the vocabulary per step: only when asked)."""
    import ctranslate2

    runner: CT2Runner = llm.runner
    tok = runner.tokenizer
    add_special = llm.prompt_style != "chat"
    rows = [tok.convert_ids_to_tokens(tok.encode(p, add_special_tokens=add_special)) for p in prompts]
    n = max(1, cfg.num_candidates)
    sample = cfg.do_sample or n > 1
    options = dict(
        include_prompt_in_result=False,
        max_length=cfg.max_new_tokens,
        min_length=cfg.min_new_tokens,
        end_token=runner.end_tokens(),
        repetition_penalty=cfg.repetition_penalty,
        no_repeat_ngram_size=cfg.no_repeat_ngram_size,
        num_hypotheses=n,
        sampling_topk=min(TOP_K, len(tok)) if sample else 1,
        sampling_topp=cfg.top_p if sample else 1.0,
        sampling_temperature=cfg.temperature if sample else 1.0,
        return_scores=scores,
    )
    ctranslate2.set_random_seed(cfg.seed)
    results: list[list[tuple[str, float | None]]] = [[] for _ in prompts]
    done = 0
    # Rows that share the few-shot prefix go together; any others (none in practice) go in calls of their own.
    prefix = static_prefix(runner, prompts, rows, add_special) if prompts else ()
    suffixes = [r[len(prefix):] for r in rows]
    lengths = [len(s) for s in suffixes]
    order = sorted(range(len(rows)), key=lambda i: lengths[i])
    for chunk in _chunks(order, lengths, max(1, cfg.batch_size)):
        store: dict = {}
        call = dict(options, callback=_stop_callback(tok, stop_strings, cfg.min_new_tokens, store))
        if prefix:
            call["static_prompt"] = list(prefix)
        out = runner.generator.generate_batch([suffixes[i] for i in chunk], **call)
        for b, (i, result) in enumerate(zip(chunk, out, strict=True)):
            texts = []
            for k, ids in enumerate(result.sequences_ids):
                seen = store.get((b, k))
                written = len(seen[0]) if seen else len(ids)
                logprob = seen[1][0] / max(1, written) if seen and scores else None
                if stats is not None:
                    stats["new_tokens"] = stats.get("new_tokens", 0) + written
                texts.append((tok.decode(ids, skip_special_tokens=True), logprob))
            results[i] = texts
        done += len(chunk)
        if progress:
            progress(done, len(prompts))
    return results
