"""Pickling cost of one element on the hot path: a plain dict (what the TypedDict ``Element`` is
at run time) against a slotted dataclass with the same fields. Beam pickles elements between
fused stages on some runners and on every shuffle, so this is the cost a typed contract adds.

    .venv/bin/python benchmarks/element_pickle.py
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image


@dataclass(slots=True)
class ElementDC:
    uri: str
    image_id: str
    image: Any = None
    width: int = 0
    height: int = 0
    features: Any = None
    imagenet_probs: Any = None
    tags: list = field(default_factory=list)


def per_element_us(obj: Any, repeat: int = 2000) -> tuple[float, int]:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    start = time.perf_counter()
    for _ in range(repeat):
        pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    return (time.perf_counter() - start) / repeat * 1e6, len(data)


def main() -> None:
    from pipeline.commands import Parser  # no options: a mistyped one is refused, not ignored

    Parser("benchmarks/element_pickle.py", __doc__ or "").parse_args()
    rng = np.random.default_rng(0)
    common: dict[str, Any] = dict(uri="gs://bucket/images/000123.jpg", image_id="0" * 32, width=1600, height=1200,
                  features=rng.random(1280, dtype=np.float32), imagenet_probs=rng.random(1000, dtype=np.float32),
                  tags=[{"name": "cat", "score": 0.9, "source": "tagger", "origin": None}] * 5)
    for label, image in (("with pixels (416x312 RGB)", Image.new("RGB", (416, 312))), ("after pixels dropped", None)):
        d = dict(common, image=image) if image is not None else dict(common)
        dc = ElementDC(**d)
        (t_dict, n_dict), (t_dc, n_dc) = per_element_us(d), per_element_us(dc)
        print(f"{label:<28} dict {t_dict:7.1f} us {n_dict:>7} B   dataclass {t_dc:7.1f} us {n_dc:>7} B   "
              f"ratio {t_dc / t_dict:.2f}")


if __name__ == "__main__":
    main()
