"""Fingerprints: exact duplicates by content_sha256, near duplicates by the 64-bit pHash, end to
end on real photos, read back with pandas and DuckDB as the README shows."""

from __future__ import annotations

import io
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from PIL import Image

from pipeline import tag
from transforms.stages.fingerprint import hamming, phash

README = Path(__file__).resolve().parents[1] / "README.md"


def _resized_recompressed(path: Path) -> bytes:
    img = Image.open(path).convert("RGB")
    img = img.resize((img.width * 2 // 3, img.height * 2 // 3), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=60)
    return buf.getvalue()


def test_phash_is_stable_under_resizing_and_recompression(photos):
    original = phash(Image.open(photos["chelsea"]))
    copy = phash(Image.open(io.BytesIO(_resized_recompressed(photos["chelsea"]))))
    assert hamming(original, copy) <= 6
    others = [phash(Image.open(photos[n])) for n in ("coffee", "grace_hopper", "motorcycle", "rocket")]
    assert min(hamming(original, h) for h in others) >= 16
    assert -(2**63) <= original < 2**63


def test_duplicates_end_to_end(tmp_path, photos, monkeypatch):
    copy = tmp_path / "chelsea-small.jpg"
    copy.write_bytes(_resized_recompressed(photos["chelsea"]))
    same_bytes = tmp_path / "chelsea-again.png"
    same_bytes.write_bytes(photos["chelsea"].read_bytes())
    listing = tmp_path / "in.txt"
    listing.write_text("\n".join(str(p) for p in (photos["chelsea"], copy, same_bytes, photos["coffee"])) + "\n")
    out = tmp_path / "out"
    tag.run(["--input", str(listing), "--output", str(out), "--allow_local_paths", "--detector", "none", "--embeddings"])
    df = pd.read_parquet(out / "tags")  # pandas reads the table folder in one call
    by_name = {Path(u).name: r for u, r in zip(df["uri"], df.itertuples(), strict=True)}
    assert by_name["chelsea.png"].content_sha256 == by_name["chelsea-again.png"].content_sha256
    assert by_name["chelsea.png"].content_sha256 != by_name["chelsea-small.jpg"].content_sha256
    assert len(by_name["coffee.png"].embedding) == 1280

    section = README.read_text().split("### Finding duplicates", 1)[1].split("\n## ", 1)[0]
    query = re.findall(r"```sql\n(.*?)```", section, re.S)[0]
    con = duckdb.connect()
    monkeypatch.chdir(out.parent)  # the README's query reads out/tags/*.parquet, verbatim
    view, select = query.split(";", 1)
    con.execute(view)
    pairs = {tuple(sorted((Path(a).name, Path(b).name))) for a, b, *_ in con.sql(select).fetchall()}
    assert pairs == {("chelsea-again.png", "chelsea-small.jpg"), ("chelsea-again.png", "chelsea.png"),
                     ("chelsea-small.jpg", "chelsea.png")}
    norms = con.sql("SELECT list_sum(list_transform(embedding, lambda x: x * x)) FROM tags").fetchall()
    assert all(abs(n[0] - 1) < 0.01 for n in norms), "unit length"


def test_scipys_dct_gives_the_bits_of_the_textbook_cosine_basis(photos):
    """#34, point 7: the hand-written 32x32 DCT matrix gave way to scipy.fft.dctn; its scale is the
    same for every coefficient, so every bit of every hash is the same."""
    from transforms.stages.fingerprint import LOW, SIZE

    k, i = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    basis = np.cos(np.pi * (2 * i + 1) * k / (2 * SIZE))
    for name in ("chelsea", "coffee", "grace_hopper", "motorcycle", "rocket", "astronaut", "camera"):
        image = Image.open(photos[name])
        grey = np.asarray(image.convert("L").resize((SIZE, SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
        low = (basis @ grey @ basis.T)[:LOW, :LOW]
        value = int("".join("1" if b else "0" for b in (low > np.median(low)).flatten()), 2)
        assert phash(image) == (value - (1 << 64) if value >= 1 << 63 else value), name
