"""LoRA fine-tuning of the tweet LLM on instruction JSONL, scored base vs tuned on the test split.

The base model comes from the registry: an offline alias (e.g. ``gemma-3-270m``) loads through
``core.stages.llm.load_llm`` as a plain fp32 model (GGUF converted once to safetensors), a hub
id can load in 4 bit on CUDA for QLoRA (``--preset qlora``: r 64, alpha 16, dropout 0.1, lr 2e-4,
2 epochs). The loss covers the response tokens only (prompt tokens are labelled -100), so the
adapter learns to write tweets, not to reproduce instructions.

The adapter folder carries ``prompt_style.txt`` ("zero-shot") and a model card; ``load_llm``
honours the former, so ``m2t predict --adapter DIR`` builds the very prompt the
adapter was trained on. Both the base and the tuned model are scored with core's generation
and metrics on the same prompts and recorded in the results store (task "llm").

    python -m training.lora_llm --data-dir data/generated/instructions --output-dir artifacts/lora-gemma
"""

from __future__ import annotations

import gc
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from core.errors import UserError
from core.eval.store import file_hash, hardware_description
from core.registry import ModelSpec, resolve
from core.stages.llm import LLM, GenerationConfig, generate, load_llm
from training.config import TrainConfig, apply_preset, field, parse_config, run_trainer, save_config, set_seed
from training.evaluation import TEXT_METRICS, EvalResult, comparison_table, finish_run, record, score_text
from training.instruction_data import PROMPT_STYLE, read_jsonl
from training.loop import LoopState, train

IGNORE = -100
PRESETS: dict[str, dict] = {
    # CPU: a small rank on the attention projections; a higher lr because CPU runs are short.
    "cpu": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "learning_rate": 5e-4, "epochs": 1},
    # QLoRA on a CUDA GPU, the settings the content-simulation write-ups used.
    "qlora": {"r": 64, "lora_alpha": 16, "lora_dropout": 0.1, "learning_rate": 2e-4, "epochs": 2,
              "load_in_4bit": True},
}


@dataclass(kw_only=True)
class LoraLLMConfig(TrainConfig):
    data_dir: str = field(help="folder with train.jsonl / validation.jsonl / test.jsonl (training.instruction_data)")
    output_dir: str = field("artifacts/lora-llm", help="adapter folder (also holds checkpoints and logs)")
    model: str = field("", help="base LLM: registry alias, hub id or folder (default: the profile's LLM)")
    preset: str = field("cpu", help="cpu | qlora: defaults for rank, alpha, dropout, lr, epochs (flags win)")
    load_in_4bit: bool = field(False, help="QLoRA: load the base model in 4-bit nf4 (CUDA only)")
    r: int = field(8, help="LoRA rank")
    lora_alpha: int = field(16, help="LoRA alpha (scale = alpha / r)")
    lora_dropout: float = field(0.05, help="dropout on the LoRA branch")
    target_modules: list[str] = field(help="modules to adapt", factory=lambda: ["q_proj", "v_proj"])
    learning_rate: float = field(5e-4, help="peak learning rate (linear warmup and decay)")
    max_length: int = field(256, help="tokens per example (prompt is cut from the left, completion kept)")
    save_every: int = field(25, help="optimizer steps between checkpoints")
    gradient_checkpointing: bool = field(False, help="trade compute for memory (useful for 7B QLoRA)")
    eval_limit: int = field(0, help="score only the first N test rows (0: all)")
    max_new_tokens: int = field(48, help="tokens generated per test prompt")
    gen_batch_size: int = field(8, help="prompts generated together")
    repetition_penalty: float = field(1.1, help="generation: as core's default (it also penalises prompt tokens)")
    no_repeat_ngram_size: int = field(3, help="generation: as core's default")
    device: str = field("auto", help="auto | cpu | cuda")


# --------------------------------------------------------------------------- data


def encode(tokenizer, prompt: str, completion: str, max_length: int) -> dict[str, list[int]]:
    """Prompt + " " + completion + EOS as ids, with the prompt masked out of the labels.

    The prompt is tokenised on its own exactly as ``core.stages.llm`` does at prediction time
    (special tokens included), so the tuned model continues from the same ids it was trained on.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    answer_ids = tokenizer(" " + completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    answer_ids = answer_ids[: max(1, max_length // 2)] if len(prompt_ids) + len(answer_ids) > max_length else answer_ids
    room = max_length - len(answer_ids)
    if len(prompt_ids) > room:  # keep the first token (BOS) and the fields nearest the answer
        prompt_ids = prompt_ids[:1] + prompt_ids[len(prompt_ids) - room + 1:]
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE] * len(prompt_ids) + answer_ids}


def collate(batch: list[dict], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    """Right-padded tensors; padding is masked out of attention and loss."""
    width = max(len(x["input_ids"]) for x in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, x in enumerate(batch):
        n = len(x["input_ids"])
        ids[i, :n] = torch.tensor(x["input_ids"])
        labels[i, :n] = torch.tensor(x["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def response_loss(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token loss over response tokens, projecting only those positions onto the vocabulary.

    Equal to ``model(**inputs).loss``, but the LM head runs on the ~25 answer positions instead
    of all ~170: with Gemma-3's 262k-token vocabulary the head costs more per token than the
    whole transformer body. Models without the usual body/head layout fall back to the plain
    forward.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body, head = getattr(base, "model", None), base.get_output_embeddings()
    if body is None or head is None:
        return model(**inputs).loss
    target = inputs["labels"][:, 1:]
    keep = target != IGNORE
    hidden = body(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
    logits = head(hidden[:, :-1][keep]).float()
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.nn.functional.cross_entropy(logits, target[keep])


def _loss_fn(pad_id: int, device: str):
    def loss(model: torch.nn.Module, batch: list[dict]) -> torch.Tensor:
        return response_loss(model, collate(batch, pad_id, device))

    return loss


@torch.no_grad()
def mean_loss(model: torch.nn.Module, examples: list[dict], pad_id: int, device: str, batch_size: int) -> float:
    """Response-token loss over a split (token-weighted), for the model card's before/after."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start:start + batch_size], pad_id, device)
        n = int((batch["labels"][:, 1:] != IGNORE).sum())
        total += float(response_loss(model, batch)) * n
        count += n
    model.train(was_training)
    return total / max(1, count)


# --------------------------------------------------------------------------- model


def attach_lora(llm: LLM, cfg: LoraLLMConfig) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = llm.model
    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(r=cfg.r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise UserError(f"LoRA targets {cfg.target_modules} do not match this model: {exc}") from None


def generation_config(cfg: LoraLLMConfig) -> GenerationConfig:
    """Greedy decoding with core's settings, so the scores describe what the app would write."""
    return GenerationConfig(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.gen_batch_size, seed=cfg.seed,
                            repetition_penalty=cfg.repetition_penalty, no_repeat_ngram_size=cfg.no_repeat_ngram_size)


def evaluate_llm(llm: LLM, rows: list[dict], cfg: LoraLLMConfig, label: str) -> EvalResult:
    prompts = [r["prompt"] for r in rows]
    gen = generation_config(cfg)
    from tqdm import tqdm

    bar = tqdm(total=len(prompts), desc=f"generate ({label})", unit="tweet", file=sys.stderr, disable=None)
    start = time.perf_counter()
    outputs = generate(llm, prompts, gen, progress=lambda done, total: bar.update(done - bar.n))
    bar.close()
    seconds = time.perf_counter() - start
    return score_text(label, [o[0] for o in outputs], [r["completion"] for r in rows], prompts, seconds)


def _base_eval(llm: LLM, rows: list[dict], cfg: LoraLLMConfig, test_path: Path, spec: ModelSpec) -> EvalResult:
    """The base model's score, cached in the output folder so a resumed run does not record it twice."""
    key = {"model": spec.model, "test_hash": file_hash(test_path), "n": len(rows),
           "generation": asdict(generation_config(cfg))}
    cache = Path(cfg.output_dir) / "eval_base.json"
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            r = saved["result"]
            return EvalResult("base", r["predictions"], [x["completion"] for x in rows], [x["prompt"] for x in rows],
                              r["metrics"], r["ci"], r["signature"], r["seconds"], r["run_id"])
    result = evaluate_llm(llm, rows, cfg, "base")
    record(result, task="llm", model=spec.model, adapter=None, dataset=test_path, store_path=cfg.results_db)
    cache.write_text(json.dumps({"key": key, "result": result.to_dict()}, ensure_ascii=False, indent=1))
    return result


def model_card(out: Path, cfg: LoraLLMConfig, spec: ModelSpec, data: dict[str, Path], state: LoopState,
               losses: dict[str, float], before: EvalResult | None, after: EvalResult | None) -> str:
    """The adapter folder's README.md: what it was trained from, how, and how well it does."""
    counts = {name: len(path.read_text().splitlines()) for name, path in data.items() if path.exists()}
    lines = [
        "---",
        f"base_model: {spec.model}",
        "library_name: peft",
        "tags: [lora, media2tweet, tweet-generation]",
        "---",
        "",
        f"# LoRA adapter for {spec.model}: media + metadata → tweet",
        "",
        f"- **Base model**: `{spec.model}` (backend `{spec.backend}`"
        + (", converted from GGUF to fp32 safetensors by core.model_files" if spec.backend == "gguf" else "") + ")",
        f"- **Prompt**: `core.stages.prompt.build_prompt(ctx, \"{PROMPT_STYLE}\")` (see `prompt_style.txt`); "
        "the target is the tweet's `content` with `<hyperlink>`/`<mention>` kept as tokens; loss on response "
        "tokens only.",
        "- **Data**: " + ", ".join(f"{name} {counts.get(name, 0)} rows (`{path}`)" for name, path in data.items()),
        f"- **LoRA**: r={cfg.r}, alpha={cfg.lora_alpha}, dropout={cfg.lora_dropout}, "
        f"targets={', '.join(cfg.target_modules)}" + (", base in 4-bit nf4 (QLoRA)" if cfg.load_in_4bit else ""),
        f"- **Training**: lr={cfg.learning_rate}, epochs={cfg.epochs}, batch={cfg.batch_size}×{cfg.grad_accum}, "
        f"max_length={cfg.max_length}, seed={cfg.seed}; {state.step} optimizer steps, "
        f"{state.seconds_per_step:.2f} s/step on {hardware_description()}",
    ]
    if state.losses:
        lines.append(f"- **Train loss**: {state.losses[0]:.3f} (first step) → {state.losses[-1]:.3f} (last step)")
    if losses:
        lines.append("- **Validation loss** (response tokens): "
                     + ", ".join(f"{k} {v:.3f}" for k, v in losses.items()))
    if before or after:
        n = (after or before).predictions
        lines += ["", f"## Test split ({len(n)} rows, same prompts, greedy, max {cfg.max_new_tokens} new tokens)",
                  "", comparison_table(before, after, TEXT_METRICS), "",
                  f"BLEU signature: `{(after or before).signature}`; CIDEr-D on the pycocoevalcap 0–10 scale; "
                  f"repetition_penalty={cfg.repetition_penalty}, no_repeat_ngram_size={cfg.no_repeat_ngram_size}."]
    lines += ["", "## Use", "", "```bash",
              f"m2t predict --model {spec.model} --adapter {out} --company … --username … --date …",
              "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main flow


def run(cfg: LoraLLMConfig) -> dict:
    """Train, save the adapter, score base and tuned; returns a summary (also saved as summary.json)."""
    set_seed(cfg.seed)
    data_dir, out = Path(cfg.data_dir), Path(cfg.output_dir)
    data = {name: data_dir / f"{name}.jsonl" for name in ("train", "validation", "test")}
    train_rows = read_jsonl(data["train"])
    val_rows = read_jsonl(data["validation"]) if data["validation"].exists() else []
    test_rows = read_jsonl(data["test"]) if data["test"].exists() and not cfg.skip_eval else []
    if cfg.eval_limit:
        test_rows = test_rows[: cfg.eval_limit]
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "training_config.json")

    spec = resolve("llm", cfg.model or None, device=cfg.device, load_in_4bit=cfg.load_in_4bit)
    llm = load_llm(replace(spec, adapter=None))
    tok = llm.tokenizer
    before = _base_eval(llm, test_rows, cfg, data["test"], spec) if test_rows else None

    encoded = [encode(tok, r["prompt"], r["completion"], cfg.max_length) for r in train_rows]
    encoded_val = [encode(tok, r["prompt"], r["completion"], cfg.max_length) for r in val_rows]
    set_seed(cfg.seed)
    model = attach_lora(llm, cfg)
    losses: dict[str, float] = {}
    if encoded_val:
        with model.disable_adapter():
            losses["base"] = mean_loss(model, encoded_val, tok.pad_token_id, llm.device, cfg.batch_size)
    loop = cfg.loop_config()
    state = train(model, encoded, _loss_fn(tok.pad_token_id, llm.device), loop, out, desc="LoRA")
    if encoded_val:
        losses["tuned"] = mean_loss(model, encoded_val, tok.pad_token_id, llm.device, cfg.batch_size)
    model.save_pretrained(out)
    (out / "prompt_style.txt").write_text(PROMPT_STYLE + "\n")
    del model, llm
    gc.collect()

    after = None
    if test_rows:
        tuned = load_llm(replace(spec, adapter=str(out)))  # exactly what `m2t predict --adapter` loads
        after = evaluate_llm(tuned, test_rows, cfg, "tuned")
        record(after, task="llm", model=spec.model, adapter=str(out), dataset=data["test"],
               store_path=cfg.results_db)
        del tuned
    summary = finish_run(out, cfg, state, before, after,
                         {"adapter": str(out), "model": spec.model, "validation_loss": losses},
                         model_card(out, cfg, spec, data, state, losses, before, after))
    if after is not None:
        (out / "eval_tuned.json").write_text(json.dumps(after.to_dict(), ensure_ascii=False, indent=1))
    return summary


def config_from_args(argv: list[str] | None = None) -> LoraLLMConfig:
    """The command line's config with the chosen preset filling every option not given explicitly."""
    cfg, explicit = parse_config(LoraLLMConfig, argv, __doc__, prog="python -m training.lora_llm")
    if cfg.preset not in PRESETS:
        raise UserError(f"--preset must be one of {', '.join(PRESETS)}")
    return apply_preset(cfg, PRESETS[cfg.preset], explicit)


def main(argv: list[str] | None = None) -> int:
    return run_trainer(lambda args: run(config_from_args(args)), argv)  # a bad --preset is a UserError too


if __name__ == "__main__":
    raise SystemExit(main())
