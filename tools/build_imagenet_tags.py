"""Regenerate transforms/data/imagenet_tags.json: ImageNet-1k classes -> everyday tags.

Each class gives its own readable name, plus the everyday group tags listed below
(ranges follow ImageNet's WordNet order), plus ``nodes``: every WordNet ancestor of the classes
that has a word people use (its most frequent lemma whose first noun sense it is, among the
GloVe vocabulary's ``COMMON_RANK`` most frequent words; top nodes such as entity or artifact
left out), with the classes below it. The tagger decodes over these nodes (transforms/stages/tagger.py).

Needs (only to regenerate) what tools/build_wordnet_table.py needs (Debian's wordnet-base,
nltk, timm's imagenet_synsets.txt). Run: python tools/build_imagenet_tags.py [--timm_synsets PATH]
"""

import argparse
import json
import os
from pathlib import Path

from build_wordnet_table import (
    ABSTRACT,
    COCO_SENSES,
    ancestors,
    group_sense,
    primary_words,
    timm_synsets,
    wordnet,
)
from torchvision.models import ResNet50_Weights

COMMON_RANK = 35_000  # a node's word must be this common in the GloVe vocabulary (frequency order)
# Node words that are true but read oddly as a photo's tag (jargon, or a sense few mean by it),
# reviewed by hand over the whole list; such a node is left unnamed (never renamed by a rarer lemma).
UNFIT_NODES = {
    "placental", "chordate", "vertebrate", "invertebrate", "arthropod", "ruminant", "passerine",
    "oscine", "carnivore", "ungulate", "hoofed mammal", "canine", "feline", "bovine", "herb",
    "angiosperm", "organ", "structure", "covering", "device", "instrument", "container",
    "implement", "equipment", "commodity", "goods", "product", "creation", "whole", "object",
    "matter", "unit", "system", "facility", "mechanism", "article", "ware", "material", "solid",
    "substance", "way", "location", "region", "body", "shape", "formation", "elevation", "vessel",
    "craft", "conveyance", "adult", "worker", "peer", "expert", "leader", "professional",
    "enrollee", "domestic animal", "working dog", "gun dog", "toy dog", "guard dog", "sheep dog",
    "wild dog", "protective cover", "solid food", "produce", "street drug", "drug", "part", "piece",
    "stick", "supporting structure", "armor plate", "white goods", "barrier", "housing",
    "cloth covering", "toilet articles", "associate", "automatic", "murphy", "medium", "works",
    "cover", "surface", "horizontal surface", "flat solid", "round shape", "geographic point",
    "participant", "contestant", "structural member", "brace", "rig", "signal", "feed",
    "wrapping", "rod", "rack", "trap", "warmer", "filter", "emblem", "public press",
    "print media", "false fruit", "double reed", "data input device", "communication system",
    "electrical device", "electronic device", "electronic equipment", "business establishment",
    "soft goods", "wall unit", "control surface", "rotating mechanism", "lifting device",
    "signaling device", "visual signal", "medical dressing", "light source", "textile",
    "simple machine", "game equipment", "sports implement", "natural depression", "platform",
    "landing place", "workplace", "medication", "magnetic disc", "memory device", "apparatus",
    "defensive structure", "penal facility", "correctional institution", "cosmetic",
    "decoration", "acoustic device", "breathing device", "cleaning device", "measuring device",
    "optical device", "scientific instrument", "medical instrument", "cutting implement",
    "edge tool", "writing implement", "free weight", "main course", "snack food", "false hair",
    "storage tank", "parcel", "player", "explorer", "diver", "athlete", "food turner",
    "bed clothing", "floor cover", "hand wear", "protective garment", "outer garment",
    "building complex", "armored vehicle", "portion",
    "lodging", "paraphernalia", "setup", "accessory", "connector", "jock", "signaling", "fabric",
    "ornament", "movable barrier", "bath linen", "household linen", "breathing machine",
    "exercising weight", "bedding", "dwelling", "shelter", "gator", "religious residence",
    "penal institution", "natural spring", "sea boat", "fish duck", "input device",
    "storage device", "telecom equipment", "cutting tool", "attire", "clothes",
    # WordNet files these classes under a word a person would not use for them: a monastery or
    # a palace is no "house", a coral reef no "ridge" (both seen on the photo set's tune half),
    # a rain barrel no "pool", a space bar no "lever", a space shuttle no "satellite", a seat
    # belt no "life belt", guacamole and chocolate sauce no "seasoning".
    "house", "ridge", "pool", "lever", "satellite", "life belt", "seasoning",
}  # fmt: skip

# Reviewed by hand: ImageNet classes whose pictures show more than their WordNet sense, so that
# their own name, and the WordNet words between it and what the pictures show, are wrong on many
# of them: moped pictures are motorcycles of every size, missile and projectile pictures are
# rockets of every kind (space launches too: no "weapon"), palace and monastery pictures are
# grand old buildings of every kind (on the photo set's tune half: 3 and 4 wrong tags, on a
# temple, an amphitheatre, a gate, a cathedral, a fort). The tagger names and places each by the
# sense its pictures show (its groups above still hold); None: by none (solar dish pictures are
# solar panels too, 5 wrong on the tune half, and no word above it fits both).
CLASS_SENSES: dict[str, str | None] = {
    "moped": "motorcycle.n.01", "missile": "rocket.n.01", "projectile": "rocket.n.01",
    "palace": "building.n.01", "monastery": "building.n.01", "solar dish": None,
}

RANGES = {
    "animal": ["0-397"],
    "fish": ["0-6", "389-397"],
    "shark": ["2-4"],
    "bird": ["7-24", "80-100", "127-146"],
    "amphibian": ["25-32"],
    "frog": ["30-32"],
    "turtle": ["33-37"],
    "lizard": ["38-48"],
    "crocodile": ["49-50"],
    "snake": ["52-68"],
    "reptile": ["33-68"],
    "spider": ["72-77"],
    "crab": ["118-121", "125"],
    "lobster": ["122-123"],
    "whale": ["147-148"],
    "mammal": ["101-106", "147-150", "151-299", "330-388"],
    "dog": ["151-268"],
    "wolf": ["269-271"],
    "fox": ["277-280"],
    "cat": ["281-285"],
    "big cat": ["286-293"],
    "bear": ["294-297"],
    "insect": ["300-326"],
    "beetle": ["300-307"],
    "butterfly": ["321-326"],
    "rabbit": ["330-332"],
    "rodent": ["333", "335-338"],
    "horse": ["339"],
    "pig": ["341-343"],
    "cattle": ["345-347"],
    "sheep": ["348-349"],
    "antelope": ["351-353"],
    "ape": ["365-369"],
    "monkey": ["370-382"],
    "primate": ["365-384"],
    "elephant": ["101", "385-386"],
    "panda": ["387-388"],
    "food": ["924-935", "959-965"],
    "vegetable": ["936-946"],
    "fruit": ["948-957"],
    "fungus": ["991-997"],
    "mushroom": ["947", "992", "997"],
}

NAMES = {
    "car": ["beach wagon", "cab", "convertible", "jeep", "limousine", "minivan", "Model T",
            "racer", "sports car", "police van", "ambulance"],
    "truck": ["fire engine", "garbage truck", "pickup", "tow truck", "trailer truck", "moving van"],
    "bus": ["minibus", "school bus", "trolleybus"],
    "train": ["bullet train", "electric locomotive", "steam locomotive", "freight car",
              "passenger car", "streetcar"],
    "motorcycle": ["moped", "motor scooter"],
    "bicycle": ["bicycle-built-for-two", "mountain bike", "tricycle", "unicycle"],
    "boat": ["canoe", "catamaran", "fireboat", "gondola", "lifeboat", "speedboat", "trimaran",
             "yawl", "schooner", "pirate", "container ship", "liner", "aircraft carrier",
             "submarine", "paddlewheel"],
    "ship": ["container ship", "liner", "aircraft carrier", "pirate", "schooner"],
    "airplane": ["airliner", "warplane", "wing"],
    "rocket": ["missile", "projectile", "space shuttle"],
    "drink": ["red wine", "espresso", "eggnog"],
    "coffee": ["espresso"],
    "wine": ["red wine", "wine bottle"],
    "flower": ["daisy", "yellow lady's slipper"],
    "landscape": ["alp", "cliff", "coral reef", "geyser", "lakeside", "promontory", "sandbar",
                  "seashore", "valley", "volcano"],
    "mountain": ["alp", "volcano", "valley"],
    "beach": ["seashore", "sandbar"],
    "sea": ["seashore", "sandbar", "coral reef", "promontory"],
    "lake": ["lakeside"],
    "person": ["ballplayer", "groom", "scuba diver"],
    "clothing": ["academic gown", "mortarboard", "military uniform", "vestment", "Windsor tie",
                 "bow tie", "suit", "jersey", "sweatshirt", "cardigan", "trench coat", "fur coat",
                 "lab coat", "kimono", "abaya", "poncho", "cloak", "pajama", "jean", "miniskirt",
                 "swimming trunks", "bikini", "maillot", "apron", "stole", "cowboy hat",
                 "sombrero", "bonnet", "cowboy boot", "running shoe", "sandal", "Loafer"],
    "tie": ["Windsor tie", "bow tie"],
    "hat": ["cowboy hat", "sombrero", "bonnet", "mortarboard", "shower cap"],
    "shoe": ["cowboy boot", "clog", "running shoe", "sandal", "Loafer"],
    "furniture": ["bookcase", "chiffonier", "china cabinet", "desk", "dining table",
                  "entertainment center", "folding chair", "four-poster", "rocking chair",
                  "studio couch", "throne", "barber chair", "park bench", "wardrobe", "chest",
                  "cradle", "crib", "medicine chest", "bassinet"],
    "chair": ["folding chair", "rocking chair", "barber chair", "throne"],
    "table": ["dining table", "desk", "pool table"],
    "bed": ["four-poster", "studio couch", "crib", "cradle", "bassinet"],
    "camera": ["reflex camera", "Polaroid camera"],
    "building": ["church", "mosque", "palace", "monastery", "castle", "library", "cinema",
                 "restaurant", "bakery", "barbershop", "bookshop", "butcher shop",
                 "confectionery", "shoe shop", "tobacco shop", "toyshop", "grocery store",
                 "greenhouse", "boathouse", "planetarium", "prison", "dome", "stupa",
                 "bell cote", "thatch", "yurt", "barn", "water tower", "beacon"],
    "bridge": ["steel arch bridge", "suspension bridge", "viaduct"],
    "computer": ["desktop computer", "laptop", "notebook", "hand-held computer"],
    "phone": ["cellular telephone", "dial telephone", "pay-phone"],
    "musical instrument": ["accordion", "acoustic guitar", "banjo", "bassoon", "cello", "cornet",
                           "drum", "electric guitar", "flute", "French horn", "gong",
                           "grand piano", "harmonica", "harp", "maraca", "marimba", "oboe",
                           "ocarina", "organ", "panpipe", "sax", "steel drum", "trombone",
                           "upright", "violin", "chime"],
    "guitar": ["acoustic guitar", "electric guitar"],
    "piano": ["grand piano", "upright"],
    "ball": ["baseball", "basketball", "croquet ball", "golf ball", "ping-pong ball",
             "rugby ball", "soccer ball", "tennis ball", "volleyball"],
    "clock": ["analog clock", "digital clock", "wall clock"],
    "bottle": ["beer bottle", "pill bottle", "pop bottle", "water bottle", "wine bottle",
               "water jug", "whiskey jug"],
    "cup": ["cup", "coffee mug", "measuring cup"],
    "vehicle": ["go-kart", "golfcart", "snowmobile", "tractor", "forklift", "harvester",
                "recreational vehicle", "tank", "half track", "amphibian", "snowplow",
                "jinrikisha", "horse cart", "oxcart", "moped", "motor scooter"],
}


def _expand(spec: str) -> list[int]:
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def build() -> dict:
    categories = ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
    index = {name: i for i, name in enumerate(categories)}
    groups: dict[str, list[int]] = {}
    for tag, specs in RANGES.items():
        groups[tag] = sorted({i for s in specs for i in _expand(s)})
    for tag, names in NAMES.items():
        missing = [n for n in names if n not in index]
        assert not missing, f"{tag}: not ImageNet class names: {missing}"
        groups.setdefault(tag, [])
        groups[tag] = sorted(set(groups[tag]) | {index[n] for n in names})
    for vehicle in ("car", "truck", "bus", "train", "motorcycle", "bicycle"):
        groups["vehicle"] = sorted(set(groups["vehicle"]) | set(groups[vehicle]))
    classes = [name.lower() for name in categories]
    return {"source": "ImageNet-1k class names (torchvision order) + everyday groups + WordNet "
                      "3.0 ancestors (WordNet licence, see THIRD_PARTY.md)",
            "classes": classes, "groups": groups, **hierarchy(classes), "coco_support": coco_support()}


def hierarchy(classes: list[str]) -> dict:
    """``nodes``: every named WordNet ancestor of the ImageNet classes, word -> {synset, members};
    ``unfit_words``: the reviewed words left unnamed (UNFIT_NODES), so that no other stage
    (expansion) writes them either; ``unnamed_classes``: the classes the tagger does not name by
    their own word (CLASS_SENSES), placed by the sense their pictures show."""
    from transforms.knowledge.vectors import load_vectors

    rank = load_vectors().key_to_index
    wn = wordnet()
    synsets = [wn.synset_from_pos_and_offset("n", int(w[1:])) for w in timm_synsets().read_text().split()]

    def common(word: str) -> int | None:
        ranks = [rank.get(t) for t in word.split()]
        worst = max((r if r is not None else 10**9) for r in ranks)
        return worst if worst < COMMON_RANK else None

    members: dict[str, set[int]] = {}
    for i, synset in enumerate(synsets):
        placed = ancestors(synset)
        if classes[i] in CLASS_SENSES:
            sense = CLASS_SENSES[classes[i]]
            placed = [wn.synset(sense), *ancestors(wn.synset(sense))] if sense else []
        for node in placed:
            members.setdefault(node.name(), set()).add(i)
    nodes: dict[str, dict] = {}
    for name, below in sorted(members.items(), key=lambda kv: len(kv[1])):
        if name in ABSTRACT:
            continue
        words = [(r, w) for w in primary_words(wn, wn.synset(name)) if (r := common(w)) is not None]
        if not words:
            continue
        word = min(words)[1]  # the most frequent lemma names the node; an unfit one leaves it unnamed
        if word in UNFIT_NODES or word in classes or word in nodes:  # another sense of the same word: keep the more specific one
            continue
        nodes[word] = {"synset": name, "members": sorted(below)}
    unnamed = sorted(i for i, name in enumerate(classes) if name in CLASS_SENSES)
    assert len(unnamed) == len(CLASS_SENSES), "CLASS_SENSES: not ImageNet class names"
    return {"nodes": nodes, "unfit_words": sorted(UNFIT_NODES), "unnamed_classes": unnamed}


# Reviewed by hand: ImageNet classes that show a COCO label whose own WordNet sense has none
# below it (ImageNet's horse is "sorrel", its cow "ox"), what people wear for "person"
# (ImageNet has 3 person classes), and the clothing a tie is part of (it is small in most photos).
SUPPORT_ALSO = {
    "person": ["clothing.n.01"], "tie": ["clothing.n.01"], "horse": ["sorrel.n.05"], "cow": ["ox.n.01"],
    "sheep": ["ram.n.05", "bighorn.n.02"], "motorcycle": ["moped.n.01", "motor_scooter.n.01"],
    "cup": ["cup.n.06", "coffee_mug.n.01", "espresso.n.01"],
    "train": ["locomotive.n.01", "passenger_car.n.01", "freight_car.n.01", "streetcar.n.01"],
}


def coco_support() -> dict[str, list[int]]:
    """COCO label -> the ImageNet classes whose probability agrees with a box of that label:
    the classes below the label's WordNet sense, plus the reviewed SUPPORT_ALSO; none when the
    label has no classes (the classifier then neither backs nor doubts the box)."""
    from transforms.stages.detector import COCO80

    wn = wordnet()
    synsets = [wn.synset_from_pos_and_offset("n", int(w[1:])) for w in timm_synsets().read_text().split()]
    below: dict[str, set[int]] = {}
    for i, synset in enumerate(synsets):
        for node in [synset, *ancestors(synset)]:
            below.setdefault(node.name(), set()).add(i)
    out = {}
    for label in COCO80:
        sense = wn.synset(COCO_SENSES[label]) if label in COCO_SENSES else group_sense(wn, label, [])
        members = set(below.get(sense.name(), ())) if sense is not None else set()
        for extra in SUPPORT_ALSO.get(label, []):
            members |= below[extra]
        out[label] = sorted(members)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timm_synsets", type=Path, default=None,
                        help="timm's imagenet_synsets.txt (default: $TIMM_SYNSETS or the installed timm's).")
    args = parser.parse_args()
    if args.timm_synsets:
        os.environ["TIMM_SYNSETS"] = str(args.timm_synsets)
    out = Path(__file__).resolve().parents[1] / "transforms" / "data" / "imagenet_tags.json"
    out.write_text(json.dumps(build(), indent=0, sort_keys=True) + "\n")
    print(f"wrote {out}")
