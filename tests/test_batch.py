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
    assert list(result.columns) == [*COLUMNS, "generated", "caption", "ocr", "transcript", "error", "unsupported",
                                    "coverage", "thin"]
    written = result[result["generated"].astype(str).str.len() > 0]
    assert len(written) and set(written["thin"]) <= {"yes", "no"}  # a row that got no prompt has no report
    saved = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert saved["generated"].tolist() == result["generated"].tolist()
    assert saved.loc[0, "generated"] == first.loc[0, "generated"]
    assert "SUMMER" in saved.loc[0, "ocr"]
    assert "gone.png" in saved.loc[1, "error"] and saved.loc[1, "generated"]
    assert "required" in saved.loc[2, "error"] and saved.loc[2, "generated"] == ""
    assert saved.loc[3, "generated"] and saved.loc[3, "error"] == ""


# --------------------------------------------------------------------------- untrusted batch files (issue 12/15)

import io  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

from core.batch import confinement_error, row_keys  # noqa: E402
from core.tables import formula_safe, formula_unsafe, guard_cell, unguard_cell  # noqa: E402


def test_media_paths_are_confined_to_the_root(tmp_path):
    root = (tmp_path / "data").resolve()
    (root / "images").mkdir(parents=True)
    (root / "images" / "ok.png").write_bytes(b"x")
    (root / "images" / "link.png").symlink_to("/etc/hostname")  # inside by name, outside once resolved
    assert confinement_error("images/ok.png", root) is None
    assert confinement_error("images/../images/ok.png", root) is None
    assert confinement_error("https://example.com/../../a.png", root) is None  # URLs are the fetcher's business
    assert confinement_error("[Photo(previewUrl='images/ok.png', fullUrl='https://x/a.jpg')]", root) is None
    assert confinement_error("", root) is None
    for media, reason in [
        ("../secret.png", "leads outside"),
        ("images/../../secret.png", "leads outside"),
        ("images/link.png", "leads outside"),
        ("/etc/passwd", "is an absolute path"),
        ("~/.ssh/id_rsa", "is an absolute path"),
        ("[Photo(previewUrl='images/ok.png', fullUrl='../../etc/passwd')]", "leads outside"),
        ("[Video(thumbnailUrl='/etc/shadow', variants=[])]", "is an absolute path"),
    ]:
        message = confinement_error(media, root)
        assert message is not None and reason in message and "\n" not in message, media


def test_duplicate_ids_are_keyed_by_occurrence():
    frame = pd.DataFrame({"id": ["7", "8", "7", "", "7", ""]})
    assert row_keys(frame) == ["7#0", "8#0", "7#1", "#0", "7#2", "#1"]
    assert row_keys(pd.DataFrame({"x": ["a", "b"]})) == ["0", "1"]


def test_formula_guard_round_trips_every_cell():
    cells = ["=cmd|' /C calc'!A0", "+1", "-3", "@SUM(A1)", "\tx", "\rx", "'=x", "''+y", "'plain", "plain", "", "a=b"]
    for cell in cells:
        assert unguard_cell(guard_cell(cell)) == cell
        assert not str(guard_cell(cell)).lstrip("'")[:1] or str(guard_cell(cell))[0] not in "=+-@\t\r"
    frame = pd.DataFrame({"id": ["=1", "2"], "n": [-5, 3]})
    assert formula_unsafe(formula_safe(frame)).equals(frame)


class _Interrupt(Exception):
    """Raised from the progress callback: the run stops right after a chunk was written, as on Ctrl-C."""


@pytest.mark.slow
def test_an_untrusted_dump_with_duplicate_ids_escapes_and_formulas(tmp_path, pipeline):
    folder = tmp_path / "upload"
    folder.mkdir()
    (tmp_path / "secret.png").write_bytes(b"not for you")
    rows = [
        ["1", "2023-06-01 10:00", "5", "hi", "nike", "../secret.png", "Nike"],
        ["1", "2023-06-02 10:00", "6", "dup id", "nike", str(tmp_path / "secret.png"), "Nike"],
        ["=cmd|' /C calc'!A0", "2023-06-03 10:00", "-3", '=HYPERLINK("http://x","y")', "@user", "", "+Plus"],
        ["1", "2023-06-04 10:00", "7", "\tthird dup", "acme", "[Photo(previewUrl='../../etc/passwd')]", "Acme"],
        ["2", "2023-06-05 10:00", "8", "'=quoted", "tea", "[Photo(previewUrl=1, fullUrl=None)]", "Tea Co"],
    ]
    src = _write(folder / "tweets.csv", rows)
    out = folder / "out.csv"
    cfg = GenerationConfig(max_new_tokens=4, batch_size=2)

    def stop_after_first_chunk(done: int, total: int) -> None:
        if done == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        run_batch(src, out, pipeline, cfg, progress=stop_after_first_chunk)
    assert len(pd.read_csv(out, dtype=str, keep_default_na=False)) == 2

    result = run_batch(src, out, pipeline, cfg)
    raw = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(result) == len(raw) == 5  # every row exactly once, duplicates included
    given = pd.read_csv(src, dtype=str, keep_default_na=False)
    assert formula_unsafe(raw)[COLUMNS].equals(given)  # nothing lost or altered but the guard
    assert result[COLUMNS].equals(given)
    assert raw.loc[2, "id"] == "'=cmd|' /C calc'!A0" and raw.loc[2, "username"] == "'@user"
    assert raw.loc[2, "likes"] == "'-3" and raw.loc[3, "content"] == "'\tthird dup"
    assert raw.loc[4, "content"] == "''=quoted"  # one more quote, so reading back gives '=quoted
    assert all(not cell.startswith(tuple("=+-@\t\r")) for cell in raw.to_numpy().ravel())

    errors = result["error"].tolist()
    assert "'../secret.png' leads outside" in errors[0] and "is an absolute path" in errors[1]
    assert "leads outside" in errors[3] and "malformed media field" in errors[4]
    assert all("\n" not in e for e in errors)
    assert all(result["generated"].str.len() > 0)  # refused media still get a tweet from their metadata

    before = out.read_bytes()
    again = run_batch(src, out, pipeline, cfg)  # a finished output: nothing added, nothing changed
    assert len(again) == 5 and out.read_bytes() == before
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_media_root_must_be_a_folder(tmp_path):
    from core.batch import media_root_for

    src = _write(tmp_path / "t.csv", [["1", "2023", "1", "", "u", "", "C"]])
    assert media_root_for(src, None) == tmp_path.resolve()
    assert media_root_for(src, Path(tmp_path)) == tmp_path.resolve()
    with pytest.raises(UserError, match="--media-root .*: no such folder"):
        media_root_for(src, tmp_path / "nope")


def test_app_csv_downloads_are_formula_safe():
    from app.widgets import safe_csv

    frame = pd.DataFrame({"tweet": ["=HYPERLINK(\"http://x\")", "fine"], "user": ["@evil", "-1+2"]})
    text = safe_csv(frame.to_csv(index=False))
    back = pd.read_csv(io.StringIO(text), dtype=str)
    assert back.to_numpy().tolist() == [["'=HYPERLINK(\"http://x\")", "'@evil"], ["fine", "'-1+2"]]
    assert formula_unsafe(back).equals(frame.astype(str))
    assert safe_csv(b"a\n=1\n") == b"a\n'=1\n"
