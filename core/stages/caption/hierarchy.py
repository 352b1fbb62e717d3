"""Name a photo's subject at the level the classifier is sure of: class probabilities summed up WordNet.

Why: ImageNet-1k splits many everyday things into near-identical classes, and the classifier spreads its belief
over them. Chelsea the cat scores Egyptian cat 0.40, tiger cat 0.33, tabby 0.17: no single label is sure, but the
three together give 0.9 for "cat". The classes are WordNet noun synsets, so a class's probability also belongs to
every synset above it ("domestic cat", "cat", "feline", ... "entity"). Summing the full softmax up that tree and
naming the most specific node whose sum passes its gate says "a cat" where the top label alone says nothing.
A single class has a higher gate than a broader node (see :func:`name_subject`); both are calibrated by
``python -m core.devtools.caption_gate`` and live in :mod:`core.stages.caption.classify`.

Only nodes a person would name a photo by may be a subject: the 1,000 classes and the internal nodes of
``NODE_NAMES`` (a hand table: WordNet's own first words are often odd, "domestic cat", "placental",
"instrumentality", and broad nodes such as "animal", "artifact" or "vehicle" say too little to be a subject).
The tree comes from ``imagenet_tree.json`` (written by :mod:`core.stages.caption.wordnet`), read once; the
summing is a ``bincount`` over 12,547 (class, ancestor) pairs: 0.2 ms an image, no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

TREE_FILE = Path(__file__).with_name("imagenet_tree.json")

# Internal WordNet nodes that may be a caption's subject, by wnid, with the word to say. Chosen by reading the
# tree's nodes with two or more classes below them: everyday words for what a photo shows. Left out on purpose:
# taxonomy ("placental", "diapsid", "passerine"), abstractions ("instrumentality", "artifact", "commodity",
# "device", "container", "structure"), and broad kinds that tell a reader next to nothing ("animal", "mammal",
# "vehicle", "wheeled vehicle", "food", "clothing"). A node of one class is named instead of that class where the
# class name is the odder word ("sorrel" is a horse's colour, a moped a kind of motorcycle).
NODE_NAMES: dict[str, str] = {
    # animals
    "n02121808": "cat",  # domestic cat: tabby, tiger cat, Persian, Siamese, Egyptian cat
    "n02121620": "cat",  # cat: the domestic ones, lynx, cougar
    "n02127808": "big cat",  # lion, tiger, leopard, jaguar, snow leopard, cheetah
    "n02084071": "dog",
    "n02092468": "terrier",
    "n02087551": "hound",
    "n02099029": "retriever",
    "n02101108": "spaniel",
    "n02104523": "sheepdog",  # shepherd dog
    "n02113335": "poodle",
    "n02096756": "schnauzer",
    "n02100399": "setter",
    "n02114100": "wolf",
    "n02118333": "fox",
    "n02131653": "bear",
    "n02484322": "monkey",
    "n02470325": "ape",
    "n02503517": "elephant",
    "n02374451": "horse",  # its one class is "sorrel"
    "n02437136": "camel",  # its one class is "Arabian camel"; a Bactrian camel is a camel too
    "n02395003": "pig",  # swine
    "n02419796": "antelope",
    "n02324045": "rabbit",
    "n02355227": "squirrel",  # its one class is "fox squirrel"
    "n02062744": "whale",
    "n01503061": "bird",
    "n01604330": "bird of prey",
    "n01816887": "parrot",
    "n01846331": "duck",
    "n01844917": "water bird",  # aquatic bird
    "n02512053": "fish",
    "n01482330": "shark",
    "n01726692": "snake",
    "n01674464": "lizard",
    "n01662784": "turtle",
    "n01639765": "frog",
    "n02159955": "insect",
    "n02164464": "beetle",
    "n02274259": "butterfly",
    "n01772222": "spider",
    "n01976957": "crab",
    "n12992868": "fungus",
    "n11669921": "flower",
    # vehicles
    "n02958343": "car",
    "n04490091": "truck",
    "n02924116": "bus",
    "n04520170": "van",
    "n03790512": "motorcycle",  # its one class is "moped"
    "n02834778": "bicycle",
    "n03684823": "locomotive",
    "n03510583": "plane",  # heavier-than-air craft: airliner, warplane
    "n04530566": "boat",  # vessel (a craft): ships, boats, sailing vessels
    "n02858304": "boat",
    "n04194289": "ship",
    "n04128499": "sailboat",
    # food and drink
    "n07881800": "drink",  # beverage
    "n07679356": "bread",
    "n07707451": "vegetable",
    "n07705931": "fruit",  # edible fruit
    "n07739125": "apple",  # its one class is "Granny Smith"
    "n07747055": "citrus fruit",
    "n07609840": "dessert",
    # things
    "n03046257": "clock",
    "n02942699": "camera",
    "n03082979": "computer",
    "n04401088": "phone",
    "n03001627": "chair",
    "n04379243": "table",
    "n03405725": "furniture",
    "n03497657": "hat",
    "n04199027": "shoe",
    "n02876657": "bottle",
    "n02773037": "bag",
    "n02883344": "box",
    "n02801938": "basket",
    "n03438257": "glass",
    "n02880940": "bowl",
    "n03800933": "musical instrument",
    "n03467517": "guitar",
    "n03928116": "piano",
    "n03467984": "gun",
    "n03636248": "lamp",
    "n02778669": "ball",
    "n03513137": "helmet",
    "n04370048": "sweater",
    "n03057021": "coat",
    "n02913152": "building",
    "n02898711": "bridge",
    "n03327234": "fence",
    "n09359803": "mountain",
}
MASS_NOUNS = frozenset({"furniture", "bread", "fruit"})  # said without "a": "a photo of bread"


@dataclass(frozen=True)
class Tree:
    """The classes (nodes ``0..n_classes-1``, in the classifier's output order) and every synset above them."""

    wnids: tuple[str, ...]
    words: tuple[str, ...]  # WordNet's first word for each node
    parents: tuple[tuple[int, ...], ...]
    n_classes: int
    pair_class: np.ndarray  # with pair_node: one (class, node) pair for the class and each node above it
    pair_node: np.ndarray
    size: np.ndarray  # how many classes lie at or below each node
    names: dict[int, str]  # node index -> the word to say, for the named internal nodes
    nameable: np.ndarray  # the classes and the named internal nodes over two or more classes, as node indices
    alias: dict[int, int]  # class -> the named node over it and nothing else ("sorrel" -> "horse")

    def index(self, wnid: str) -> int:
        return self.wnids.index(wnid)

    def ancestors(self, node: int) -> set[int]:
        """The node and every node above it."""
        return _above(self.parents, node)

    def mass(self, probs: np.ndarray) -> np.ndarray:
        """(n, n_classes) class probabilities -> (n, nodes): each node's summed probability, each class counted
        once per node even where WordNet reaches it by two paths (a dog is a canine and a domestic animal)."""
        probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
        return np.stack([np.bincount(self.pair_node, weights=row[self.pair_class], minlength=len(self.wnids))
                         for row in probs])


@dataclass(frozen=True)
class Subject:
    """What the caption names: a node, the word for it, and the probability summed over its classes."""

    node: int
    noun: str
    score: float
    is_class: bool


def _above(parents: tuple[tuple[int, ...], ...], node: int) -> set[int]:
    """``node`` and every node above it (WordNet is a DAG: some synsets have two hypernyms)."""
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(parents[n])
    return seen


def build(data: dict, names: dict[str, str] | None = None) -> Tree:
    """A :class:`Tree` from the file's ``{"n_classes", "nodes": [[wnid, word, [parents]], ...]}``."""
    nodes = data["nodes"]
    n_classes = int(data["n_classes"])
    wnids = tuple(n[0] for n in nodes)
    parents = tuple(tuple(n[2]) for n in nodes)
    lookup = {w: i for i, w in enumerate(wnids)}
    named = {lookup[w]: word for w, word in (NODE_NAMES if names is None else names).items()}
    above: dict[int, set[int]] = {}
    pairs: list[tuple[int, int]] = []
    for c in range(n_classes):
        above[c] = _above(parents, c)
        pairs += [(c, n) for n in sorted(above[c])]
    pair_class = np.array([c for c, _ in pairs], dtype=np.int64)
    pair_node = np.array([n for _, n in pairs], dtype=np.int64)
    size = np.bincount(pair_node, minlength=len(wnids))
    # A named node over one class only renames that class: its sum is the class's, so it passes or fails with it.
    alias: dict[int, int] = {}
    for node in (n for n in named if size[n] == 1):
        (cls,) = (c for c in range(n_classes) if node in above[c])
        if cls not in alias or node in _above(parents, alias[cls]):  # the nearest such node names it
            alias[cls] = node
    nameable = np.array(sorted(set(range(n_classes)) | {n for n in named if size[n] > 1}), dtype=np.int64)
    return Tree(wnids, tuple(n[1] for n in nodes), parents, n_classes, pair_class, pair_node, size, named, nameable,
                alias)


@lru_cache(maxsize=1)
def load_tree(path: Path = TREE_FILE) -> Tree:
    """The committed tree, read once per process (a few milliseconds)."""
    return build(json.loads(Path(path).read_text(encoding="utf-8")))


def name_subject(tree: Tree, mass: np.ndarray, threshold: float, labels: list[str],
                 class_threshold: float | None = None) -> Subject | None:
    """The most specific nameable node whose summed probability reaches its gate, or None.

    A class must reach ``class_threshold`` (default: ``threshold``), a broader node ``threshold``: a single
    class is confidently wrong more often than a broad one, because a photo of something ImageNet has no class
    for (a Bactrian camel, a lark, a domestic rabbit) pours its probability into the nearest class ("Arabian
    camel", "brambling", "hare"), while the node above it ("camel", "bird") stays true. Most specific = fewest
    classes below it, then the larger sum. With both gates at 0 every class passes and this is the top label,
    as the classifier alone would say. ``labels`` are the captioner's class names; a class renamed in
    ``NODE_NAMES`` ("sorrel" -> "horse") is said by its new name.
    """
    gate = np.where(tree.nameable < tree.n_classes, threshold if class_threshold is None else class_threshold,
                    threshold)
    passing = tree.nameable[mass[tree.nameable] >= gate]
    if passing.size == 0:
        return None
    node = int(passing[np.lexsort((-mass[passing], tree.size[passing]))[0]])
    said = tree.alias.get(node, node)
    noun = tree.names[said] if said in tree.names else labels[node]
    return Subject(node=said, noun=noun, score=float(mass[node]), is_class=node < tree.n_classes)
