"""Real photos that ship inside installed packages, for the demo, the tests and ``make quality``.

The demo set: scikit-image's data (chelsea the cat, coffee, astronaut, rocket, camera,
motorcycle), matplotlib's grace_hopper.jpg and scikit-learn's china.jpg and flower.jpg. The
labelled quality set (pipeline/quality/data/quality_key.json) adds scikit-image's other real photos
(coins, moon, Hubble deep field, grass, gravel, brick, retina, the second motorcycle view),
imgaug's quokka.jpg and mahotas' luispedro.jpg (both installed with ``make setup``; imgaug
with --no-deps, its files are only located). Located by package directory only (no package
code is imported), so nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SOURCES = {
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "astronaut": ("skimage", "data/astronaut.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "camera": ("skimage", "data/camera.png"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}
_MORE = {
    "motorcycle_right": ("skimage", "data/motorcycle_right.png"),
    "coins": ("skimage", "data/coins.png"),
    "moon": ("skimage", "data/moon.png"),
    "hubble": ("skimage", "data/hubble_deep_field.jpg"),
    "grass": ("skimage", "data/grass.png"),
    "gravel": ("skimage", "data/gravel.png"),
    "brick": ("skimage", "data/brick.png"),
    "retina": ("skimage", "data/retina.jpg"),
    "quokka": ("imgaug", "quokka.jpg"),
    "luispedro": ("mahotas", "demos/data/luispedro.jpg"),
}


# The photo set's people (pipeline/quality/photo_set.py): sample assets of a face and a detection
# package, installed by make setup with --no-deps (files located, never imported). Kept apart
# from the lists above, which the int8 backbone's calibration and guard read.
_PEOPLE = {
    "friends": ("insightface", "data/images/t1.jpg"),
    "tom_hanks": ("insightface", "data/images/Tom_Hanks_54745.png"),
    "mask_blue": ("insightface", "data/images/mask_blue.jpg"),
    "mask_white": ("insightface", "data/images/mask_white.jpg"),
    "bus": ("ultralytics", "assets/bus.jpg"),
    "zidane": ("ultralytics", "assets/zidane.jpg"),
}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def sample_photos(everything: bool = False, people: bool = False) -> dict[str, Path]:
    """Name -> path of every demo photo (with ``everything``, every labelled photo too; with
    ``people``, only the photo set's people photos) whose package is installed."""
    found = {}
    for name, (package, rel) in (_PEOPLE if people else _SOURCES | _MORE if everything else _SOURCES).items():
        root = _package_dir(package)
        if root is not None and (root / rel).is_file():
            found[name] = root / rel
    return found
