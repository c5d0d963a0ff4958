"""Regenerate transforms/data/imagenet_tags.json: ImageNet-1k classes -> everyday tags.

Each class gives its own readable name, plus the everyday group tags listed below
(ranges follow ImageNet's WordNet order). Run: python tools/build_imagenet_tags.py
"""

import json
from pathlib import Path

from torchvision.models import ResNet50_Weights

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
    return {"source": "ImageNet-1k class names (torchvision order) + everyday groups",
            "classes": classes, "groups": groups}


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "transforms" / "data" / "imagenet_tags.json"
    out.write_text(json.dumps(build(), indent=0, sort_keys=True) + "\n")
    print(f"wrote {out}")
