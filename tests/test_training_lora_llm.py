"""training.lora_llm on a tiny random Llama (built here from a config and a word tokenizer).

The real models train the same way (see training/README.md for a measured Gemma run); a tiny
model keeps this test to seconds while exercising masking, checkpoints, resume, the adapter
folder, base/tuned scoring and the results store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.devtools.synthetic import make_tweet_set
from core.eval.store import ResultsStore
from core.registry import resolve
from core.stages.llm import generate, load_llm
from training.instruction_data import InstructionDataConfig, build, read_jsonl
from training.lora_llm import IGNORE, LoraLLMConfig, config_from_args, encode, main, run


def _tiny_llama(folder: Path, texts: list[str]) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    words = sorted({w for t in texts for w in t.split()})
    vocab = {tok: i for i, tok in enumerate([*special.values(), *words])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **special)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    train, test = make_tweet_set(root / "dump", n_train=10, n_test=3, seed=2)
    build(InstructionDataConfig(csv=[str(train)], test_csv=[str(test)], out_dir=str(root / "data"),
                                analyse_media=False, test_fraction=0.0, validation_fraction=0.2))
    rows = [r for s in ("train", "validation", "test") for r in read_jsonl(root / "data" / f"{s}.jsonl")]
    model = _tiny_llama(root / "tiny-llama", [r["prompt"] + " " + r["completion"] for r in rows])
    return root, model


def test_only_response_tokens_carry_loss(setup):
    from transformers import AutoTokenizer

    _, model = setup
    tok = AutoTokenizer.from_pretrained(model)
    enc = encode(tok, "Company: aurora motors\nTweet:", "Big news! <hyperlink>", max_length=64)
    n_prompt = len(tok("Company: aurora motors\nTweet:")["input_ids"])
    assert enc["labels"][:n_prompt] == [IGNORE] * n_prompt
    assert enc["labels"][n_prompt:] == enc["input_ids"][n_prompt:]
    assert enc["input_ids"][-1] == tok.eos_token_id
    long_prompt = "Company: aurora motors " * 20 + "\nTweet:"
    short = encode(tok, long_prompt, "Big news! <hyperlink>", max_length=16)
    full = tok(long_prompt)["input_ids"]
    assert len(short["input_ids"]) == 16 and short["input_ids"][0] == full[0]  # first token (BOS if any) kept
    n_answer = len(tok(" Big news! <hyperlink>", add_special_tokens=False)["input_ids"]) + 1
    assert short["input_ids"][:-n_answer][-3:] == full[-3:]  # the prompt's end, next to the answer, kept
    assert short["labels"][-1] == tok.eos_token_id


def test_lora_trains_resumes_and_loads_in_the_pipeline(setup):
    root, model = setup
    out, db = root / "adapter", root / "results.sqlite"
    cfg = LoraLLMConfig(data_dir=str(root / "data"), output_dir=str(out), model=str(model), device="cpu",
                        target_modules=["q_proj", "v_proj", "lm_head"], learning_rate=3e-2, warmup_ratio=0.0,
                        epochs=4, batch_size=2, max_steps=6, save_every=2, max_new_tokens=6, results_db=str(db))
    first = run(cfg)
    assert first["steps"] == 6 and first["resumed_from"] is None
    losses = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2, losses
    assert set(first["validation_loss"]) == {"base", "tuned"}  # response-token loss before/after, in the card
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md", "prompt_style.txt"):
        assert (out / name).is_file(), name
    assert (out / "prompt_style.txt").read_text().strip() == "zero-shot"
    assert "| bleu |" in (out / "README.md").read_text()

    again = run(LoraLLMConfig(**{**cfg.__dict__, "max_steps": 10}))
    assert again["resumed_from"] == 6 and again["steps"] == 10
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 11))  # the counter continues; no step is repeated

    runs = ResultsStore(db).runs("llm")
    assert [r.adapter for r in runs] == [None, str(out), str(out)]  # base scored once, tuned after each run
    assert runs[1].metrics.keys() >= {"bleu", "rougeL", "cider"} and runs[1].n == 3

    llm = load_llm(resolve("llm", str(model), adapter=str(out), device="cpu"))
    assert llm.prompt_style == "zero-shot"
    (tweets,) = generate(llm, [read_jsonl(root / "data" / "test.jsonl")[0]["prompt"]])
    assert isinstance(tweets[0], str)


def test_preset_fills_only_what_was_not_given(setup):
    root, model = setup
    cfg = config_from_args(["--data-dir", str(root / "data"), "--model", str(model), "--preset", "qlora", "--r", "4"])
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.learning_rate, cfg.epochs, cfg.load_in_4bit) == (
        4, 16, 0.1, 2e-4, 2, True)
    cpu = config_from_args(["--data-dir", "x"])
    assert (cpu.r, cpu.load_in_4bit, cpu.target_modules) == (8, False, ["q_proj", "v_proj"])
    assert main(["--data-dir", "x", "--preset", "nope"]) == 2


def test_4bit_on_a_cpu_is_a_clear_error(setup, capsys):
    root, model = setup
    if __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["--data-dir", str(root / "data"), "--model", str(model), "--preset", "qlora",
                 "--output-dir", str(root / "qlora")]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_response_only_head_gives_the_models_own_loss(setup):
    """The LM head on answer positions only (the CPU speed-up) is the same loss as the full forward."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.lora_llm import collate, response_loss

    root, model = setup
    tok = AutoTokenizer.from_pretrained(model)
    rows = read_jsonl(root / "data" / "train.jsonl")[:3]
    batch = collate([encode(tok, r["prompt"], r["completion"], 128) for r in rows], tok.pad_token_id, "cpu")
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(model),
                                LoraConfig(r=4, target_modules=["q_proj", "v_proj", "lm_head"]))
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # a non-zero adapter, so LoRA is part of both paths
    with torch.no_grad():
        assert float(response_loss(peft_model, batch)) == pytest.approx(float(peft_model(**batch).loss), rel=1e-5)
