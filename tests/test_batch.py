import csv

import pandas as pd
import pytest

from core.batch import read_tweet_csv, run_batch
from core.errors import UserError
from core.stages.llm import GenerationConfig

COLUMNS = ["id", "date", "likes", "content", "username", "media", "inferred company"]


def _write(path, rows, columns=COLUMNS):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def test_csv_problems_are_clear(tmp_path):
    with pytest.raises(UserError, match="missing column"):
        read_tweet_csv(_write(tmp_path / "a.csv", [["1", "x"]], ["id", "content"]))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UserError, match="empty"):
        read_tweet_csv(tmp_path / "empty.csv")
    with pytest.raises(UserError, match="no rows"):
        read_tweet_csv(_write(tmp_path / "header.csv", []))
    with pytest.raises(UserError, match="no such file"):
        read_tweet_csv(tmp_path / "nope.csv")


@pytest.mark.slow
def test_batch_resumes_and_a_bad_row_never_stops_it(tmp_path, pipeline, poster_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "p.png").write_bytes(poster_path.read_bytes())
    photo = "[Photo(previewUrl='images/{0}', fullUrl='images/{0}')]"
    rows = [
        ["11", "2023-06-01 10:00:00+00:00", "300", "", "nike", photo.format("p.png"), "Nike"],
        ["12", "2023-06-02 10:00:00+00:00", "12", "", "acme", photo.format("gone.png"), "Acme"],
        ["13", "2023-06-03 10:00:00+00:00", "", "", "", "", "Nobody"],  # no username: noted, not fatal
        ["14", "2023-06-04 10:00:00+00:00", "5", "", "tea", "", "Tea Co"],
    ]
    src = _write(tmp_path / "tweets.csv", rows)
    out = tmp_path / "out.csv"
    cfg = GenerationConfig(max_new_tokens=10, batch_size=2)

    first = run_batch(src, out, pipeline, cfg, limit=2)  # stands in for a run interrupted after two rows
    assert list(first["id"]) == ["11", "12"]
    seen = []
    result = run_batch(src, out, pipeline, cfg, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (2, 4)  # resumed: the two finished rows were not redone
    assert list(result["id"]) == ["11", "12", "13", "14"]
    assert list(result.columns) == [*COLUMNS, "generated", "caption", "ocr", "transcript", "error"]
    saved = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert saved["generated"].tolist() == result["generated"].tolist()
    assert saved.loc[0, "generated"] == first.loc[0, "generated"]
    assert "SUMMER" in saved.loc[0, "ocr"]
    assert "gone.png" in saved.loc[1, "error"] and saved.loc[1, "generated"]
    assert "required" in saved.loc[2, "error"] and saved.loc[2, "generated"] == ""
    assert saved.loc[3, "generated"] and saved.loc[3, "error"] == ""
