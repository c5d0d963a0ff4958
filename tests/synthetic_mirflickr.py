"""A miniature MIRFLICKR-25k in the exact published layout, whose pixels determine its labels.

Each image draws a background (sky, night, sunset or indoor) and, independently, objects
(sea, trees, flowers, buildings, clouds, a car); the annotation files list exactly the images
showing each concept, so a tagger can only score well by seeing them. Layout:
  ROOT/mirflickr/imN.jpg, ROOT/mirflickr/meta/tags/tagsN.txt, ROOT/annotations/<label>.txt
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.training.datasets import ANNOTATED_24

BACKGROUNDS = {
    "sky": ((90, 150, 235), (190, 220, 250)),
    "night": ((5, 5, 25), (25, 25, 60)),
    "sunset": ((250, 120, 40), (120, 40, 90)),
    "indoor": ((200, 180, 150), (120, 90, 60)),
}
OBJECTS = ("sea", "tree", "flower", "structures", "clouds", "car")
LABELS_OF = {
    "sky": ["sky"], "night": ["night"], "sunset": ["sunset", "sky"], "indoor": ["indoor"],
    "sea": ["sea", "water"], "tree": ["tree", "plant_life"], "flower": ["flower", "plant_life"],
    "structures": ["structures"], "clouds": ["clouds"], "car": ["car", "transport"],
}  # fmt: skip
USER_TAGS = {"sky": "blue", "sea": "ocean", "tree": "green", "flower": "garden",
             "structures": "city", "car": "auto", "night": "dark", "sunset": "evening"}
NOISE_TAGS = ("nikon", "canon", "explore", "2008", "friends", "holiday")


def _gradient(w: int, h: int, top, bottom) -> np.ndarray:
    t = np.linspace(0, 1, h)[:, None, None]
    return (np.array(top)[None, None] * (1 - t) + np.array(bottom)[None, None] * t).repeat(w, 1)


def draw_scene(rng: np.random.Generator, background: str, objects: set[str], w: int = 192, h: int = 144):
    arr = _gradient(w, h, *BACKGROUNDS[background]) + rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    if "clouds" in objects:
        for _ in range(3):
            x, y = rng.integers(0, w - 50), rng.integers(0, h // 3)
            d.ellipse([x, y, x + 50, y + 20], fill=(250, 250, 250))
    if "sea" in objects:
        top = int(h * 0.62)
        d.rectangle([0, top, w, h], fill=(20, 70, 160))
        for y in range(top + 4, h, 7):
            d.line([0, y, w, y + rng.integers(-2, 3)], fill=(120, 170, 230), width=2)
    if "structures" in objects:
        for _ in range(rng.integers(2, 4)):
            x = rng.integers(0, w - 40)
            top = rng.integers(h // 5, h // 2)
            d.rectangle([x, top, x + 36, h], fill=(110, 110, 120), outline=(60, 60, 60))
            for wy in range(top + 6, h - 6, 12):
                for wx in (x + 6, x + 20):
                    d.rectangle([wx, wy, wx + 8, wy + 6], fill=(240, 230, 120))
    if "tree" in objects:
        for _ in range(rng.integers(1, 3)):
            x = rng.integers(10, w - 40)
            d.rectangle([x + 14, h - 40, x + 22, h], fill=(90, 60, 30))
            d.ellipse([x, h - 85, x + 36, h - 35], fill=(30, 140, 40))
    if "flower" in objects:
        for _ in range(5):
            x, y = rng.integers(10, w - 10), rng.integers(h // 2, h - 10)
            colour = [(230, 40, 120), (250, 220, 30), (200, 30, 30)][rng.integers(0, 3)]
            for dx, dy in ((-5, 0), (5, 0), (0, -5), (0, 5)):
                d.ellipse([x + dx - 4, y + dy - 4, x + dx + 4, y + dy + 4], fill=colour)
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(255, 255, 200))
    if "car" in objects:
        x, y = rng.integers(5, w - 75), h - 32
        colour = [(200, 20, 20), (20, 40, 200), (240, 240, 240)][rng.integers(0, 3)]
        d.rectangle([x, y, x + 70, y + 18], fill=colour)
        d.rectangle([x + 15, y - 12, x + 55, y], fill=colour)
        for cx in (x + 14, x + 56):
            d.ellipse([cx - 8, y + 12, cx + 8, y + 28], fill=(15, 15, 15))
    return img


def make_dataset(root: Path, n: int = 300, seed: int = 0) -> dict[int, list[str]]:
    """Write the dataset; returns image number -> labels."""
    rng = np.random.default_rng(seed)
    images = root / "mirflickr"
    (images / "meta" / "tags").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    truth: dict[int, list[str]] = {}
    for number in range(1, n + 1):
        background = list(BACKGROUNDS)[rng.integers(0, len(BACKGROUNDS))]
        objects = {o for o in OBJECTS if rng.random() < 0.35}
        if background == "indoor":
            objects -= {"clouds", "sea"}
        if background != "sky":
            objects.discard("clouds")
        draw_scene(rng, background, objects).save(images / f"im{number}.jpg", quality=90)
        labels = sorted({lab for key in (background, *objects) for lab in LABELS_OF[key]})
        truth[number] = labels
        tags = [USER_TAGS[k] for k in (background, *objects) if k in USER_TAGS and rng.random() < 0.8]
        tags += list(rng.choice(NOISE_TAGS, size=rng.integers(0, 3), replace=False))
        (images / "meta" / "tags" / f"tags{number}.txt").write_text("\n".join(tags) + "\n")
    for label in ANNOTATED_24:
        numbers = [str(k) for k, labs in truth.items() if label in labs]
        (root / "annotations" / f"{label}.txt").write_text("\n".join(numbers) + ("\n" if numbers else ""))
    # 'relevant' subsets for a few concepts, as the archive has for 14 of them.
    for label in ("clouds", "sea", "tree", "car"):
        numbers = [str(k) for k, labs in truth.items() if label in labs and k % 2 == 0]
        (root / "annotations" / f"{label}_r1.txt").write_text("\n".join(numbers) + "\n")
    (root / "annotations" / "README.txt").write_text("synthetic MIRFLICKR annotations\n")
    return truth
