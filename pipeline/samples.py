"""Real photos that ship inside installed packages, for the demo and the tests.

scikit-image's data (chelsea the cat, coffee, astronaut, rocket, camera, motorcycle),
matplotlib's grace_hopper.jpg and scikit-learn's china.jpg and flower.jpg. Located by
package directory only, so nothing is downloaded.
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


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def sample_photos() -> dict[str, Path]:
    """Name -> path of every sample photo whose package is installed."""
    found = {}
    for name, (package, rel) in _SOURCES.items():
        root = _package_dir(package)
        if root is not None and (root / rel).is_file():
            found[name] = root / rel
    return found
