"""Compressed URI lists (transforms/ingest/packed.py): each packing reads as its text, a list
cut short reads up to the cut and says so, and a sharded run resumes inside the text."""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
from pathlib import Path

import pytest
import zstandard

from pipeline import shards
from transforms.ingest.packed import BROKEN, open_list, packing, text_bytes, unpacked_name
from transforms.ingest.read import count_entries, input_kind, list_lines

PACKERS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "zst": zstandard.ZstdCompressor().compress}


def _text(n: int, seed: int = 0) -> bytes:
    """A list of ``n`` distinct URIs, random enough that it does not compress to nothing."""
    rng = random.Random(seed)
    return b"# a comment\n" + b"".join(b"http://127.0.0.1:9/%05d-%016x.jpg\n" % (i, rng.getrandbits(64)) for i in range(n))


def _lines(path: Path) -> list[bytes | dict]:
    with open_list(str(path)) as f:
        return [line for line, _ in list_lines(f, str(path))]


@pytest.mark.parametrize("suffix", sorted(PACKERS))
def test_each_packing_reads_as_its_text_and_names_the_kind_of_list(tmp_path, suffix):
    text = _text(300)
    path = tmp_path / f"urls.txt.{suffix}"
    path.write_bytes(PACKERS[suffix](text))
    assert packing(str(path)) is not None and unpacked_name(str(path)) == str(tmp_path / "urls.txt")
    assert input_kind(str(path)) == "text"
    assert _lines(path) == text.splitlines()
    assert text_bytes(str(path)) == len(text)
    assert count_entries(str(path)) == 300


def test_concatenated_members_and_frames_read_on(tmp_path):
    """gzip -c a >> list.gz, and zstd frames written one after another, are one list."""
    first, second = _text(50, 1), _text(60, 2)
    for suffix, pack in (("gz", gzip.compress), ("zst", zstandard.ZstdCompressor().compress)):
        path = tmp_path / f"two.txt.{suffix}"
        path.write_bytes(pack(first) + pack(second))
        assert _lines(path) == (first + second).splitlines(), suffix


@pytest.mark.parametrize("suffix", sorted(PACKERS))
def test_a_list_cut_short_is_read_up_to_the_cut_and_ends_in_a_dead_letter(tmp_path, suffix):
    """Beam's own reader ends a truncated .gz quietly, as if the list were shorter; here every
    line decompressed before the cut is read, then one dead letter says where it broke."""
    text = _text(60_000)
    packed = PACKERS[suffix](text)
    path = tmp_path / f"cut.txt.{suffix}"
    path.write_bytes(packed[: len(packed) // 2])
    lines = _lines(path)
    dead = lines[-1]
    assert isinstance(dead, dict) and dead["error"]["stage"] == "read"
    assert dead["error"]["error_message"].startswith("list ends early: its ")
    read = [line for line in lines[:-1] if isinstance(line, bytes)]
    assert read == text.splitlines()[: len(read)], "what is read is the list's own start, in order"
    assert len(read) > 10_000, f"{suffix}: only {len(read)} lines read before the cut"  # bzip2's 900 kB blocks at most
    assert all(isinstance(line, bytes) for line in lines[:-1])
    assert count_entries(str(path)) == len(read)  # the comment is not an entry; the dead letter is


PACKINGS_NAMED = {"gz": "gzip", "xz": "xz", "zst": "zstd"}


def test_a_list_compressed_under_a_plain_name_is_told_by_its_first_bytes(tmp_path):
    """gsutil cp -Z stores urls.txt gzip-encoded and Beam reads GCS objects as stored: gzip, xz
    and zstd data are told by their marks, and a resumed run's offsets are bounded by the text.
    bzip2's mark is text, so a plain list that starts with it stays plain."""
    text = _text(103)
    for suffix in ("gz", "xz", "zst"):
        path = tmp_path / f"{suffix}-encoded.txt"
        path.write_bytes(PACKERS[suffix](text))
        assert _lines(path) == text.splitlines(), suffix
        assert shards.identity(str(path))[shards.TEXT_BYTES] == len(text), suffix
        every = list(shards.read_shards(str(path), 10))
        assert [len(s.elements) for s in every] == [10] * 10 + [3] and every[-1].end == len(text), suffix
        cut = tmp_path / f"{suffix}-cut.txt"
        cut.write_bytes(PACKERS[suffix](text)[:-40])
        dead = _lines(cut)[-1]
        assert isinstance(dead, dict), suffix
        assert dead["error"]["error_message"].startswith(f"list ends early: its {PACKINGS_NAMED[suffix]} data"), dead
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"BZh91AY.jpg\n" + text)
    assert _lines(plain) == (b"BZh91AY.jpg\n" + text).splitlines()
    assert shards.TEXT_BYTES not in shards.identity(str(plain))


def test_data_that_is_not_what_its_name_says_raises_a_packing_error(tmp_path):
    for suffix in PACKERS:
        path = tmp_path / f"plain.txt.{suffix}"
        path.write_bytes(_text(5))
        with pytest.raises(BROKEN), open_list(str(path)) as f:
            f.read()


def test_a_compressed_list_shards_and_resumes_inside_its_text(tmp_path):
    text = _text(103)
    path = tmp_path / "list.txt.gz"
    path.write_bytes(gzip.compress(text))
    every = list(shards.read_shards(str(path), 10))
    assert [len(s.elements) for s in every] == [10] * 10 + [3]
    assert every[-1].end == len(text)
    rest = list(shards.read_shards(str(path), 10, every[4].end, 5))
    assert [[e["uri"] for e in s.elements] for s in rest] == [[e["uri"] for e in s.elements] for s in every[5:]]
    assert count_entries(str(path), every[4].end) == 53
    ident = shards.identity(str(path))
    assert ident[shards.TEXT_BYTES] == len(text) > ident["list_bytes"]

    def committed(end: int) -> shards.runs.Manifest:
        return shards.runs.Manifest(run_id="20261207T000000Z-abcdef", mode="new", status="committed",
                                    lineage={"shard": {**ident, "index": 4, "end": end}})

    assert shards.resume_point([committed(every[4].end)], ident) == (every[4].end, 5)
    assert shards.resume_point([committed(len(text) + 1)], ident) == (0, 0), "an offset past the text is no record"
