"""``core.stages.caption.hierarchy`` and the tree it reads: 1,000 ImageNet classes, each with a path up WordNet to
"entity", in the classifier's output order; summing and naming on probability vectors written here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.stages.caption import hierarchy, wordnet
from core.stages.caption.hierarchy import NODE_NAMES, load_tree, name_subject

ENTITY = "n00001740"
# A real line of WordNet 3.0's data.noun: "domestic cat" is a kind of "cat" (@) and of "domestic animal" (@).
DOMESTIC_CAT_LINE = (
    "02121808 05 n 04 domestic_cat 0 house_cat 0 Felis_domesticus 0 Felis_catus 0 004 @ 02121620 n 0000 "
    "@ 01317541 n 0000 #m 02121234 n 0000 ~ 02122298 n 0000 | any domesticated member of the genus Felis  \n"
)


@pytest.fixture(scope="module")
def tree() -> hierarchy.Tree:
    return load_tree()


def test_the_tree_has_the_1000_classes_in_output_order_each_with_a_path_to_entity(tree):
    classes = tree.wnids[:tree.n_classes]
    assert tree.n_classes == 1000 and len(set(classes)) == 1000
    assert list(classes) == sorted(classes)  # ImageNet's class index order is the sorted wnids
    assert all(w[0] == "n" and len(w) == 9 and w[1:].isdigit() for w in tree.wnids)
    assert len(set(tree.wnids)) == len(tree.wnids)
    entity = tree.index(ENTITY)
    assert all(entity in tree.ancestors(c) for c in range(tree.n_classes))
    assert tree.size[entity] == 1000 and (tree.size[:1000] == 1).all()  # no class lies under another
    assert classes[281] == "n02123045" and tree.words[281] == "tabby"
    assert classes[967] == "n07920052" and tree.words[967] == "espresso"


@pytest.mark.slow
def test_the_tree_words_are_the_captioner_class_names(tree, captioner):
    """The class order of the tree and of the classifier agree: each WordNet first word is the class name
    torchvision gives, but for the two that torchvision spells apart (two cranes, two maillots)."""
    differ = [(w, label) for w, label in zip(tree.words[:1000], captioner.labels, strict=True) if w != label]
    assert differ == [("crane", "crane bird"), ("maillot", "maillot tank suit")]


def test_the_tree_carries_wordnet_s_notice_and_its_sources():
    data = json.loads(hierarchy.TREE_FILE.read_text())
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in data["wordnet_licence"]
    assert "imagenet_synsets.txt" in data["sources"]


def test_every_named_node_is_in_the_tree(tree):
    for wnid, word in NODE_NAMES.items():
        assert wnid in tree.wnids, (wnid, word)
        assert tree.index(wnid) >= tree.n_classes, f"{word} is a class: it needs no name"
    # A name over one class renames it; one over several may be a subject of its own.
    assert tree.names[tree.alias[tree.words.index("sorrel")]] == "horse"
    assert tree.index("n02121808") in tree.nameable and tree.names[tree.index("n02121808")] == "cat"


def test_masses_sum_each_class_once_up_every_path(tree):
    probs = np.zeros(1000)
    probs[281] = 0.5  # tabby
    probs[tree.words.index("goldfish")] = 0.5
    mass = tree.mass(probs)[0]
    assert mass[tree.index(ENTITY)] == pytest.approx(1.0)
    # "domestic cat" has two parents (cat, domestic animal): the tabby reaches "domestic animal" once all the same
    assert mass[tree.index("n01317541")] == pytest.approx(0.5)
    assert mass[tree.index("n02121808")] == pytest.approx(0.5) and mass[tree.index("n02512053")] == pytest.approx(0.5)


def test_name_subject_picks_the_most_specific_node_at_its_gate(tree):
    labels = list(tree.words[:1000])
    probs = np.zeros(1000)
    probs[[285, 282, 281]] = [0.40, 0.33, 0.17]  # chelsea.png: Egyptian cat, tiger cat, tabby
    probs[tree.words.index("lynx")] = 0.05
    mass = tree.mass(probs)[0]
    assert name_subject(tree, mass, 0.88, labels).noun == "cat"  # domestic cat, 0.90
    assert name_subject(tree, mass, 0.92, labels).noun == "cat"  # the node "cat" (with lynx), 0.95
    assert name_subject(tree, mass, 0.96, labels) is None  # nothing nameable above: "feline" is not a subject
    assert name_subject(tree, mass, 0.0, labels, 0.0).noun == "Egyptian cat"  # no gate: the top label
    assert name_subject(tree, mass, 0.3, labels, 0.3).noun == "Egyptian cat"  # a class that passes is the most specific
    assert name_subject(tree, mass, 0.3, labels, 0.5).noun == "cat"  # unless its own gate is higher


def test_the_wordnet_reader_follows_hypernym_pointers_only():
    synset = wordnet.parse_line(DOMESTIC_CAT_LINE)
    assert synset.wnid == "n02121808" and synset.words[0] == "domestic cat" and len(synset.words) == 4
    assert synset.hypernyms == (2121620, 1317541)  # the two "@" pointers; "#m" and "~" are not "is a kind of"
    assert wordnet.parse_line("  1 This software and database is being provided to you, the LICENSEE, by  ") is None
    instance = wordnet.parse_line("09000000 15 n 01 Somewhere 0 001 @i 08000000 n 0000 | a place  ")
    assert instance.hypernyms == (8000000,)


@pytest.mark.skipif(not wordnet.DATA_NOUN.is_file(), reason="Debian's wordnet-base is not installed")
def test_the_committed_tree_is_what_the_generator_writes(tmp_path: Path):
    out = tmp_path / "tree.json"
    assert wordnet.main(["--out", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(hierarchy.TREE_FILE.read_text())


def test_the_generator_refuses_unknown_and_repeated_wnids():
    nouns = {1740: wordnet.Synset(1740, ("entity",), ())}
    with pytest.raises(ValueError, match="not WordNet"):
        wordnet.build_tree(["n00001740", "n99999999"], nouns)
    with pytest.raises(ValueError, match="repeat"):
        wordnet.build_tree(["n00001740", "n00001740"], nouns)
