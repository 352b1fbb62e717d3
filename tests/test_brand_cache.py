"""``core.brand.cache``: an entry appears whole or not at all, the first writer wins, no writable cache is fine."""

from __future__ import annotations

from pathlib import Path

from core.brand import cache


def _save(text: str):
    def save(folder: Path) -> None:
        folder.mkdir()
        (folder / "model.json").write_text(text)

    return save


def test_an_entry_is_complete_only_after_publish(tmp_path: Path) -> None:
    root = tmp_path / "likes" / "abc-v1"
    assert not cache.is_complete(root)
    cache.publish(root, _save("first"), "dump.csv")
    assert cache.is_complete(root) and (root / "model.json").read_text() == "first"
    assert (root / cache.COMPLETE).read_text() == "dump.csv"
    assert [p.name for p in root.parent.iterdir()] == ["abc-v1"], "no temporary folder is left behind"


def test_a_second_writer_keeps_the_first_entry(tmp_path: Path) -> None:
    root = tmp_path / "abc-v1"
    cache.publish(root, _save("first"), "dump.csv")
    cache.publish(root, _save("second"), "dump.csv")
    assert (root / "model.json").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abc-v1"]


def test_a_half_written_entry_is_not_complete_and_can_be_discarded(tmp_path: Path) -> None:
    root = tmp_path / "abc-v1"
    root.mkdir()
    (root / "model.json").write_text("half")
    assert not cache.is_complete(root)
    cache.discard(root)
    assert not root.exists()


def test_an_unwritable_cache_is_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache.publish(blocker / "abc-v1", _save("x"), "dump.csv")  # its parent cannot be made
    assert not (blocker / "abc-v1").exists()
