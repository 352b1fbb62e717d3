"""training.instruction_data: tweet dump → instruction JSONL through core's stages, splits, resume."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest

from core.devtools.synthetic import TWEET_COLUMNS, make_tweet_set
from core.stages.prompt import TweetContext, build_prompt
from training.instruction_data import InstructionDataConfig, build, main, read_jsonl


def _rows(paths) -> list[dict]:
    return [r for name in ("train", "validation", "test") for r in read_jsonl(paths[name])]


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dump")
    train, test = make_tweet_set(folder, n_train=16, n_test=4, seed=3)
    return folder, train, test


@pytest.mark.slow
def test_media_is_analysed_and_dead_links_are_recorded(tmp_path, media_server):
    """Real captioner + OCR on rendered posters; a dead URL becomes a note on its row, not a failure."""
    base_url, _ = media_server
    folder = tmp_path / "dump"
    train, _ = make_tweet_set(folder, n_train=2, n_test=1, seed=5)
    with train.open("a", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerow(
            ["42", "2021-03-04 10:00:00", "7", "Dead link day <hyperlink>", "deadco", f"[Photo(previewUrl="
             f"'{base_url}/gone.jpg', fullUrl='{base_url}/gone-large.jpg')]", "dead co"])
    cfg = InstructionDataConfig(csv=[str(train)], out_dir=str(tmp_path / "out"), media_cache=str(tmp_path / "cache"),
                                validation_fraction=0.0, test_fraction=0.0)
    rows = {r["id"]: r for r in _rows(build(cfg))}
    assert len(rows) == 3
    dead = rows["42"]
    assert dead["media_errors"] and "404" in " ".join(dead["media_errors"])
    assert dead["completion"] == "Dead link day <hyperlink>"  # placeholders stay literal tokens
    assert "Company: dead co" in dead["prompt"] and dead["prompt"].endswith("\nTweet:")
    source = pd.read_csv(train, dtype=str).set_index("id")
    for row_id, row in rows.items():
        if row_id == "42":
            continue
        assert not row["media_errors"]
        assert row["caption"].startswith("a photo")  # "a photo of …" only for a confident label (caption gate)
        product = source.loc[row_id, "content"]
        assert row["completion"] == " ".join(product.split())
        # The prompt is core's zero-shot prompt of exactly what the stages found.
        ctx = TweetContext(company=row["company"], username=row["username"], date=row["date"][:16],
                           likes=row["likes"], caption=row["caption"], ocr_text=row["ocr"])
        assert row["prompt"] == build_prompt(ctx, "zero-shot")
    ocr_words = " ".join(r["ocr"] for r in rows.values()).upper()
    assert any(word in ocr_words for word in ("OFF", "NEW", "TODAY", "WEEKEND", "MONTH", "FREE", "EDITION"))

    # A rerun resumes: nothing is analysed again, and the dead link is not fetched again.
    (tmp_path / "out" / "train.jsonl").unlink()
    before = (tmp_path / "out" / "rows.jsonl").read_text()
    assert set(json.loads((tmp_path / "cache" / "dead_links.json").read_text())) == {
        f"{base_url}/gone.jpg", f"{base_url}/gone-large.jpg"}
    build(cfg)
    assert (tmp_path / "out" / "rows.jsonl").read_text() == before
    assert len(read_jsonl(tmp_path / "out" / "train.jsonl")) == 3


def test_brand_split_holds_out_whole_companies(dump, tmp_path):
    _, train, test = dump
    cfg = InstructionDataConfig(csv=[str(train), str(test)], out_dir=str(tmp_path), split="brand",
                                analyse_media=False, test_fraction=0.2, validation_fraction=0.2)
    paths = build(cfg)
    companies = {name: {r["company"] for r in read_jsonl(paths[name])} for name in paths}
    assert companies["test"] and companies["validation"] and companies["train"]
    assert not companies["test"] & companies["train"] and not companies["validation"] & companies["train"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["test_companies"] == sorted(companies["test"])
    assert sum(manifest["counts"].values()) == 20


def test_time_split_holds_out_the_latest_dates(dump, tmp_path):
    _, train, test = dump
    paths = build(InstructionDataConfig(csv=[str(train), str(test)], out_dir=str(tmp_path), split="time",
                                        analyse_media=False, test_fraction=0.25, validation_fraction=0.25))
    dates = {name: sorted(pd.Timestamp(r["date"]) for r in read_jsonl(paths[name])) for name in paths}
    assert len(dates["test"]) == 5 and len(dates["validation"]) == 5
    assert dates["train"][-1] <= dates["validation"][0] <= dates["validation"][-1] <= dates["test"][0]


def test_row_split_is_seeded_and_test_csv_rows_stay_in_test(dump, tmp_path):
    _, train, test = dump

    def ids(out, seed):
        paths = build(InstructionDataConfig(csv=[str(train)], test_csv=[str(test)], out_dir=str(tmp_path / out),
                                            analyse_media=False, test_fraction=0.0, validation_fraction=0.25,
                                            seed=seed))
        return {name: [r["id"] for r in read_jsonl(p)] for name, p in paths.items()}

    first, again, other = ids("a", 0), ids("b", 0), ids("c", 1)
    assert first == again and first != other
    assert set(first["test"]) == set(pd.read_csv(test, dtype=str)["id"])
    assert len(first["validation"]) == 4 and len(first["train"]) == 12


def test_xlsx_dump_and_an_interrupted_rows_file(dump, tmp_path):
    _, train, _ = dump
    xlsx = tmp_path / "dump.xlsx"
    pd.read_csv(train, dtype=str)[list(TWEET_COLUMNS)].to_excel(xlsx, index=False)
    out = tmp_path / "out"
    cfg = InstructionDataConfig(csv=[str(xlsx)], out_dir=str(out), analyse_media=False)
    assert sum(len(read_jsonl(p)) for p in build(cfg).values()) == 16
    rows_file = out / "rows.jsonl"
    lines = rows_file.read_text().splitlines()
    rows_file.write_text("\n".join(lines[:10]) + "\n" + lines[10][:25])  # killed mid-line
    assert sum(len(read_jsonl(p)) for p in build(cfg).values()) == 16
    assert len(rows_file.read_text().splitlines()) == 16


def test_cli_writes_the_splits(dump, tmp_path, capsys):
    _, train, _ = dump
    assert main(["--csv", str(train), "--out-dir", str(tmp_path), "--no-analyse-media", "--split", "time"]) == 0
    assert "train.jsonl" in capsys.readouterr().out
    assert main(["--csv", str(train), "--out-dir", str(tmp_path), "--split", "nope"]) == 2
