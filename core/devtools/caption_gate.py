"""Calibrate the caption gate and measure what it changes: ``python -m core.devtools.caption_gate``.

The offline captioner is an ImageNet classifier. Its probabilities are summed up the WordNet tree the classes
come from (:mod:`core.stages.caption.hierarchy`), and the caption names the most specific node whose sum
reaches its gate (``core.stages.caption.CONFIDENT_SCORE`` for a broad node, ``CLASS_SCORE`` for a single
class): "a cat" where three cat breeds share 0.9, nothing where even the broad class is unsure. A tweet written
about a wrong subject ("our bobsled team" for an astronaut) is worse than one that names none, so the gates are
the pair that names the most views right while no view of the labelled set gets a wrong or vague subject, at
those gates or any higher. Real photos cannot be downloaded here; the labelled set is made of photos packages
install (``apt-get install opencv-doc mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-20.04
tuxpaint-stamps-default``; a missing package's photos are left out):

* scikit-image's and scikit-learn's sample photos (pip, installed with EasyOCR);
* Debian's ``opencv-doc`` (the OpenCV sample photos: a squirrel, a mandrill, fruit, a car, buildings),
  ``mate-backgrounds`` (flowers, a ladybird, grass), ``plasma-workspace-wallpapers`` (the KDE wallpapers'
  previews: piers, boats, cups, a kite, abstract art) and ``lomiri-wallpapers-20.04`` (a nuthatch);
* Debian's ``tuxpaint-stamps-default``: photos of 120 animals and 17 vehicles cut out of their background,
  put on a plain grey ground here (the set's many animals and vehicles, which the sample photos lack);
* rendered posters and drawn shapes (no ImageNet class names them).

Each photo is labelled by hand, by looking at it, with the words that say what it shows and its *truths*: the
ImageNet classes it is, or, where ImageNet has no class for it, the deepest WordNet node of the tree above what it
is (a dahlia: "flower"; a guineafowl: "gallinaceous bird"; an astronaut: none). Each photo gives 7 views
(whole, mirrored, four 80 % corner crops, a 70 % centre crop). A named subject is **right** when it is one of
the truths or above one (a cat breed's photo may be called "cat", a tabby's may not be called "Persian cat")
*and* it is a truth itself or shares a word with what the photo shows ("cat" for "cat kitten tabby"); **vague**
when it is true but says less than that ("drink" for a photo described as "coffee cup"); **wrong** otherwise.
Vague and wrong both count against the gates. ``HELD_OUT`` photos are never used to choose them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core.devtools.brand_dump import sample_photo_dirs
from core.devtools.synthetic import make_caption_set, render_text_image

SOURCES: dict[str, tuple[str, ...]] = {  # where each source keeps its photos (skimage: found at run time)
    "opencv-doc": ("/usr/share/doc/opencv-doc/examples/data",),
    "mate-backgrounds": ("/usr/share/backgrounds/mate/nature",),
    "plasma-workspace-wallpapers": ("/usr/share/wallpapers",),
    "lomiri-wallpapers-20.04": ("/usr/share/backgrounds",),
    "tuxpaint-stamps-default": ("/usr/share/tuxpaint/stamps",),
}
STAMP_GROUND = (205, 205, 205)  # the plain ground a cut-out animal or vehicle is put on
GRID = tuple(round(0.01 * i, 2) for i in range(50, 100))  # the gates tried


@dataclass(frozen=True)
class Photo:
    """One labelled photo: where it is, what it shows (words), and its truths (class names, WordNet words or
    wnids of the tree; empty: nothing ImageNet can name)."""

    source: str
    name: str
    shows: str
    truths: tuple[str, ...] = ()


CATS = ("Egyptian cat", "tiger cat", "tabby", "Persian cat", "Siamese cat")
SK, CV, MATE, KDE, LOM, TUX = ("skimage", "opencv-doc", "mate-backgrounds", "plasma-workspace-wallpapers",
                    "lomiri-wallpapers-20.04", "tuxpaint-stamps-default")
PHOTOS: tuple[Photo, ...] = (
    # scikit-image and scikit-learn
    Photo(SK, "astronaut.png", "astronaut space suit flag shuttle"),
    Photo(SK, "brick.png", "brick wall"),
    Photo(SK, "camera.png", "photographer camera tripod man coat", ("tripod", "reflex camera", "Polaroid camera")),
    Photo(SK, "cell.png", "cell microscope"),
    Photo(SK, "chelsea.png", "cat kitten tabby", CATS),
    Photo(SK, "chessboard_RGB.png", "chessboard squares"),
    Photo(SK, "clock_motion.png", "clock wall blur", ("wall clock", "analog clock")),
    Photo(SK, "coffee.png", "coffee espresso cup saucer drink", ("espresso", "cup", "coffee mug")),
    Photo(SK, "coins.png", "coins money"),
    Photo(SK, "color.png", "colour circles"),
    Photo(SK, "grass.png", "grass lawn"),
    Photo(SK, "gravel.png", "gravel stones path"),
    Photo(SK, "horse.png", "horse silhouette", ("horse",)),
    Photo(SK, "hubble_deep_field.jpg", "galaxies stars space sky"),
    Photo(SK, "ihc.png", "tissue stain microscope"),
    Photo(SK, "logo.png", "logo snake"),
    Photo(SK, "microaneurysms.png", "retina eye"),
    Photo(SK, "moon.png", "moon crater surface"),
    Photo(SK, "motorcycle_left.png", "motorcycle motorbike bike", ("moped", "motor scooter", "motorcycle")),
    Photo(SK, "motorcycle_right.png", "motorcycle motorbike bike", ("moped", "motor scooter", "motorcycle")),
    Photo(SK, "page.png", "page text book"),
    Photo(SK, "phantom.png", "phantom scan"),
    Photo(SK, "retina.jpg", "retina eye fundus"),
    Photo(SK, "rocket.jpg", "rocket launch pad"),
    Photo(SK, "text.png", "text letters"),
    Photo(SK, "china.jpg", "temple palace building roof", ("palace", "monastery")),
    Photo(SK, "flower.jpg", "dahlia flower petals", ("flower",)),  # ImageNet's one flower near it, daisy, is not it
    # OpenCV's sample photos
    Photo(CV, "squirrel_cls.jpg", "squirrel red squirrel branch", ("tree squirrel",)),
    Photo(CV, "baboon.jpg", "mandrill baboon monkey face", ("baboon",)),  # WordNet's mandrill is a baboon
    Photo(CV, "HappyFish.jpg", "fish cartoon drawing", ("fish",)),
    Photo(CV, "butterfly.jpg", "butterfly swallowtail insect leaf", ("butterfly",)),  # no swallowtail class
    Photo(CV, "apple.jpg", "apple fruit red", ("apple",)),  # a red apple: not a Granny Smith
    Photo(CV, "orange.jpg", "orange fruit", ("orange",)),
    Photo(CV, "fruits.jpg", "fruit orange lemon lime kiwi citrus", ("orange", "lemon", "citrus")),
    Photo(CV, "messi5.jpg", "football soccer ball player pitch", ("soccer ball",)),
    Photo(CV, "chicky_512.png", "dog puppy pekingese", ("Pekinese", "Shih-Tzu")),
    Photo(CV, "basketball1.png", "basketball ball people room", ("basketball",)),
    Photo(CV, "home.jpg", "palace building towers birds sky", ("palace",)),
    Photo(CV, "building.jpg", "building hotel", ("building",)),
    Photo(CV, "aero1.jpg", "city aerial view lakes"),
    Photo(CV, "aero3.jpg", "city aerial view coast", ("seashore",)),
    Photo(CV, "board.jpg", "circuit board electronics chips"),
    Photo(CV, "leuvenA.jpg", "street houses brick cobbles"),
    Photo(CV, "licenseplate_motion.jpg", "car sedan licence plate", ("n02958343",)),  # car: the node above cab, racer…
    Photo(CV, "ela_original.jpg", "notebook journal elastic"),  # a paper notebook; ImageNet's is a laptop
    Photo(CV, "smarties.png", "sweets candy"),
    Photo(CV, "starry_night.jpg", "painting night sky stars village"),
    Photo(CV, "stuff.jpg", "lighter pencil coin cap table", ("lighter",)),
    # MATE's nature backgrounds
    Photo(MATE, "Aqua.jpg", "water drop splash"),
    Photo(MATE, "Blinds.jpg", "leaf green"),
    Photo(MATE, "Dune.jpg", "dune grass sea beach shore", ("seashore",)),
    Photo(MATE, "FreshFlower.jpg", "flower petals orange", ("flower",)),
    Photo(MATE, "Garden.jpg", "marigold flower", ("flower",)),
    Photo(MATE, "GreenMeadow.jpg", "grass meadow"),
    Photo(MATE, "RainDrops.jpg", "leaf raindrops"),
    Photo(MATE, "Storm.jpg", "storm clouds road sky"),
    Photo(MATE, "TwoWings.jpg", "dandelion seeds"),
    Photo(MATE, "Wood.jpg", "wood planks"),
    Photo(MATE, "YellowFlower.jpg", "yellow flower petals", ("flower",)),
    # KDE Plasma's wallpapers (their previews)
    Photo(KDE, "Altai", "mountains lake illustration"),
    Photo(KDE, "Autumn", "tree girl painting"),
    Photo(KDE, "BytheWater", "pier jetty dock boardwalk lake", ("pier",)),  # ImageNet's pier photos are jetties
    Photo(KDE, "Canopee", "abstract shapes"),
    Photo(KDE, "Cascade", "abstract shapes"),
    Photo(KDE, "Cluster", "abstract hexagons"),
    Photo(KDE, "DarkestHour", "dark blue abstract"),
    Photo(KDE, "Elarun", "abstract blue"),
    Photo(KDE, "FallenLeaf", "maple leaf autumn"),
    Photo(KDE, "Flow", "abstract hexagons"),
    Photo(KDE, "FlyingKonqui", "cartoon dragon"),
    Photo(KDE, "Grey", "architecture curves"),
    Photo(KDE, "Honeywave", "abstract waves"),
    Photo(KDE, "IceCold", "abstract ice"),
    Photo(KDE, "Kokkini", "abstract red"),
    Photo(KDE, "MilkyWay", "abstract dots"),
    Photo(KDE, "OneStandsOut", "pine seedlings plants"),
    Photo(KDE, "Opal", "abstract shapes"),
    Photo(KDE, "PastelHills", "abstract hills"),
    Photo(KDE, "Path", "forest path trees"),
    Photo(KDE, "Patak", "abstract shapes"),
    Photo(KDE, "SafeLanding", "illustration house trees"),
    Photo(KDE, "Shell", "abstract shapes"),
    Photo(KDE, "Volna", "abstract waves beach"),
    Photo(KDE, "summer_1am", "lake dusk sky lakeside", ("lakeside",)),
    # Lomiri's wallpapers
    Photo(LOM, "Infinite-Sea_by_Aury88.jpg", "galaxy sea stars sky"),
    Photo(LOM, "Fossa_by_Jasper_Roks.jpg", "abstract shapes"),
    Photo(LOM, "Painting-Colors_by__herobrine7gamer.jpg", "abstract stripes"),
    # Tux Paint's photo stamps: animals
    Photo(TUX, "animals/amphibians/frog-1.png", "frog", ("frog",)),
    Photo(TUX, "animals/amphibians/frog.png", "frog", ("frog",)),
    Photo(TUX, "animals/birds/adelaide-rosella.png", "rosella parrot bird", ("parrot",)),
    Photo(TUX, "animals/birds/albino_peahen.png", "white peahen peafowl bird", ("peafowl",)),  # a hen: no peacock
    Photo(TUX, "animals/birds/blackbird.png", "blackbird bird", ("thrush",)),
    Photo(TUX, "animals/birds/chicken_profile.png", "hen chicken bird", ("hen",)),
    Photo(TUX, "animals/birds/crow.png", "crow bird", ("corvine bird",)),
    Photo(TUX, "animals/birds/crowned_crane.png", "crowned crane bird", ("crane bird",)),
    Photo(TUX, "animals/birds/cuckoo.png", "cuckoo bird", ("cuckoo",)),
    Photo(TUX, "animals/birds/drake.png", "drake duck mallard bird", ("drake",)),
    Photo(TUX, "animals/birds/duck.png", "drake duck mallard bird", ("drake",)),
    Photo(TUX, "animals/birds/gander.png", "goose gander bird", ("goose",)),
    Photo(TUX, "animals/birds/guineafowl.png", "guineafowl bird", ("gallinaceous bird",)),
    Photo(TUX, "animals/birds/helmeted_guineafowl.png", "guineafowl bird", ("gallinaceous bird",)),
    Photo(TUX, "animals/birds/hen.png", "hen chicken bird", ("hen",)),
    Photo(TUX, "animals/birds/heron_greatblue.png", "heron bird", ("heron",)),
    Photo(TUX, "animals/birds/heron_greatblue_flying.png", "heron bird flying", ("heron",)),
    Photo(TUX, "animals/birds/lark.png", "lark bird", ("oscine",)),
    Photo(TUX, "animals/birds/little-penguin.png", "penguin bird", ("penguin",)),
    Photo(TUX, "animals/birds/magellanic_penguin.png", "penguin bird", ("penguin",)),
    Photo(TUX, "animals/birds/nandou.png", "rhea bird", ("ratite",)),
    Photo(TUX, "animals/birds/ostrich.png", "ostrich bird", ("ostrich",)),
    Photo(TUX, "animals/birds/owl.png", "snowy owl bird", ("owl",)),
    Photo(TUX, "animals/birds/peacock.png", "peacock bird", ("peacock",)),
    Photo(TUX, "animals/birds/pelican.png", "pelican bird", ("pelican",)),
    Photo(TUX, "animals/birds/penguin.png", "king penguin bird", ("king penguin",)),
    Photo(TUX, "animals/birds/pigeon.png", "pigeon bird", ("gallinaceous bird",)),  # WordNet files doves there
    Photo(TUX, "animals/birds/pink_flamingo.png", "flamingo bird", ("flamingo",)),
    Photo(TUX, "animals/birds/quetzal.png", "quetzal bird", ("bird",)),
    Photo(TUX, "animals/birds/rainbow-lorikeet.png", "lorikeet parrot bird", ("lorikeet",)),
    Photo(TUX, "animals/birds/rooster.png", "rooster cock chicken bird", ("cock",)),
    Photo(TUX, "animals/birds/seagull.png", "seagull gull bird", ("seabird",)),
    Photo(TUX, "animals/birds/silver-gull.png", "seagull gull bird", ("seabird",)),
    Photo(TUX, "animals/birds/tucan.png", "toucan bird", ("toucan",)),
    Photo(TUX, "animals/birds/turkey.png", "turkey bird", ("gallinaceous bird",)),
    Photo(TUX, "animals/birds/vulture.png", "vulture bird", ("vulture",)),
    Photo(TUX, "animals/fish/bluegroper.png", "groper fish", ("percoid fish",)),
    Photo(TUX, "animals/fish/butterflyfish.png", "butterflyfish fish", ("butterfly fish",)),
    Photo(TUX, "animals/fish/clownfish.png", "clownfish fish", ("anemone fish",)),
    Photo(TUX, "animals/fish/coraltrout.png", "coral trout fish", ("percoid fish",)),
    Photo(TUX, "animals/fish/dolphinfish.png", "dolphinfish fish", ("percoid fish",)),
    Photo(TUX, "animals/fish/lionfish.png", "lionfish fish", ("lionfish",)),
    Photo(TUX, "animals/fish/lobster.png", "lobster rock lobster", ("spiny lobster",)),
    Photo(TUX, "animals/fish/moonwrasse.png", "wrasse fish", ("percoid fish",)),
    Photo(TUX, "animals/fish/seahorse.png", "seahorse fish", ("teleost fish",)),
    Photo(TUX, "animals/fish/shrimp.png", "shrimp prawn", ("decapod crustacean",)),
    Photo(TUX, "animals/fish/stripedfish.png", "striped fish", ("fish",)),
    Photo(TUX, "animals/insects/Brown_slug.png", "slug", ("slug",)),
    Photo(TUX, "animals/insects/Woodlouse.png", "woodlouse", ("isopod",)),
    Photo(TUX, "animals/insects/fly.png", "fly insect", ("fly",)),
    Photo(TUX, "animals/insects/grasshopper.png", "grasshopper insect", ("grasshopper",)),
    Photo(TUX, "animals/insects/hornet.png", "hornet wasp insect", ("hymenopterous insect",)),
    Photo(TUX, "animals/insects/hoverfly.png", "hoverfly fly insect", ("fly",)),
    Photo(TUX, "animals/insects/mantis.png", "mantis insect", ("mantis",)),
    Photo(TUX, "animals/insects/xanthia.png", "moth insect", ("lepidopterous insect",)),
    Photo(TUX, "animals/lizards/iguana.png", "iguana lizard", ("common iguana",)),
    Photo(TUX, "animals/mammals/apes/chimp.png", "chimpanzee chimp ape", ("chimpanzee",)),
    Photo(TUX, "animals/mammals/apes/gorilla.png", "gorilla ape", ("gorilla",)),
    Photo(TUX, "animals/mammals/apes/tamarin_emperor.png", "tamarin monkey", ("marmoset",)),
    Photo(TUX, "animals/mammals/aquatic/dolphin.png", "dolphin", ("dolphin",)),
    Photo(TUX, "animals/mammals/aquatic/orca.png", "orca killer whale whale", ("killer whale",)),
    Photo(TUX, "animals/mammals/aquatic/otter.png", "otter", ("otter",)),
    Photo(TUX, "animals/mammals/aquatic/sea_lion.png", "sea lion", ("sea lion",)),
    Photo(TUX, "animals/mammals/aquatic/whale.png", "humpback whale", ("baleen whale",)),
    Photo(TUX, "animals/mammals/badger.png", "badger", ("badger",)),
    Photo(TUX, "animals/mammals/bears/bear.png", "brown bear bear", ("brown bear",)),
    Photo(TUX, "animals/mammals/bears/european-bear.png", "brown bear bear", ("brown bear",)),
    Photo(TUX, "animals/mammals/bovines/bison.png", "bison", ("bison",)),
    Photo(TUX, "animals/mammals/bovines/bull.png", "bull cattle", ("cattle",)),
    Photo(TUX, "animals/mammals/bovines/cow.png", "cow cattle", ("cattle",)),
    Photo(TUX, "animals/mammals/bovines/cow_white.png", "cow calf cattle", ("cattle",)),
    Photo(TUX, "animals/mammals/bovines/gnu-stand.png", "gnu wildebeest antelope", ("antelope",)),
    Photo(TUX, "animals/mammals/bovines/gnu-baby.png", "gnu wildebeest calf antelope", ("antelope",)),
    Photo(TUX, "animals/mammals/bovines/goat.png", "goat", ("goat",)),
    Photo(TUX, "animals/mammals/bovines/indian_blackbuck.png", "blackbuck antelope", ("antelope",)),
    Photo(TUX, "animals/mammals/bovines/mountaingoat.png", "chamois mountain goat", ("bovid",)),
    Photo(TUX, "animals/mammals/bovines/ram.png", "ram sheep", ("ram",)),
    Photo(TUX, "animals/mammals/bovines/sheep.png", "sheep", ("sheep",)),
    Photo(TUX, "animals/mammals/bovines/sheep_lamb.png", "lamb sheep", ("sheep",)),
    Photo(TUX, "animals/mammals/bovines/yak.png", "yak", ("bovine",)),
    Photo(TUX, "animals/mammals/bovines/zebu.png", "zebu cattle", ("bovine",)),
    Photo(TUX, "animals/mammals/camel/camel.png", "camel", ("camel",)),
    Photo(TUX, "animals/mammals/camel/dromedary.png", "dromedary camel", ("Arabian camel",)),
    Photo(TUX, "animals/mammals/cats/lion.png", "lion big cat", ("lion",)),
    Photo(TUX, "animals/mammals/cats/lion-2.png", "lion big cat", ("lion",)),
    Photo(TUX, "animals/mammals/cats/tiger.png", "tiger big cat", ("tiger",)),
    Photo(TUX, "animals/mammals/cats/tiger_sumatran.png", "tiger big cat", ("tiger",)),
    Photo(TUX, "animals/mammals/deer/caribou.png", "caribou reindeer deer", ("ruminant",)),
    Photo(TUX, "animals/mammals/deer/deer.png", "deer stag", ("ruminant",)),
    Photo(TUX, "animals/mammals/deer/doe.png", "deer doe", ("ruminant",)),
    Photo(TUX, "animals/mammals/deer/wapiti.png", "wapiti elk deer", ("ruminant",)),
    Photo(TUX, "animals/mammals/dogs/dingo.png", "dingo dog", ("dingo",)),
    Photo(TUX, "animals/mammals/dogs/dog.png", "husky dog", ("Eskimo dog", "Siberian husky", "malamute")),
    Photo(TUX, "animals/mammals/dogs/fox.png", "fox red fox", ("red fox",)),
    Photo(TUX, "animals/mammals/elephant.png", "elephant", ("African elephant", "tusker")),
    Photo(TUX, "animals/mammals/equines/donkey.png", "donkey", ("equine",)),
    Photo(TUX, "animals/mammals/equines/donkey_eating.png", "donkey", ("equine",)),
    Photo(TUX, "animals/mammals/equines/horse.png", "horse", ("horse",)),
    Photo(TUX, "animals/mammals/equines/zebra.png", "zebra", ("zebra",)),
    Photo(TUX, "animals/mammals/ferret.png", "ferret", ("polecat",)),  # WordNet's ferret is a polecat
    Photo(TUX, "animals/mammals/giraffe.png", "giraffe", ("ruminant",)),
    Photo(TUX, "animals/mammals/hippopotamus.png", "hippopotamus hippo", ("hippopotamus",)),
    Photo(TUX, "animals/mammals/pig.png", "pig hog", ("hog",)),
    Photo(TUX, "animals/mammals/pig_golden.png", "pig hog", ("hog",)),
    Photo(TUX, "animals/mammals/rabbit_little.png", "rabbit bunny", ("rabbit",)),
    Photo(TUX, "animals/mammals/rhino_black.png", "rhinoceros rhino", ("odd-toed ungulate",)),
    Photo(TUX, "animals/mammals/rodents/beaver.png", "beaver", ("beaver",)),
    Photo(TUX, "animals/mammals/rodents/capybara.png", "capybara", ("rodent",)),
    Photo(TUX, "animals/mammals/rodents/marmot.png", "marmot", ("marmot",)),
    Photo(TUX, "animals/mammals/rodents/mouse.png", "mouse", ("rodent",)),
    # Filed as a rabbit, but its long hind legs, black-tipped ears and winter coat are a snowshoe hare's
    Photo(TUX, "animals/mammals/rodents/rabbit.png", "snowshoe hare hare rabbit", ("hare",)),
    Photo(TUX, "animals/mammals/rodents/rabbit-2.png", "white rabbit bunny", ("rabbit",)),
    Photo(TUX, "animals/mammals/rodents/rat.png", "rat", ("rodent",)),
    Photo(TUX, "animals/mammals/rodents/squirrel.png", "grey squirrel squirrel", ("tree squirrel",)),
    Photo(TUX, "animals/mammals/wildboar.png", "wild boar boar pig", ("wild boar",)),
    Photo(TUX, "animals/marsupials/kangaroo.png", "kangaroo", ("kangaroo",)),
    Photo(TUX, "animals/marsupials/koala.png", "koala", ("koala",)),
    Photo(TUX, "animals/marsupials/wombat.png", "wombat", ("wombat",)),
    Photo(TUX, "animals/shellfish/abalone.png", "abalone shell", ("gastropod",)),
    Photo(TUX, "animals/shellfish/murray-mussel.png", "mussel shell", ("mollusk",)),
    # Tux Paint's photo stamps: vehicles
    Photo(TUX, "military/vehicles/bradley.png", "tank armoured vehicle", ("tank", "armored vehicle")),
    Photo(TUX, "military/vehicles/f22_raptor.png", "fighter jet plane aircraft", ("warplane",)),
    Photo(TUX, "military/vehicles/infantry-stryker.png", "armoured vehicle", ("armored vehicle",)),
    Photo(TUX, "vehicles/7spoke256.png", "wheel tyre", ("car wheel",)),
    Photo(TUX, "vehicles/auto/beetle.png", "car beetle", ("n02958343",)),
    Photo(TUX, "vehicles/auto/sedan.png", "car sedan", ("n02958343",)),
    Photo(TUX, "vehicles/auto/sportscar2.png", "car sports car convertible", ("sports car", "convertible")),
    Photo(TUX, "vehicles/auto/truck.png", "pickup truck car", ("pickup",)),
    Photo(TUX, "vehicles/construction/dumper.png", "dumper truck", ("truck",)),
    Photo(TUX, "vehicles/cycle/pink_tricycle.png", "tricycle", ("tricycle",)),
    Photo(TUX, "vehicles/emergency/firetruck.png", "fire engine truck", ("fire engine",)),
    Photo(TUX, "vehicles/flight/balloon360.png", "hot air balloon", ("balloon",)),
    Photo(TUX, "vehicles/flight/planes/747.png", "plane jet airliner aircraft", ("airliner",)),
    Photo(TUX, "vehicles/garbagetruck.png", "garbage truck truck", ("garbage truck",)),
    Photo(TUX, "vehicles/masstransit/green_korean_bus.png", "bus", ("bus",)),
    Photo(TUX, "vehicles/race/indycar.png", "race car racing car", ("racer",)),
    Photo(TUX, "vehicles/ship/chineseJunk.png", "junk boat ship sails", ("boat",)),
)
# Never used to choose the threshold: the photos the targets are measured on.
HELD_OUT: tuple[Photo, ...] = (
    Photo(LOM, "Kleiber_by_Lukas_Baubkus.jpg", "nuthatch bird tree", ("oscine",)),
    Photo(MATE, "LadyBird.jpg", "ladybird ladybug beetle flowers", ("ladybug", "flower")),
    Photo(KDE, "EveningGlow", "rowing boats lake shore sunset", ("small boat", "lakeside")),
    Photo(KDE, "ColorfulCups", "cups colourful", ("cup",)),
    Photo(KDE, "ColdRipple", "pier jetty lake fog", ("pier",)),
    Photo(KDE, "Kite", "kite sky clouds"),  # a toy kite: ImageNet's "kite" is a bird of prey
)
POSTER_LINES = (
    "SUMMER SALE 20% OFF", "GRAND OPENING SATURDAY", "AUTHOR TALK THURSDAY 6PM", "OAT MILK AT NO EXTRA COST",
    "BUY TWO BOOKS GET ONE FREE", "NEW MENU FROM MONDAY", "LIVE MUSIC TONIGHT", "HALF PRICE HELMETS",
    "ADOPTION DAY SUNDAY 11AM", "FREE DELIVERY ALL MONTH", "STARGAZING NIGHT 9PM", "SEED SWAP SATURDAY",
)


@dataclass
class View:
    """One image of the labelled set, what it shows, and the tree nodes that are true of it."""

    name: str
    image: Image.Image
    shows: str
    truths: tuple[str, ...]
    whole: bool  # the photo as published (the views measured with the LLM)
    nodes: frozenset[int] = field(default_factory=frozenset)  # the truths as tree nodes (resolve_truths)


def find_photo(photo: Photo, extra_dirs: Sequence[Path] = ()) -> Path | None:
    """The photo's file where its package installed it (or in one of ``extra_dirs``), else None."""
    if photo.source == "skimage":
        folders = [*sample_photo_dirs()]
    else:
        folders = [Path(p) for p in SOURCES[photo.source]]
    names = [photo.name]
    if photo.source == "plasma-workspace-wallpapers":  # a wallpaper is a folder: its preview is the photo
        names = [f"{photo.name}/contents/screenshot.jpg", f"{photo.name}/contents/screenshot.png"]
    for folder in [*folders, *extra_dirs]:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def open_photo(photo: Photo, path: Path) -> Image.Image:
    """The photo as RGB; a stamp (a cut-out with transparency) on a plain ground with a margin around it."""
    with Image.open(path) as im:
        if photo.source != "tuxpaint-stamps-default":
            return im.convert("RGB")
        cut = im.convert("RGBA")
    margin = max(cut.size) // 6
    ground = Image.new("RGBA", (cut.width + 2 * margin, cut.height + 2 * margin), (*STAMP_GROUND, 255))
    ground.alpha_composite(cut, (margin, margin))
    return ground.convert("RGB")


def _views(image: Image.Image) -> list[tuple[str, Image.Image]]:
    w, h = image.size
    cw, ch = int(w * 0.8), int(h * 0.8)
    cx, cy = int(w * 0.7), int(h * 0.7)
    return [
        ("whole", image),
        ("mirrored", image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        ("top-left", image.crop((0, 0, cw, ch))),
        ("top-right", image.crop((w - cw, 0, w, ch))),
        ("bottom-left", image.crop((0, h - ch, cw, h))),
        ("bottom-right", image.crop((w - cw, h - ch, w, h))),
        ("centre", image.crop(((w - cx) // 2, (h - cy) // 2, (w + cx) // 2, (h + cy) // 2))),
    ]


def photo_views(photos: Iterable[Photo], extra_dirs: Sequence[Path] = (), all_views: bool = True) -> list[View]:
    """The views of every photo found on disk (a missing package's photos are left out)."""
    views = []
    for photo in photos:
        path = find_photo(photo, extra_dirs)
        if path is None:
            continue
        image = open_photo(photo, path)
        kept = _views(image) if all_views else [("whole", image)]
        views += [View(f"{photo.name}:{how}", img, photo.shows, photo.truths, how == "whole") for how, img in kept]
    return views


def labelled_set(seed: int = 0, extra_dirs: Sequence[Path] = ()) -> list[View]:
    """Every view of the labelled photos found on disk, plus 12 posters and 8 drawn shapes."""
    views = photo_views(PHOTOS, extra_dirs)
    rng = random.Random(seed)
    for i, line in enumerate(POSTER_LINES):
        fg = tuple(rng.randint(0, 80) for _ in range(3))
        bg = tuple(rng.randint(190, 255) for _ in range(3))
        image = render_text_image(line, size=(640, 360), font_size=52, fg=fg, bg=bg, seed=i)
        views.append(View(f"poster:{line}", image, line.lower(), (), True))
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = make_caption_set(tmp, n=8, seed=seed)
        for line in csv_path.read_text().splitlines()[1:]:
            rel, caption = line.split(",", 1)
            with Image.open(Path(tmp) / rel) as im:
                views.append(View(f"shape:{caption}", im.convert("RGB"), caption, (), True))
    return views


def resolve_truths(tree, labels: Sequence[str], truths: Iterable[str]) -> frozenset[int]:
    """Truths as tree nodes: a class name, else a WordNet word that names one node of the tree, else a wnid.
    A truth that names no node, or several, is refused: the label would silently mean something else."""
    by_label = {label: i for i, label in enumerate(labels)}
    by_word: dict[str, list[int]] = {}
    for i, word in enumerate(tree.words):
        by_word.setdefault(word, []).append(i)
    nodes = set()
    for truth in truths:
        if truth in by_label:
            nodes.add(by_label[truth])
        elif re.fullmatch(r"n\d{8}", truth) and truth in tree.wnids:
            nodes.add(tree.index(truth))
        elif len(by_word.get(truth, [])) == 1:
            nodes.add(by_word[truth][0])
        else:
            raise ValueError(f"truth {truth!r} names {len(by_word.get(truth, []))} nodes of the tree; use a wnid")
    return frozenset(nodes)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3 and w not in {"the", "and", "for"}}


def judge(tree, subject, view: View) -> str:
    """``none`` (no subject), ``right``, ``vague`` (true but says less than the photo's words) or ``wrong``."""
    if subject is None:
        return "none"
    if not any(subject.node in tree.ancestors(t) for t in view.nodes):
        return "wrong"
    shows = _words(view.shows)
    if subject.node in view.nodes or any(w in shows or w + "s" in shows for w in _words(subject.noun)):
        return "right"
    return "vague"


def class_masses(captioner, views: Sequence[View], batch: int = 16) -> np.ndarray:
    """Each view's summed probability at every tree node, (views, nodes)."""
    from core.stages.caption import class_probabilities, hierarchy

    tree = hierarchy.load_tree()
    out = []
    for start in range(0, len(views), batch):
        probs = class_probabilities(captioner, [v.image for v in views[start:start + batch]])
        out.append(tree.mass(probs))
    return np.concatenate(out)


def _judge_all(tree, labels: Sequence[str], views: Sequence[View], masses: np.ndarray, threshold: float,
               class_threshold: float) -> list[str]:
    from core.stages.caption.hierarchy import name_subject

    return [judge(tree, name_subject(tree, m, threshold, list(labels), class_threshold), v)
            for v, m in zip(views, masses, strict=True)]


def _row(verdicts: Sequence[str], with_truth: int, **thresholds: float) -> dict:
    named = sum(x != "none" for x in verdicts)
    right = verdicts.count("right")
    return {**thresholds, "named": named, "right": right, "vague": verdicts.count("vague"),
            "wrong": verdicts.count("wrong"), "precision": round(right / named, 4) if named else 1.0,
            "recall": round(right / max(1, with_truth), 4)}


def calibrate(tree, labels: Sequence[str], views: Sequence[View], masses: np.ndarray,
              grid: Sequence[float] = GRID) -> dict:
    """The two gates: for every class gate of ``grid``, the lowest broad-node gate from which on (every higher
    one too) no view gets a wrong or vague subject; of those pairs, the one naming the most views right (then
    the lower gates). A class and a broad node get separate gates because single classes are confidently
    wrong more often (see :func:`core.stages.caption.hierarchy.name_subject`)."""
    with_truth = sum(bool(v.nodes) for v in views)
    nameable = masses[:, tree.nameable].max(axis=1)
    live = [i for i, top in enumerate(nameable) if top >= min(grid)]  # the rest name nothing at any gate
    views_live, masses_live = [views[i] for i in live], masses[live]
    idle = len(views) - len(live)
    pairs = []
    for class_gate in grid:
        ok = None
        for gate in reversed(grid):
            verdicts = _judge_all(tree, labels, views_live, masses_live, gate, class_gate) + ["none"] * idle
            if "wrong" in verdicts or "vague" in verdicts:
                break
            ok = _row(verdicts, with_truth, threshold=gate, class_threshold=class_gate)
        if ok is not None:
            pairs.append(ok)
    best = max(pairs, key=lambda r: (r["right"], -r["class_threshold"], -r["threshold"]))
    one_gate = [_row(_judge_all(tree, labels, views, masses, t, t), with_truth, threshold=t, class_threshold=t)
                for t in (0.0, *grid)]
    return {"threshold": best["threshold"], "class_threshold": best["class_threshold"], "chosen": best,
            "pairs": pairs, "one_gate_curve": one_gate,
            "broad_gate_curve": [_row(_judge_all(tree, labels, views, masses, t, best["class_threshold"]),
                                      with_truth, threshold=t, class_threshold=best["class_threshold"])
                                 for t in grid]}


def single_label_curve(views: Sequence[View], masses: np.ndarray, labels: Sequence[str], tree,
                       thresholds: Iterable[float]) -> list[dict]:
    """The gate before the hierarchy, for comparison: the top class alone, named at or above the threshold."""
    from core.stages.caption.hierarchy import Subject

    with_truth = sum(bool(v.nodes) for v in views)
    rows = []
    for t in thresholds:
        verdicts = []
        for v, m in zip(views, masses, strict=True):
            top = int(np.argmax(m[:tree.n_classes]))
            subject = Subject(top, labels[top], float(m[top]), True) if m[top] >= t else None
            verdicts.append(judge(tree, subject, v))
        rows.append(_row(verdicts, with_truth, threshold=t))
    return rows


def describe(tree, labels: Sequence[str], views: Sequence[View], masses: np.ndarray, threshold: float,
             class_threshold: float) -> list[dict]:
    """Per view at the gates: the top label, the subject named (if any), its summed score and the verdict."""
    from core.stages.caption.hierarchy import name_subject

    rows = []
    for v, m in zip(views, masses, strict=True):
        top = int(np.argmax(m[:tree.n_classes]))
        subject = name_subject(tree, m, threshold, list(labels), class_threshold)
        rows.append({"view": v.name, "top1": labels[top], "top1_score": round(float(m[top]), 4),
                     "subject": subject.noun if subject else "", "score": round(subject.score, 4) if subject else None,
                     "verdict": judge(tree, subject, v)})
    return rows


def subject_errors(pipeline, views: Sequence[View], min_confidence: float, min_class_confidence: float,
                   max_new_tokens: int = 40) -> dict:
    """Tweets for the whole photos and posters with the gates given: how many name a wrong subject."""
    from core.pipeline import PredictRequest
    from core.stages.grounding import labels_named
    from core.stages.llm import GenerationConfig

    captioner = pipeline.model("caption")
    old = captioner.min_confidence, captioner.min_class_confidence
    captioner.min_confidence, captioner.min_class_confidence = min_confidence, min_class_confidence
    rows = []
    try:
        for v in (v for v in views if v.whole):
            request = PredictRequest(company="Corner Shop", username="cornershop", date="2023-06-02 10:00",
                                     brand_kit=False)
            with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
                v.image.save(tmp.name)
                request.media = tmp.name
                prediction = pipeline.predict(request, GenerationConfig(max_new_tokens=max_new_tokens))
            a = prediction.analysis
            # A label of the photo's own truths ("moped" for the motorcycle) names what it shows: not wrong.
            allowed = " ".join([v.shows, *v.truths, a.ocr])
            wrong = labels_named(prediction.tweet, [label for label, _ in a.labels], allowed)
            rows.append({"view": v.name, "caption": a.caption, "guess": a.caption_guess, "tweet": prediction.tweet,
                         "wrong_subject": wrong})
    finally:
        captioner.min_confidence, captioner.min_class_confidence = old
    return {"min_confidence": min_confidence, "min_class_confidence": min_class_confidence, "n": len(rows),
            "wrong": sum(bool(r["wrong_subject"]) for r in rows), "rows": rows}


def _dump(result: dict) -> str:
    """JSON with one curve point or view a line: 1,600 views stay readable and diffable."""
    parts = []
    for key, value in result.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n  ".join(json.dumps(row, ensure_ascii=False) for row in value)
            parts.append(f" {json.dumps(key)}: [\n  {rows}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.devtools.caption_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/caption_gate.json"))
    parser.add_argument("--photo-dir", type=Path, action="append", default=[],
                        help="another folder to look for the labelled photos in")
    parser.add_argument("--tweets", action="store_true", help="also write tweets with the gate off and on (LLM)")
    args = parser.parse_args(argv)
    from core.pipeline import Pipeline
    from core.stages.caption import CLASS_SCORE, CONFIDENT_SCORE, hierarchy

    pipeline = Pipeline(profile="offline")
    captioner = pipeline.model("caption")
    tree, labels = hierarchy.load_tree(), list(captioner.labels)
    views = labelled_set(extra_dirs=args.photo_dir)
    held = photo_views(HELD_OUT, args.photo_dir, all_views=False)
    for v in [*views, *held]:
        v.nodes = resolve_truths(tree, labels, v.truths)
    masses, held_masses = class_masses(captioner, views), class_masses(captioner, held)
    result = calibrate(tree, labels, views, masses)
    chosen, gates = result["chosen"], (CONFIDENT_SCORE, CLASS_SCORE)
    shipped = _row(_judge_all(tree, labels, views, masses, *gates), sum(bool(v.nodes) for v in views),
                   threshold=gates[0], class_threshold=gates[1])
    result.update(
        shipped=shipped, n_views=len(views), n_photos=sum(v.whole for v in views),
        n_views_with_truth=sum(bool(v.nodes) for v in views),
        single_label_curve=single_label_curve(views, masses, labels, tree, (0.0, 0.5, 0.86, 0.9, 0.95, 0.98)),
        views=describe(tree, labels, views, masses, *gates), held_out=describe(tree, labels, held, held_masses, *gates))
    print(f"{len(views)} views of {result['n_photos']} photos, posters and shapes ({result['n_views_with_truth']} "
          f"with a truth); gates with no wrong or vague subject naming the most right: broad nodes "
          f"{chosen['threshold']}, classes {chosen['class_threshold']} (names {chosen['named']}, all right: "
          f"{chosen['recall']:.0%} of the views with a truth)")
    print(f"shipped gates {gates}: names {shipped['named']}, right {shipped['right']}, vague {shipped['vague']}, "
          f"wrong {shipped['wrong']}")
    for row in result["held_out"]:
        print(f"held out {row['view']}: {row['subject'] or '-'} ({row['score']}) {row['verdict']}; "
              f"top-1 {row['top1']} {row['top1_score']}")
    if args.tweets:
        result["before"] = subject_errors(pipeline, views, 0.0, 0.0)
        result["after"] = subject_errors(pipeline, views, *gates)
        for key in ("before", "after"):
            r = result[key]
            print(f"gates {'off' if key == 'before' else 'on'}: {r['wrong']} of {r['n']} tweets name a wrong subject")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_dump(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
