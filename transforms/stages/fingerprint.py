"""Fingerprint stage: ``content_sha256`` and ``phash`` on every tags row, to find duplicates.

- ``content_sha256``: sha256 of the fetched bytes; equal values are the same file, whatever URLs
  served it.
- ``phash``: a 64-bit perceptual hash (pHash, Zauner 2010, as the imagehash library computes
  it): the image as 32x32 grey, its 2-D DCT-II, the 8x8 lowest frequencies, one bit per
  coefficient above their median. Resized, recompressed or lightly edited copies differ in a few
  bits; different pictures in about half. Stored as a signed 64-bit integer (the bits as they
  are); Hamming distance = ``bit_count(xor(a, b))`` in DuckDB, BIT_COUNT(a ^ b) in BigQuery.

The DCT is scipy's (scipy.fft.dctn, DCT-II): its scale is the same for every coefficient, so the
bits equal those of the textbook cosine basis (tests/test_fingerprint.py checks it).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from PIL import Image

from transforms.core.registry import Column, Stage, register

SIZE, LOW = 32, 8


def phash(image: Image.Image) -> int:
    """64-bit perceptual hash as a signed int64 value."""
    from scipy.fft import dctn

    grey = np.asarray(image.convert("L").resize((SIZE, SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
    low = dctn(grey, type=2)[:LOW, :LOW]
    bits = (low > np.median(low)).flatten()
    value = int("".join("1" if b else "0" for b in bits), 2)
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


STAGE = register(Stage(
    name="fingerprint", reads=("data", "image"), writes=("content_sha256", "phash"),
    build="transforms.handlers.fingerprint:build", bench_batch=64,
    columns=(
        Column("content_sha256", pa.string(), "sha256 of the fetched bytes, hex: exact duplicates across URLs"),
        Column("phash", pa.int64(), "64-bit perceptual hash (DCT pHash) as a signed integer: near "
               "duplicates differ in few bits"),
    ),
))
