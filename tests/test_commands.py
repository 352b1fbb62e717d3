"""The command line as a person uses it: real subprocesses, stdout for data, stderr for people."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.stages.caption import CONFIDENT_SCORE

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _assert_clean_failure(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 50)
    (d / "empty.wav").write_bytes(b"")
    (d / "notes.txt").write_text("hello")
    (d / "nocols.csv").write_text("id,content\n1,hello\n")
    (d / "empty.csv").write_text("")
    return d


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ocr", "{d}/missing.png"), "no such file"),
        (("caption", "{d}/corrupt.jpg"), "not a readable image"),
        (("transcribe", "{d}/empty.wav"), "empty (0 bytes)"),
        (("caption", "{d}/notes.txt"), "unsupported format"),
        (("predict", "--company", "A", "--username", "a", "--date", "2023", "--media", "http://127.0.0.1:9/x.jpg"),
         "could not fetch"),
        (("batch", "{d}/nocols.csv", "--out", "{d}/o.csv"), "missing column"),
        (("batch", "{d}/empty.csv", "--out", "{d}/o.csv"), "empty"),
        (("predict", "--company", "A", "--username", "a", "--date", "2023", "--profile", "cloud"), "unknown profile"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(bad_files, args, message):
    proc = run_cli(*(a.format(d=bad_files) for a in args), timeout=120)
    _assert_clean_failure(proc, message)


@pytest.mark.slow
def test_ocr_and_caption_json(poster_path):
    proc = run_cli("ocr", str(poster_path), "--json")
    assert proc.returncode == 0, proc.stderr
    (item,) = json.loads(proc.stdout)
    assert item["file"] == str(poster_path) and "SUMMER SALE" in item["text"] and item["boxes"]
    proc = run_cli("caption", str(poster_path), "--json")
    (item,) = json.loads(proc.stdout)
    assert len(item["labels"]) == 5
    # A poster is no ImageNet class: the caption gate keeps the weak top label out of the caption, as a guess.
    if item["labels"][0][1] < CONFIDENT_SCORE:
        assert item["caption"] == "a photo" and item["guess"].startswith("a photo of")
    else:
        assert item["caption"].startswith("a photo of") and not item["guess"]


@pytest.mark.slow
def test_transcribe_json_and_one_bad_file_of_two(speech_path, bad_files):
    proc = run_cli("transcribe", str(speech_path), str(bad_files / "empty.wav"), "--json")
    assert proc.returncode == 1  # one file failed, the other was still transcribed
    (item,) = json.loads(proc.stdout)
    assert "coffee" in item["text"].lower() and item["segments"][0]["end"] > 0
    assert "Traceback" not in proc.stderr and "empty.wav" in proc.stderr


@pytest.mark.slow
def test_predict_json(poster_path):
    proc = run_cli("predict", "--company", "Nike", "--username", "nike", "--date", "2023-06-01 10:00",
                   "--likes", "300", "--media", str(poster_path), "--max-new-tokens", "24", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["tweet"] and data["candidates"][0] == data["tweet"]
    assert "SUMMER SALE" in data["ocr"] and data["prompt"].endswith(f"Tweet: {data['opening']}")
    assert data["opening"].lower().startswith("summer sale") and data["tweet"].startswith(data["opening"].rstrip(","))
    assert set(data["timings"]) >= {"media", "caption", "ocr", "llm", "total"}


def test_models_lists_the_registry():
    proc = run_cli("models", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["profile"] == "offline" and data["tasks"]["llm"] == "gemma-3-270m"
    assert data["aliases"]["whisper-base"]["licence"] == "MIT"


@pytest.mark.slow
def test_prepare_finds_or_builds_every_offline_model():
    proc = run_cli("prepare", timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in ("easyocr-en", "whisper-base", "gemma-3-270m"):
        line = next(x for x in proc.stderr.splitlines() if x.startswith(name + ":"))
        assert Path(line.split(": ", 1)[1]).exists()
    line = next(x for x in proc.stderr.splitlines() if x.startswith("efficientnet-lite0 (ONNX Runtime):"))
    assert Path(line.split(": ", 1)[1]).is_file()  # the captioner's export, its class names beside it
    assert Path(line.split(": ", 1)[1]).with_suffix(".labels.json").is_file()


def test_model_flag_selects_the_llm_only():
    from core.__main__ import build_parser
    from core.commands import _pipeline

    args = build_parser().parse_args(
        ["predict", "--company", "A", "--username", "a", "--date", "2023", "--model", "smollm2-135m"]
    )
    specs = _pipeline(args).specs  # resolving specs loads nothing
    assert specs["llm"].model == "smollm2-135m"
    assert specs["caption"].model == "efficientnet-lite0" and specs["asr"].model == "whisper-base"


# --------------------------------------------------------------------------- bad arguments fail before models load


def _assert_fast_clean_failure(args: list[str], message: str, *, env: dict[str, str] | None = None,
                               runner: tuple[str, ...] = ("-m", "core")) -> subprocess.CompletedProcess:
    """One ``error:`` line and exit 2 before any model loads: the commands announce every load with a
    ``loading …`` line, so its absence is the property (a wall-clock bound would only fail on a busy machine)."""
    import os

    proc = subprocess.run([sys.executable, *runner, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 2, proc.stderr
    _assert_clean_failure(proc, message)
    assert "loading" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def dump(tmp_path) -> Path:
    path = tmp_path / "tweets.csv"
    path.write_text("id,date,likes,content,username,media,inferred company\n1,2023-06-01,5,,nike,,Nike\n")
    return path


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("{d}", "is a folder; give a file name"),
        ("{d}/missing/out.csv", "does not exist; create it first"),
        ("/proc/m2t-out.csv", "cannot write in /proc"),  # unwritable even for root
        ("{d}/tweets.csv", "is the input file"),
        ("{d}/other.csv", "is not a Media2Tweet output"),
    ],
)
def test_batch_refuses_a_bad_out_before_any_model_loads(dump, out, message):
    (dump.parent / "other.csv").write_text("a,b\n1,2\n")
    before = dump.read_bytes()
    _assert_fast_clean_failure(["batch", str(dump), "--out", out.format(d=dump.parent)], message)
    assert dump.read_bytes() == before


def test_batch_refuses_bad_flags_before_any_model_loads(dump):
    _assert_fast_clean_failure(["batch", str(dump), "--out", str(dump.parent / "o.csv"), "--media-root",
                                str(dump.parent / "nope")], "no such folder")
    for flag, value in (("--batch-size", "0"), ("--limit", "-1"), ("--max-new-tokens", "0"), ("--candidates", "x")):
        proc = run_cli("batch", str(dump), "--out", str(dump.parent / "o.csv"), flag, value, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and flag in proc.stderr.splitlines()[-1]
    assert not (dump.parent / "o.csv").exists()


def test_batch_help_states_the_duplicate_id_rule():
    proc = run_cli("batch", "--help", timeout=120)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "duplicate ids are all kept and each is generated exactly once" in text and "--media-root" in text


def test_bench_and_evaluate_refuse_bad_outputs_before_any_model_loads(dump, tmp_path):
    _assert_fast_clean_failure(["bench", "--out", str(tmp_path)], "is a folder")
    garbage = tmp_path / "results.sqlite"
    garbage.write_bytes(b"this is not a database\x00" * 400)
    ocr = tmp_path / "ocr.csv"
    ocr.write_text("path,text\na.png,hello\n")
    _assert_fast_clean_failure(["evaluate", "--task", "ocr", "--data", str(ocr), "--db", str(garbage)],
                               "is not a usable SQLite database (file is not a database)")
    _assert_fast_clean_failure(["evaluate", "--task", "ocr", "--data", str(ocr), "--db", str(tmp_path)],
                               "is a folder")


def test_trainers_refuse_a_bad_output_dir_before_any_model_loads(tmp_path):
    """The check runs at argument parsing, before any data or model is read: the data given does not exist (or
    holds nothing), so a trainer that read its data first would fail on that instead, and models load after data."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _assert_fast_clean_failure(["--data-dir", str(tmp_path), "--output-dir", str(blocker / "adapter")],
                               "is a file, not a folder", runner=("-m", "training.lora_llm"))
    _assert_fast_clean_failure(["--data", str(tmp_path / "x.csv"), "--output-dir", str(blocker)],
                               "is a file, not a folder", runner=("-m", "training.captioner"))
    garbage = tmp_path / "r.sqlite"
    garbage.write_bytes(b"\x00garbage" * 100)
    _assert_fast_clean_failure(["--data", str(tmp_path / "x.csv"), "--output-dir", str(tmp_path / "w"),
                                "--results-db", str(garbage)], "not a usable SQLite database",
                               runner=("-m", "training.whisper"))
