"""Regenerate transforms/data/wordnet_tags.json: what each tag word implies, from WordNet 3.0.

Precise expansion and zero-shot hypernym handling read this table at run time, so workers
need neither NLTK nor the WordNet database (the table is about 0.5 MB; WordNet itself is
28 MB). Every entry is tied to one sense, chosen without guessing where possible:
- an ImageNet-1k class is its own synset (its wnid, in torchvision order, from timm's list);
- an everyday group of the tag table ("cat", "vehicle") is the sense of that word that is an
  ancestor of most of its member classes;
- a named node of the tag table's hierarchy ("new world monkey", "baked goods") is its node's
  synset;
- a COCO label takes the tag table's sense of the same word, else a hand-checked sense below;
- any other word (``--words FILE``, e.g. a TaggerNet vocabulary) takes WordNet's first noun sense.

For each word the table keeps its synonyms (the synset's other lemmas), its hypernyms nearest
first (abstract top nodes such as entity/object/whole/artifact left out) and the synset ids of
all its ancestors (used to tell mutually exclusive kinds apart, e.g. a person from a monkey).
For ImageNet classes it also keeps the ancestor words, so a vocabulary word such as "animal"
can be scored as the summed probability of every class below it.

Needs (only to regenerate): Debian's wordnet-base (/usr/share/wordnet), nltk, and timm's
imagenet_synsets.txt (``pip download --no-deps timm`` and unzip, or an installed timm).

    python tools/build_wordnet_table.py [--timm_synsets PATH] [--words FILE]
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transforms.stages.detector import COCO80  # noqa: E402

# Too general (or too technical) to be a useful tag for a photo: they give no words.
ABSTRACT = {
    "entity.n.01", "physical_entity.n.01", "abstraction.n.06", "object.n.01", "whole.n.02",
    "living_thing.n.01", "organism.n.01", "causal_agent.n.01", "artifact.n.01",
    "instrumentality.n.03", "matter.n.03", "substance.n.01", "substance.n.07", "thing.n.12",
    "unit.n.03", "part.n.02", "group.n.01", "attribute.n.02", "psychological_feature.n.01",
    "event.n.01", "act.n.02", "relation.n.01", "measure.n.02", "commodity.n.01",
    "consumer_goods.n.01", "material.n.01", "solid.n.01", "fluid.n.01", "liquid.n.01",
    "equipment.n.01", "implement.n.01", "article.n.02", "ware.n.01", "covering.n.02",
    "creation.n.02", "product.n.02", "structure.n.01", "construction.n.04", "way.n.06",
    "location.n.01", "region.n.03", "geological_formation.n.01", "natural_object.n.01",
    "natural_elevation.n.01", "elevation.n.08", "body.n.09", "shape.n.02", "artefact.n.01",
    "system.n.01", "facility.n.01", "device.n.01", "container.n.01", "conveyance.n.03",
    "foodstuff.n.02", "food.n.01", "nutriment.n.01", "plant_organ.n.01", "plant_part.n.01",
    "reproductive_structure.n.01", "vascular_plant.n.01", "herb.n.01", "angiosperm.n.01",
    "spermatophyte.n.01", "placental.n.01", "chordate.n.01", "vertebrate.n.01", "invertebrate.n.01",
    "arthropod.n.01", "mechanism.n.05", "mechanical_device.n.01", "craft.n.02", "vessel.n.03",
    "self-propelled_vehicle.n.01", "wheeled_vehicle.n.01", "motor_vehicle.n.01", "adult.n.01",
    "worker.n.01", "skilled_worker.n.01", "peer.n.01", "expert.n.01", "leader.n.01",
    "professional.n.01", "serviceman.n.01", "military_officer.n.01", "enrollee.n.01",
}  # fmt: skip

# Lemmas that are true but that no one would write as a tag (pronouns, archaisms, jargon,
# trade terms); phrases with "of" ("article of clothing") are left out too.
UNFIT = {
    "somebody", "someone", "mortal", "soul", "beast", "brute", "animate being", "component part",
    "component", "constituent", "element", "wearable", "habiliment", "vesture", "green goods",
    "green groceries", "garden truck", "durables", "durable goods", "consumer durables",
    "impedimenta", "obstruction", "outlet", "veg", "instrument", "drinkable", "potable",
    "nutrient", "stuff", "wear", "lid", "chapeau", "java",
}  # fmt: skip


def fit_for_tags(word: str) -> bool:
    return word not in UNFIT and " of " not in f" {word} "


# COCO labels whose first WordNet noun sense is not the object in the photo.
COCO_SENSES = {
    "mouse": "mouse.n.04", "tie": "necktie.n.01", "remote": "remote_control.n.01",
    "tv": "television_receiver.n.01", "keyboard": "computer_keyboard.n.01",
    "orange": "orange.n.01", "apple": "apple.n.01", "cake": "cake.n.03", "book": "book.n.02",
    "sink": "sink.n.01", "bowl": "bowl.n.03", "kite": "kite.n.03", "bench": "bench.n.01",
    "bed": "bed.n.01", "couch": "sofa.n.01", "chair": "chair.n.01", "cup": "cup.n.01",
    "fork": "fork.n.01", "knife": "knife.n.01", "spoon": "spoon.n.01", "bus": "bus.n.01",
    "train": "train.n.01", "truck": "truck.n.01", "boat": "boat.n.01", "car": "car.n.01",
    "bird": "bird.n.01", "cat": "cat.n.01", "dog": "dog.n.01", "horse": "horse.n.01",
    "sheep": "sheep.n.01", "cow": "cow.n.01", "bear": "bear.n.01", "person": "person.n.01",
    "clock": "clock.n.01", "vase": "vase.n.01", "scissors": "scissors.n.01", "oven": "oven.n.01",
    "toaster": "toaster.n.02", "laptop": "laptop.n.01", "pizza": "pizza.n.01",
    "sandwich": "sandwich.n.01", "banana": "banana.n.02", "broccoli": "broccoli.n.02",
    "carrot": "carrot.n.03", "donut": "doughnut.n.02", "hot dog": "hotdog.n.02",
    "skis": "ski.n.01", "frisbee": "frisbee.n.01", "umbrella": "umbrella.n.01",
    "handbag": "bag.n.04", "suitcase": "bag.n.06", "backpack": "backpack.n.01",
    "bottle": "bottle.n.01", "wine glass": "wineglass.n.01", "toilet": "toilet.n.02",
    "dining table": "dining_table.n.01", "potted plant": "pot_plant.n.01",
    "cell phone": "cellular_telephone.n.01", "teddy bear": "teddy.n.01",
    "hair drier": "hand_blower.n.01", "toothbrush": "toothbrush.n.01",
    "refrigerator": "electric_refrigerator.n.01", "microwave": "microwave.n.02",
    "sports ball": "ball.n.01", "baseball bat": "baseball_bat.n.01",
    "baseball glove": "baseball_glove.n.01", "tennis racket": "tennis_racket.n.01",
    "traffic light": "traffic_light.n.01", "fire hydrant": "fireplug.n.01",
    "stop sign": "street_sign.n.01", "parking meter": "parking_meter.n.01",
    "airplane": "airplane.n.01", "motorcycle": "motorcycle.n.01", "bicycle": "bicycle.n.01",
    "elephant": "elephant.n.01", "zebra": "zebra.n.01", "giraffe": "giraffe.n.01",
    "snowboard": "snowboard.n.01", "skateboard": "skateboard.n.01", "surfboard": "surfboard.n.01",
}  # fmt: skip


# The everyday head's words (transforms/data/everyday) that no ImageNet group or COCO label gives a
# sense, each the sense its labels mean: plants and trees as living things (never a factory or a
# diagram), a cloud in the sky, the water of a sea or lake, snow lying on the ground. "indoor" has
# no noun sense.
EVERYDAY_SENSES = {
    "plant": "plant.n.02", "tree": "tree.n.01", "grass": "grass.n.01", "cloud": "cloud.n.02",
    "sky": "sky.n.01", "water": "body_of_water.n.01", "night": "night.n.01", "road": "road.n.01",
    "snow": "snow.n.02",
}  # fmt: skip


# MIRFLICKR-25k's annotated concepts, for TaggerNet models trained on it (first noun sense).
MIRFLICKR_WORDS = ["animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor", "lake", "male", "night", "people", "plant", "life", "portrait", "river", "sea", "sky", "structures", "sunset", "transport", "tree", "water"]


def wordnet(folder: Path = Path("/usr/share/wordnet")):
    """NLTK's WordNet reader over Debian's database files (NLTK wants lexnames and index.sense,
    which Debian leaves out; neither is used for synsets and hypernyms)."""
    import nltk

    scratch = tempfile.mkdtemp(prefix="wordnet-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)  # 28 MB a process
    data = Path(scratch) / "nltk_data"
    root = data / "corpora" / "wordnet"
    root.mkdir(parents=True)
    for name in os.listdir(folder):
        if (folder / name).is_file():
            shutil.copy(folder / name, root)  # NLTK refuses symbolic and hard links out of its root
    (root / "index.sense").write_text("")
    lex = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]
    pos = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
    (root / "lexnames").write_text("".join(f"{i:02d}\t{n}\t{pos[n.split('.')[0]]}\n" for i, n in enumerate(lex)))
    nltk.data.path.insert(0, str(data))
    from nltk.corpus import wordnet as wn

    return wn


def timm_synsets(path: Path | None = None) -> Path:
    """timm's list of the 1000 ImageNet-1k wnids in model order: ``path``, $TIMM_SYNSETS, or
    the file inside an installed timm."""
    path = path or (Path(os.environ["TIMM_SYNSETS"]) if os.environ.get("TIMM_SYNSETS") else None)
    if path is None:
        spec = importlib.util.find_spec("timm")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("pass --timm_synsets PATH or set TIMM_SYNSETS (timm is not installed)")
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "_info" / "imagenet_synsets.txt"
    return path


def lemma_words(synset) -> list[str]:
    return [name.replace("_", " ").lower() for name in synset.lemma_names()]


def primary_words(wn, synset) -> list[str]:
    """The synset's lemmas whose most common noun sense is this synset: 'lid' is a lemma of
    hat.n.01 but means a cover first, 'java' means the island first; such lemmas are left out."""
    out = []
    for name in synset.lemma_names():
        senses = wn.synsets(name, "n")
        word = name.replace("_", " ").lower()
        if senses and senses[0] == synset and fit_for_tags(word):
            out.append(word)
    return out


def ancestors(synset) -> list:
    """Hypernyms (and instance hypernyms) breadth-first, nearest first, no repeats."""
    seen, order, frontier = set(), [], [synset]
    while frontier:
        nxt = []
        for s in frontier:
            for h in s.hypernyms() + s.instance_hypernyms():
                if h.name() not in seen:
                    seen.add(h.name())
                    order.append(h)
                    nxt.append(h)
        frontier = nxt
    return order


def useful_hypernyms(wn, synset) -> list[str]:
    """Hypernym words nearest first; abstract nodes (ABSTRACT) give no words."""
    words, frontier, seen = [], [synset], set()
    while frontier:
        nxt = []
        for s in frontier:
            for h in s.hypernyms() + s.instance_hypernyms():
                if h.name() in seen:
                    continue
                seen.add(h.name())
                if h.name() not in ABSTRACT:
                    words += [w for w in primary_words(wn, h) if w not in words]
                nxt.append(h)
        frontier = nxt
    return words


def entry(wn, synset, name: str) -> dict:
    return {
        "synset": synset.name(),
        "synonyms": [w for w in primary_words(wn, synset) if w != name],
        "hypernyms": useful_hypernyms(wn, synset),
        "ancestors": sorted({s.name() for s in ancestors(synset)}),
    }


def group_sense(wn, name: str, members: list, fallback_first: bool = True):
    """The sense of ``name`` that is an ancestor (or self) of most member synsets."""
    senses = wn.synsets(name.replace(" ", "_"), "n")
    if not senses:
        return None
    best, best_count = None, 0
    for sense in senses:
        count = sum(1 for m in members if m == sense or sense in ancestors(m))
        if count > best_count:
            best, best_count = sense, count
    return best if best is not None else (senses[0] if fallback_first else None)


def build(timm_synsets: Path, extra_words: list[str]) -> dict:
    wn = wordnet()
    table = json.loads((ROOT / "transforms" / "data" / "imagenet_tags.json").read_text())
    wnids = timm_synsets.read_text().split()
    assert len(wnids) == 1000, "expected the 1000 ImageNet-1k wnids"
    classes = [wn.synset_from_pos_and_offset("n", int(w[1:])) for w in wnids]
    words: dict[str, dict] = {}
    for name, synset in zip(table["classes"], classes, strict=True):
        words.setdefault(name, entry(wn, synset, name))
    for name, members in table["groups"].items():
        sense = group_sense(wn, name, [classes[i] for i in members])
        if sense is not None:
            words[name] = entry(wn, sense, name)
    for name, node in table["nodes"].items():
        if node.get("synset"):
            words.setdefault(name, entry(wn, wn.synset(node["synset"]), name))
    for name in COCO80:  # hand-checked senses win (ImageNet's class "cup" is a punch, n07930864)
        if name in COCO_SENSES:
            words[name] = entry(wn, wn.synset(COCO_SENSES[name]), name)
        elif name not in words and (sense := group_sense(wn, name, [])) is not None:
            words[name] = entry(wn, sense, name)
    for name, synset_name in EVERYDAY_SENSES.items():
        words.setdefault(name, entry(wn, wn.synset(synset_name), name))
    for name in extra_words:
        if name not in words:
            senses = wn.synsets(name.replace(" ", "_"), "n")
            if senses:
                words[name] = entry(wn, senses[0], name)
    imagenet = []
    for synset in classes:
        chain = [synset] + [s for s in ancestors(synset) if s.name() not in ABSTRACT]
        imagenet.append(sorted({w for s in chain for w in lemma_words(s)}))
    return {
        "source": "WordNet 3.0 (Princeton University; WordNet licence, see THIRD_PARTY.md) via "
                  "tools/build_wordnet_table.py; ImageNet wnids from timm",
        "imagenet_ancestor_words": imagenet,
        "words": words,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timm_synsets", type=Path, default=None,
                        help="timm/data/_info/imagenet_synsets.txt (default: from an installed timm)")
    parser.add_argument("--words", type=Path, default=None, help="extra words, one per line (first noun sense)")
    parser.add_argument("--output", type=Path, default=ROOT / "transforms" / "data" / "wordnet_tags.json")
    parser.add_argument("--add_only", action="store_true",
                        help="keep the output table's entries as they are and add only the words it lacks (NLTK "
                             "versions order a word's equally near hypernyms differently)")
    args = parser.parse_args()
    path = timm_synsets(args.timm_synsets)
    extra = list(MIRFLICKR_WORDS) + [w.strip().lower() for w in args.words.read_text().splitlines() if w.strip()] if args.words else []
    data = build(path, extra)
    if args.add_only:
        kept = json.loads(args.output.read_text())
        data = {**kept, "words": {**data["words"], **kept["words"]}}
    args.output.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {args.output}: {len(data['words'])} words, {args.output.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
