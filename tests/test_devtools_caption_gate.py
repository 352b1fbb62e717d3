"""``core.devtools.caption_gate``: the labels resolve to tree nodes, a subject is judged right, vague or wrong as its
docstring says, and the gates chosen are the lowest with no wrong subject, on probability vectors written here."""

from __future__ import annotations

import numpy as np
import pytest

from core.devtools import caption_gate as gate
from core.stages.caption.hierarchy import load_tree, name_subject


@pytest.fixture(scope="module")
def tree():
    return load_tree()


@pytest.fixture(scope="module")
def labels(tree) -> list[str]:
    """The classifier's names without loading it: WordNet's first words, spelt as torchvision spells the two
    that repeat (checked against the real names in tests/test_stages_caption_hierarchy.py)."""
    names = list(tree.words[:tree.n_classes])
    names[134], names[638] = "crane bird", "maillot tank suit"
    return names


def _view(tree, labels, shows: str, *truths: str) -> gate.View:
    view = gate.View("test", None, shows, truths, True)
    view.nodes = gate.resolve_truths(tree, labels, truths)
    return view


def _mass(tree, labels, probs: dict[str, float]):
    vector = np.zeros(tree.n_classes)
    for label, p in probs.items():
        vector[labels.index(label)] = p
    return tree.mass(vector)[0]


def test_every_label_of_the_set_resolves_and_held_out_photos_stay_out(tree, labels):
    for photo in (*gate.PHOTOS, *gate.HELD_OUT):
        assert len(gate.resolve_truths(tree, labels, photo.truths)) == len(photo.truths), photo.name
        assert photo.source == "skimage" or photo.source in gate.SOURCES
    assert not {p.name for p in gate.HELD_OUT} & {p.name for p in gate.PHOTOS}
    assert len({(p.source, p.name) for p in gate.PHOTOS}) == len(gate.PHOTOS)


def test_a_truth_that_names_several_nodes_is_refused(tree, labels):
    with pytest.raises(ValueError, match="use a wnid"):
        gate.resolve_truths(tree, labels, ["car"])  # a motor car and a railway car
    assert gate.resolve_truths(tree, labels, ["n02958343"]) == {tree.index("n02958343")}


def test_a_subject_is_right_above_a_truth_in_the_photo_s_words_and_wrong_elsewhere(tree, labels):
    cat = _view(tree, labels, "cat kitten tabby", *gate.CATS)
    coffee = _view(tree, labels, "coffee espresso cup saucer", "espresso")
    moon = _view(tree, labels, "moon crater surface")
    chelsea = _mass(tree, labels, {"Egyptian cat": 0.40, "tiger cat": 0.33, "tabby": 0.17})
    assert gate.judge(tree, name_subject(tree, chelsea, 0.88, labels), cat) == "right"  # "cat"
    assert gate.judge(tree, name_subject(tree, chelsea, 0.0, labels, 0.0), cat) == "right"  # a truth itself
    assert gate.judge(tree, name_subject(tree, chelsea, 0.88, labels), moon) == "wrong"
    assert gate.judge(tree, None, moon) == "none"
    espresso = _mass(tree, labels, {"espresso": 0.90, "eggnog": 0.06})
    assert name_subject(tree, espresso, 0.88, labels, 0.96).noun == "drink"
    assert gate.judge(tree, name_subject(tree, espresso, 0.88, labels, 0.96), coffee) == "vague"  # true, unsaid
    persian = _mass(tree, labels, {"Persian cat": 0.99})
    assert gate.judge(tree, name_subject(tree, persian, 0.88, labels), cat) == "right"  # one of the cat truths
    assert gate.judge(tree, name_subject(tree, persian, 0.88, labels), _view(tree, labels, "cat", "tabby")) == "wrong"


def test_calibrate_chooses_the_lowest_gates_with_no_wrong_subject(tree, labels):
    views = [
        _view(tree, labels, "cat kitten", *gate.CATS),
        _view(tree, labels, "horse silhouette", "horse"),
        _view(tree, labels, "snowshoe hare", "hare"),
        _view(tree, labels, "white rabbit", "rabbit"),
    ]
    masses = np.stack([
        _mass(tree, labels, {"Egyptian cat": 0.40, "tiger cat": 0.33, "tabby": 0.17}),  # "cat" at 0.90
        # a horse silhouette: "dog" at 0.70, wrong
        _mass(tree, labels, {"Great Dane": 0.30, "black-and-tan coonhound": 0.40, "sorrel": 0.10}),
        _mass(tree, labels, {"hare": 0.97}),
        _mass(tree, labels, {"hare": 0.93, "wood rabbit": 0.02}),  # a rabbit taken for a hare: wrong below 0.94
    ])
    result = gate.calibrate(tree, labels, views, masses, grid=(0.6, 0.7, 0.8, 0.9, 0.94, 0.98))
    assert (result["threshold"], result["class_threshold"]) == (0.8, 0.94)
    assert result["chosen"]["right"] == 2 and result["chosen"]["wrong"] == 0  # the cat and the hare
    one_gate = {row["threshold"]: row for row in result["one_gate_curve"]}
    assert one_gate[0.0]["wrong"] == 2 and one_gate[0.9]["wrong"] == 1  # the rabbit as a hare: a class too low


def test_find_photo_looks_where_each_package_installs(tmp_path):
    missing = gate.Photo("opencv-doc", "no-such-photo.jpg", "nothing")
    assert gate.find_photo(missing) is None
    (tmp_path / "no-such-photo.jpg").write_bytes(b"")
    assert gate.find_photo(missing, [tmp_path]) == tmp_path / "no-such-photo.jpg"
    wallpaper = gate.Photo("plasma-workspace-wallpapers", "NoSuchWallpaper", "nothing")  # a folder: its preview
    (tmp_path / "NoSuchWallpaper" / "contents").mkdir(parents=True)
    (tmp_path / "NoSuchWallpaper" / "contents" / "screenshot.jpg").write_bytes(b"")
    assert gate.find_photo(wallpaper, [tmp_path]) == tmp_path / "NoSuchWallpaper" / "contents" / "screenshot.jpg"


def test_a_stamp_is_put_on_a_plain_ground(tmp_path):
    from PIL import Image

    path = tmp_path / "stamp.png"
    Image.new("RGBA", (60, 30), (200, 20, 20, 255)).save(path)
    photo = gate.Photo("tuxpaint-stamps-default", "stamp.png", "red box")
    image = gate.open_photo(photo, path)
    assert image.mode == "RGB" and image.size == (80, 50)
    assert image.getpixel((0, 0)) == gate.STAMP_GROUND and image.getpixel((40, 25)) == (200, 20, 20)
