"""The labelled photo set: about 630 real photos of 290 nouns in six kinds, judged with WordNet.

Measured by pipeline/quality/cross_fit.py (each half with fits learned on the other) and
pipeline/quality/by_kind.py (each kind held out of every fit).

Photos come from installed packages, never from the repository: Debian's gcompris-qt-data
(named photos of animals, tools, household things, monuments, planets and hands inside its Qt
resource files), the photos of Debian's wallpaper, documentation and example packages (key
section ``files``), and the dev packages' sample photos (transforms/knowledge/samples.py). Each is labelled
with one WordNet noun sense (pipeline/quality/data/photo_set.json). A written tag (in the tagger's
own sense of it) is right when its sense is the photo's sense or a hypernym of it (cat ->
feline, animal); a hyponym (a species under "fish") only where a look at that photo lists it,
and is not judged elsewhere; or when it is one of the few visible scene words the key lists (sky, grass...);
a reviewed list lets labels WordNet files oddly also accept "building" (a castle, a museum),
and another names what the photos of a noun always show besides it (a statue's pedestal; a
person's clothes, where only "clothing" and words above it hold on every photo).
Photos are split into tune and report halves by noun, so each half can be measured by fits that
never saw its nouns (the thresholds chosen by hand were chosen on the tune half); each noun is
also of one kind of photo (people, food, animals, plants, scenes, objects): the report gives
each kind's figures apart.

Needs the Debian packages packages() lists (installed, or unpacked by ``make photo-packages``),
and nltk (a dev requirement); workers need none.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import re
import struct
import sys
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pipeline.quality import ceiling
from pipeline.quality.debian_packages import located, missing
from pipeline.training.metrics import INTERVAL, precision_interval

PERSON = "person.n.01"  # one person; with a group of people, the senses the people rule decides
PERSON_SENSES = frozenset({PERSON, "people.n.01"})
RCC_DIR = Path("/usr/share/gcompris-qt/rcc")
WORDNET_DIR = Path("/usr/share/wordnet")
PHOTO_SUFFIXES = (".webp", ".jpg", ".jpeg", ".png")
MIN_PHOTO_BYTES = 3000  # smaller entries are icons
EET_MAGIC = 0x1EE70F42  # an Eet file (EFL) of the current layout
EET_LONG_SIDE = 1000  # an Enlightenment background's photo: its smallest size at least this long


PEOPLE = ("shown", "none", "unjudged")  # does a photo show people (the key's "people" section)


@dataclass(frozen=True)
class Photo:
    name: str  # unique, e.g. gcompris/erase/gorilla
    path: str
    synset: str
    split: str  # tune | report, by noun
    people: str = "none"  # one of PEOPLE: is a person tag right on it
    kind: str = "objects"  # one of kinds(): people, food, animals, plants, scenes, objects


def people_of(name: str, synset: str, judge_people: bool) -> str:
    """shown, unjudged or none, from the key's reviewed lists (``judge_people``: the noun is
    itself a person or a group of people)."""
    import fnmatch

    section = key()["people"]
    if judge_people or name in section["shown"]:
        return "shown"
    return "unjudged" if any(fnmatch.fnmatch(name, pattern) for pattern in section["unjudged"]) else "none"


def kinds() -> tuple[str, ...]:
    """The kinds of photo the set is measured by, in the key's order."""
    section = key()["kinds"]
    return (*section["roots"], section["otherwise"])


def key() -> dict:
    return json.loads(resources.files("pipeline.quality").joinpath("data/photo_set.json").read_text())


def split_of(synset: str) -> str:
    """Half of the nouns tune, half report, fixed by the noun alone."""
    return "tune" if hashlib.sha256(synset.encode()).digest()[0] % 2 == 0 else "report"


HALVES = ("tune", "report")


def other_half(half: str) -> str:
    return HALVES[1 - HALVES.index(half)]


def fit_photos(photos: Iterable[Photo], half: str | None = None, leave_out: str | None = None) -> list[Photo]:
    """The photos a fit learns from: those of ``half`` (None: both halves) not of kind
    ``leave_out``, and never the 19-photo key's report photos, which `python -m pipeline.quality`
    checks the shipped fits on."""
    from pipeline.quality.key import load_key

    held_back = {f"samples/{n}" for n, p in load_key()["photos"].items() if p["split"] == "report"}
    return [p for p in photos if half in (None, p.split) and p.kind != leave_out and p.name not in held_back]


def read_rcc(path: Path) -> dict[str, bytes]:
    """Every file inside a Qt resource file (.rcc), by its path. Written by hand: the format is
    small and documented (Qt's rcc), and no maintained Python reader exists."""
    blob = path.read_bytes()
    if blob[:4] != b"qres":
        raise ValueError(f"{path} is not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node = 22 if version >= 2 else 14
    files: dict[str, bytes] = {}

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset:names + offset + 2])
        return blob[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        at = tree + index * node
        name_offset, flags = struct.unpack(">IH", blob[at:at + 6])
        label = name(name_offset) if index else ""
        if flags & 2:  # a directory
            count, first = struct.unpack(">II", blob[at + 6:at + 14])
            for child in range(first, first + count):
                walk(child, f"{prefix}{label}/")
            return
        (offset,) = struct.unpack(">I", blob[at + 10:at + 14])
        (length,) = struct.unpack(">I", blob[data + offset:data + offset + 4])
        body = blob[data + offset + 4:data + offset + 4 + length]
        if flags & 1:  # zlib, after a 4-byte uncompressed size
            body = zlib.decompress(body[4:])
        elif flags & 4:  # zstd (Qt 6): not used by these files
            raise ValueError(f"{path}: zstd-compressed entry {prefix}{label}")
        files[prefix + label] = body

    walk(0, "")
    return files


def read_eet(path: Path) -> dict[str, bytes]:
    """Every uncompressed entry of an EFL Eet file (an Enlightenment .edj theme or background),
    by name. Written by hand: the format is small and documented (EFL's eet_lib.c), and the only
    readers are EFL's C libraries."""
    blob = path.read_bytes()
    magic, count, _ = struct.unpack(">III", blob[:12])
    if magic != EET_MAGIC:
        raise ValueError(f"{path} is not an Eet file")
    entries: dict[str, bytes] = {}
    for i in range(count):
        offset, size, _, name_offset, name_size, flags = struct.unpack(">IIIIII", blob[12 + 24 * i:36 + 24 * i])
        if flags == 0 and offset + size <= len(blob):  # compressed and ciphered entries hold no photo here
            entries[blob[name_offset:name_offset + name_size].rstrip(b"\0").decode("utf-8")] = blob[offset:offset + size]
    return entries


def eet_photo(path: Path) -> bytes:
    """The photo of an Enlightenment background: of the JPEG sizes it holds, the smallest whose
    long side is at least EET_LONG_SIDE (the others are the same photo, larger or smaller)."""
    from PIL import Image

    jpegs = [data for name, data in read_eet(path).items() if name.startswith("edje/images/") and data[:2] == b"\xff\xd8"]
    if not jpegs:
        raise ValueError(f"{path} holds no photo")
    sizes = {i: Image.open(io.BytesIO(data)).size for i, data in enumerate(jpegs)}
    large = [i for i, (w, h) in sizes.items() if max(w, h) >= EET_LONG_SIDE] or list(sizes)
    return jpegs[min(large, key=lambda i: sizes[i][0] * sizes[i][1])]


def rcc_photos(rcc: str) -> dict[str, bytes]:
    """The photos inside one of gcompris-qt-data's resource files, by inner path (icons left out)."""
    path = located("gcompris-qt-data", RCC_DIR) / rcc
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: make photo-packages")
    return {k: v for k, v in read_rcc(path).items() if k.lower().endswith(PHOTO_SUFFIXES) and len(v) >= MIN_PHOTO_BYTES}


def _matcher(pattern: str) -> re.Pattern[str]:
    """'<folder>/<stem>': the stem and its numbered variants; a stem ending in a digit, that file alone."""
    folder, stem = pattern.split("/", 1)
    variants = "" if stem[-1].isdigit() else r"\d*"
    return re.compile(rf"/{re.escape(folder) if folder != '*' else '[^/]+'}/{re.escape(stem)}{variants}\.\w+$")


def _gcompris(dest: Path) -> list[Photo]:
    photos = []
    for rcc, entries in key()["gcompris"].items():
        files = rcc_photos(rcc)
        matchers = {pattern: _matcher(pattern) for pattern in entries}
        exact = [m for pattern, m in matchers.items() if pattern[-1].isdigit()]
        for pattern, synset in entries.items():  # a numbered entry (windmill6) takes its file from its stem's
            mine = matchers[pattern]
            claimed = [] if pattern[-1].isdigit() else exact
            for inner in sorted(k for k in files if mine.search(k) and not any(m.search(k) for m in claimed)):
                label = f"gcompris/{rcc[:-4]}/{inner.rsplit('/', 2)[-2]}/{inner.rsplit('/', 1)[-1].rsplit('.', 1)[0]}"
                target = dest / (label.replace("/", "__") + Path(inner).suffix)
                target.write_bytes(files[inner])
                photos.append(Photo(label, str(target), synset, split_of(synset)))
    return photos


def _files(dest: Path) -> list[Photo]:
    """The key's photos from Debian's wallpaper, documentation and example packages (an
    Enlightenment background's photo is written under ``dest``)."""
    photos = []
    for package, entries in key()["files"]["packages"].items():
        for name, (installed, synset) in entries.items():
            path = source = located(package, installed)
            label = f"files/{package}/{name}"
            if source.suffix == ".edj":
                path = dest / (label.replace("/", "__") + ".jpg")
                path.write_bytes(eet_photo(source))
            photos.append(Photo(label, str(path), synset, split_of(synset)))
    return photos


def packages() -> dict[str, list[Path]]:
    """Every Debian package the photo set reads, with the paths it reads from it."""
    wanted = {"gcompris-qt-data": [RCC_DIR], "wordnet-base": [WORDNET_DIR]}
    for package, entries in key()["files"]["packages"].items():
        wanted[package] = [Path(path) for path, _ in entries.values()]
    return wanted


def missing_packages() -> list[str]:
    """Those of ``packages()`` with a path neither installed nor unpacked here (tests skip, naming them)."""
    return missing(packages())


def collect(dest: str | os.PathLike) -> list[Photo]:
    """Write every photo of the set under ``dest`` and label it."""
    from transforms.knowledge.samples import sample_photos

    lacking = missing_packages()
    if lacking:
        raise FileNotFoundError(f"the photo set needs Debian's {' '.join(lacking)}: make photo-packages")
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    photos = _gcompris(folder) + _files(folder)
    found = sample_photos(everything=True)
    for name, synset in key()["samples"].items():
        if name in found:
            photos.append(Photo(f"samples/{name}", str(found[name]), synset, split_of(synset)))
    people = sample_photos(people=True)
    for name, synset in key()["people_samples"].items():
        if name in people:
            photos.append(Photo(f"people/{name}", str(people[name]), synset, split_of(synset)))
    judge = Judge()
    photos = [dataclasses.replace(p, people=people_of(p.name, p.synset, judge.is_person(p.synset)), kind=judge.kind(p.synset))
              for p in photos]
    names = [p.name for p in photos]
    assert len(names) == len(set(names)), "photo names are unique"
    return photos


@functools.lru_cache(maxsize=1)
def wordnet():
    """NLTK's WordNet reader over Debian's wordnet-base (as tools/build_wordnet_table.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    try:
        from build_wordnet_table import wordnet as reader
    finally:
        sys.path.pop(0)
    folder = located("wordnet-base", WORDNET_DIR)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: make photo-packages")
    return reader(folder)


SENSE = re.compile(r"[a-z0-9_'.-]+\.n\.\d\d")  # a WordNet noun sense by name, as the key may give one


@dataclass(eq=False)
class Judge:
    """Is a tag word right for a photo's noun sense? (module docstring)."""

    extras: frozenset[str] = field(default_factory=lambda: frozenset(key()["extras"]))
    also: dict[str, list[str]] = field(default_factory=lambda: key().get("also", {}).get("senses", {}))
    visible: dict[str, list[str]] = field(default_factory=lambda: key().get("visible", {}).get("words", {}))
    generic: dict[str, list[str]] = field(default_factory=lambda: key().get("visible", {}).get("generic", {}))
    worn: dict[str, list[str]] = field(default_factory=lambda: key().get("visible", {}).get("worn", {}))
    visible_on: dict[str, list[str]] = field(default_factory=lambda: key().get("visible", {}).get("photos", {}))
    everyday_key: dict = field(default_factory=lambda: key()["everyday"])
    specific: dict[str, list[str]] = field(default_factory=lambda: key().get("specific", {}).get("photos", {}))

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one judge per run, a few thousand words
    def senses(self, word: str) -> tuple[str, ...]:
        """The product's own sense of a tag word when it has one (an ImageNet class is its
        synset, a named node of the tagger's table its node's), a sense named as such
        ("drum.n.01", in the key's looks), else every WordNet noun sense of the word."""
        from transforms.knowledge import lexicon
        from transforms.stages.tagger import imagenet_table_data

        known = lexicon.sense(word)
        if known is not None:
            return (known.synset,)
        node = imagenet_table_data()["nodes"].get(word.lower())
        if node is not None and node.get("synset"):
            return (node["synset"],)
        if SENSE.fullmatch(word):
            return (word,)
        return tuple(s.name() for s in wordnet().synsets(word.replace(" ", "_"), "n"))

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def above(self, synset: str) -> frozenset[str]:
        s = wordnet().synset(synset)
        return frozenset(h.name() for path in s.hypernym_paths() for h in path)

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def accepts(self, label: str) -> frozenset[str]:
        """The senses a label accepts as words for it: itself and its hypernyms, and those of
        the senses the key's ``also`` reviews for it (a pyramid is a building to a person)."""
        return self.above(label).union(*(self.above(extra) for extra in self.also.get(label, [])))

    @functools.lru_cache(maxsize=1024)  # noqa: B019
    def nameable(self, synset: str) -> bool:
        """Can the embedded tagger name this noun at its level or below at all: is one of its
        words (an ImageNet class or a named node above classes) the noun or a kind of it? The
        ceiling of "named at its level or below" for any decoding of the same classifier."""
        from transforms.stages.tagger import ImageNetTagTable

        return any(self.relation(word, synset) in ("same", "specific") for word in ImageNetTagTable.embedded().names)

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def is_person(self, synset: str) -> bool:
        """A person, a kind of person, or a group of people."""
        return synset in PERSON_SENSES or bool(PERSON_SENSES & self.above(synset))

    @functools.lru_cache(maxsize=1024)  # noqa: B019
    def kind(self, synset: str) -> str:
        """The kind of photo a noun is: the key's first kind with a root at or above it."""
        section = key()["kinds"]
        above = self.above(synset) | {synset}
        return next((kind for kind, roots in section["roots"].items() if above & set(roots)), section["otherwise"])

    @functools.cached_property
    def everyday_words(self) -> frozenset[str]:
        return frozenset(self.everyday_key["words"])

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - one judge per run, a few hundred photos
    def everyday(self, photo: Photo) -> tuple[frozenset[str], frozenset[str]]:
        """(the everyday words the photo shows, those not judged on it): the reviewed look (the
        key's ``everyday`` section), its noun's roots, people, and what a shown word implies."""
        section = self.everyday_key
        person, about_people = self.people_words
        shown = set(section["photos"].get(photo.name, []))
        above = self.accepts(photo.synset)
        shown |= {word for word, roots in section["roots"].items() if above & set(roots) and word != person}
        unknown: set[str] = set()
        if photo.people == "shown":
            shown.add(person)
        elif photo.people == "unjudged":  # people too small to be sure of: one or a group, neither is judged
            unknown |= about_people
        shown |= {implied for word in list(shown) for implied in section["implies"].get(word, [])}
        return frozenset(shown), frozenset(unknown)

    @functools.cached_property
    def people_words(self) -> tuple[str, frozenset[str]]:
        """(the everyday word every photo that shows people shows, the everyday words about
        people): from the section's roots, the word rooted at one person and those rooted at
        person senses only."""
        roots = self.everyday_key["roots"]
        about = frozenset(word for word, senses in roots.items() if senses and set(senses) <= PERSON_SENSES)
        person = next((word for word in sorted(about) if PERSON in roots[word]), None)
        if person is None:
            raise ValueError(f"photo_set.json: no everyday word is rooted at {PERSON} and only at {sorted(PERSON_SENSES)}")
        return person, about

    def person_word(self, word: str) -> bool:
        """Does the word name a person: its product sense, else its most common WordNet sense
        ("dog" and "cat" also have senses for people)."""
        senses = self.senses(word)
        return bool(senses) and self.is_person(senses[0])

    def relation(self, word: str, label: str) -> str | None:
        """'same', 'general' (a hypernym), 'specific' (a hyponym), 'extra', or None (wrong)."""
        senses = self.senses(word)
        if label in senses:
            return "same"
        if any(label in self.above(s) for s in senses):
            return "specific"
        if any(s in self.accepts(label) for s in senses):
            return "general"
        if (word.lower() in self.extras or self.among(word, self.visible.get(label, []))
                or self.covers(word, self.generic_of(label))):
            return "extra"
        return None

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def generic_of(self, label: str) -> list[str]:
        """What photos of this noun show generically, its own and its hypernyms' (a man is a
        person: he wears clothes too)."""
        return [word for sense in sorted(self.above(label)) for word in self.generic.get(sense, [])]

    def seen_on(self, word: str, photo: str) -> bool:
        """Does the key's look at this one photo name the word's thing, a kind of it or a word for
        more of it (a uniform shown: "clothing" is right too)?"""
        extras = self.visible_on.get(photo, [])
        return self.among(word, extras) or self.covers(word, extras)

    def among(self, word: str, extras: list[str]) -> bool:
        """Is the word one of these words, or a kind of one of them (by any of its senses)?"""
        shown = {s for extra in extras for s in self.senses(extra)}
        return any(s in shown or shown & self.above(s) for s in self.senses(word))

    def covers(self, word: str, extras: list[str]) -> bool:
        """Is the word one of these words, or more general than one of them (a person wears
        clothes: "clothing" is right on every photo of people)?"""
        shown = {s for extra in extras for s in self.senses(extra)}
        return any(s in shown or any(s in self.above(x) for x in shown) for s in self.senses(word))

    def worn_by_people(self, word: str) -> bool:
        """Is the word what every person wears, or a word above it ("clothing", "garment"): shown
        wherever people are, whatever the photo's noun?"""
        return self.covers(word, self.generic_of(PERSON))

    def unlooked(self, word: str, photo: Photo) -> bool:
        """Is the word a kind of what the photo's noun shows generically ("sweater" on a photo of
        a person) on a photo with no complete look at what its people wear (so not judged)?"""
        return photo.name not in self.worn and self.among(word, self.generic_of(photo.synset))


def verdict(word: str, judge: Judge, photo: Photo) -> bool | None:
    """Is ``word`` right on ``photo``: for an everyday word by the photo's everyday labels ("people"
    only on a group), for another person word by whether the photo shows people (None: not
    judged, people too small to be sure of), else by its noun, and for a kind of what its noun's
    photos show generically (a garment on a person) by the photo's own look (None where that
    does not list it). What every person wears ("clothing") is right wherever people are shown
    too, and not judged where they are too small, whatever the noun."""
    if word.lower() in judge.everyday_words:  # judged by the photo's complete everyday labels alone
        shown, unknown = judge.everyday(photo)
        return None if word.lower() in unknown else word.lower() in shown
    if judge.person_word(word):
        if photo.people == "unjudged":
            return None
        if photo.people == "shown":
            return True
    by_noun = _by_noun(word, judge, photo)
    if by_noun is not True and photo.people != "none" and judge.worn_by_people(word):
        return photo.people == "shown" or None
    return by_noun


def _by_noun(word: str, judge: Judge, photo: Photo) -> bool | None:
    """``verdict`` by the photo's noun and its looks alone."""
    relation = judge.relation(word, photo.synset)
    if relation == "specific":  # a kind of the noun (a species of "fish"): only a look at the photo says which
        return judge.covers(word, judge.specific[photo.name]) if photo.name in judge.specific else None
    if (relation is not None or judge.seen_on(word, photo.name)
            or judge.covers(word, judge.worn.get(photo.name, []))):  # what they wear, or a word above it
        return True
    return None if judge.unlooked(word, photo) else False


# -- the measurement -----------------------------------------------------------------------------
BINS = 10  # reliability bins of the calibrated score


@dataclass
class Tally:
    written: int = 0
    right: int = 0
    scored: list[tuple[float, bool]] = field(default_factory=list)  # (score, right?) of each tag

    @property
    def precision(self) -> float | None:
        return self.right / self.written if self.written else None

    def reliability(self) -> list[tuple[float, float, int]]:
        """(mean score, share right, tags) per score bin that holds tags."""
        bins: dict[int, list[tuple[float, bool]]] = {}
        for score, right in self.scored:
            bins.setdefault(min(int(score * BINS), BINS - 1), []).append((score, right))
        return [(sum(s for s, _ in b) / len(b), sum(r for _, r in b) / len(b), len(b)) for _, b in sorted(bins.items())]

    @property
    def ece(self) -> float | None:
        """Expected calibration error of the written tags: the tag-weighted gap between each
        bin's mean score and its share of right tags."""
        n = len(self.scored)
        return sum(count * abs(mean - right) for mean, right, count in self.reliability()) / n if n else None


@dataclass
class Figures:
    photos: int = 0
    by_source: dict[str, Tally] = field(default_factory=dict)
    named: int = 0  # the noun at its level or more specifically
    untagged: int = 0
    any_right: int = 0  # photos with at least one right tag
    right_tags: int = 0
    naive_top1_right: int = 0
    naive_top1_named: int = 0
    naive_top5_named: int = 0
    nameable: int = 0  # the noun at its level or below is one of the tagger's words at all
    named_nameable: int = 0  # of those, photos the job names
    naive_named_nameable: int = 0  # of those, photos the naive top-1 names
    naive_right_nameable: int = 0  # of those, photos whose naive top-1 is right
    people_shown: int = 0  # photos that show people
    people_tagged: int = 0  # of those, photos with a person tag
    people_free: int = 0  # photos without people
    people_false: int = 0  # of those, photos with a person tag
    beyond_written: int = 0  # judged tags on photos whose noun none of the tagger's words names
    beyond_right: int = 0  # of those, right ones
    beyond_coarse: int = 0  # of the right ones, words above the noun (#33: "mostly from right coarse words")
    everyday_shown: int = 0  # everyday words the photos show (their complete labels)
    everyday_found: int = 0  # of those, words written
    wrong: list[str] = field(default_factory=list)

    def row(self) -> dict[str, float | int | tuple[float, float] | None]:
        n = max(self.photos, 1)
        out: dict[str, float | int | tuple[float, float] | None] = {"photos": self.photos}
        for source, tally in sorted(self.by_source.items()):
            out[f"precision.{source}"] = tally.precision
            out[f"written.{source}"] = tally.written
        overall = self.by_source.get("overall", Tally())
        out["precision_interval"] = precision_interval(overall.right, overall.written)
        out.update({"named_at_level": self.named / n, "untagged": self.untagged / n,
                    "right_tags_per_photo": self.right_tags / n, "naive_top1_precision": self.naive_top1_right / n,
                    "naive_top1_named": self.naive_top1_named / n, "naive_top5_named": self.naive_top5_named / n,
                    "nameable": self.nameable / n, "people_shown": self.people_shown,
                    "named_on_nameable": self.named_nameable / self.nameable if self.nameable else None,
                    "naive_top1_named_on_nameable":
                        self.naive_named_nameable / self.nameable if self.nameable else None,
                    "person_recall": self.people_tagged / self.people_shown if self.people_shown else None,
                    "people_free": self.people_free, "person_on_people_free": self.people_false,
                    "everyday_recall": self.everyday_found / self.everyday_shown if self.everyday_shown else None,
                    "precision_nameable": self._precision_nameable(),
                    "naive_top1_precision_on_nameable":
                        self.naive_right_nameable / self.nameable if self.nameable else None,
                    "precision_beyond": self.beyond_right / self.beyond_written if self.beyond_written else None,
                    "coarse_share_beyond": self.beyond_coarse / self.beyond_right if self.beyond_right else None})
        return out

    def _precision_nameable(self) -> float | None:
        """Precision of the judged tags on the photos an ImageNet word names (#33: at least 0.9
        there, beside the naive top-1's)."""
        overall = self.by_source.get("overall", Tally())
        written = overall.written - self.beyond_written
        return (overall.right - self.beyond_right) / written if written else None


def judge_rows(photos: Iterable[Photo], rows: dict[str, dict], naive: dict[str, list[str]], judge: Judge) -> Figures:
    """Figures of the job's rows (tags by uri) and the naive classifier's top-5 class names."""
    figures = Figures()
    overall = figures.by_source.setdefault("overall", Tally())
    for photo in photos:
        figures.photos += 1
        tags = rows.get(photo.path, {}).get("tags", [])
        figures.untagged += not tags
        named = False
        person_tagged = False
        right_here = 0
        nameable = judge.nameable(photo.synset)
        for tag in tags:
            person_tagged |= judge.person_word(tag["name"])
            right = verdict(tag["name"], judge, photo)
            if right is None:
                continue  # a person word where people are too small to judge
            for source in {tag["source"], *(tag.get("sources") or [])} | {"overall"}:
                tally = figures.by_source.setdefault(source, Tally()) if source != "overall" else overall
                tally.written += 1
                tally.right += right
                if source in (tag["source"], "overall"):  # the written score is its source's claim alone
                    tally.scored.append((float(tag["score"]), right))
            figures.right_tags += right
            right_here += right
            named |= right and names(tag["name"], judge, photo)
            if not nameable:
                figures.beyond_written += 1
                figures.beyond_right += right
                figures.beyond_coarse += right and judge.relation(tag["name"], photo.synset) == "general"
            if not right:
                figures.wrong.append(f"{photo.name} ({photo.synset}): {tag['name']} [{tag['source']}]")
        figures.named += named
        shown = judge.everyday(photo)[0]
        figures.everyday_shown += len(shown)
        figures.everyday_found += len(shown & {tag["name"].lower() for tag in tags})
        figures.any_right += right_here > 0
        figures.nameable += nameable
        figures.named_nameable += nameable and named
        figures.people_shown += photo.people == "shown"
        figures.people_tagged += photo.people == "shown" and person_tagged
        figures.people_free += photo.people == "none"
        figures.people_false += photo.people == "none" and person_tagged
        top = naive.get(photo.path, [])
        if top:  # judged as the job's tags are: a species the look does not list names nothing
            first = verdict(top[0], judge, photo) is True
            figures.naive_top1_right += first
            figures.naive_top1_named += first and names(top[0], judge, photo)
            figures.naive_named_nameable += nameable and first and names(top[0], judge, photo)
            figures.naive_right_nameable += nameable and first
            figures.naive_top5_named += any(verdict(c, judge, photo) is True and names(c, judge, photo) for c in top[:5])
    return figures


def judged_tags(photos: Iterable[Photo], rows: dict[str, dict], judge: Judge) -> list[list[ceiling.Tag]]:
    """Each photo's tags as (source, score, right?), judged as the figures above judge them."""
    return [[(t["source"], float(t["score"]), verdict(t["name"], judge, p))
             for t in rows.get(p.path, {}).get("tags", [])] for p in photos]


def names(word: str, judge: Judge, photo: Photo) -> bool:
    """Does the word name the photo's noun, at its level or more specifically?"""
    return judge.relation(word, photo.synset) in ("same", "specific")


def naive_top5(paths: list[str]) -> dict[str, list[str]]:
    """A naive top-5 ImageNet classifier on the job's own backbone weights (fp32, centre crop)."""
    import numpy as np

    from transforms.stages.backbone import BackboneConfig, calibration_crops, load_backbone
    from transforms.stages.tagger import imagenet_table_data

    classes = imagenet_table_data()["classes"]
    model = load_backbone(BackboneConfig(precision="fp32", device="cpu"))
    out = {}
    for start in range(0, len(paths), 16):
        chunk = paths[start:start + 16]
        pixels = np.stack([calibration_crops(Path(p).read_bytes())[0] for p in chunk])
        _, probs = model(pixels)
        assert probs is not None, "the backbone has its ImageNet head"
        for path, row in zip(chunk, probs, strict=True):
            out[path] = [classes[j] for j in np.argsort(-row)[:5]]
    return out


def run_job(photos: list[Photo], workdir: Path, extra: list[str]) -> dict[str, dict]:
    """The default tag job over the photos (as make quality runs it); rows by uri."""
    from pipeline.quality.key import run_preset

    return run_preset(["--quiet", *extra], {p.path: p.path for p in photos}, str(workdir), [], vocabulary=False)


# Calibration is judged on every candidate a source scores, not only on the tags it writes.
CANDIDATES = ["--min_score", "0.02", "--top_k", "50", "--detection_threshold", "0.1"]


def figures_of(part: str, photos: list[Photo], rows: dict[str, dict], candidates: dict[str, dict],
               naive: dict[str, list[str]], judge: Judge) -> dict:
    """The figures of the job's ``rows`` on ``photos`` (``part``: which photos, as the tables name
    them), with calibration judged on every candidate (rows of a run with CANDIDATES)."""
    figures = judge_rows(photos, rows, naive, judge)
    scored = judge_rows(photos, candidates, {}, judge).by_source
    return {"split": part, "nouns": len({p.synset for p in photos}), **figures.row(),
            **{f"ece.{s}": t.ece for s, t in scored.items()}, "wrong": figures.wrong,
            "reliability": {s: t.reliability() for s, t in sorted(scored.items()) if t.scored},
            "kinds": per_kind(photos, rows, candidates, naive, judge)}


def per_kind(photos: list[Photo], rows: dict[str, dict], candidates: dict[str, dict], naive: dict[str, list[str]],
             judge: Judge) -> dict[str, dict]:
    """The figures of each kind of photo apart (#33: by kind as well as by noun): the same job's
    rows, so on the report half every fit has seen other nouns of the kind, never these."""
    out = {}
    for kind in kinds():
        chosen = [p for p in photos if p.kind == kind]
        if chosen:
            scored = judge_rows(chosen, candidates, {}, judge).by_source
            out[kind] = {**judge_rows(chosen, rows, naive, judge).row(),
                         "ece.overall": scored["overall"].ece if "overall" in scored else None,
                         **ceiling.summary(judged_tags(chosen, candidates, judge))}
    return out


def plot_reliability(result: dict, path: str) -> None:
    """A reliability diagram per source (share right against mean score, per bin) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", label="perfectly calibrated")
    for source, bins in result["reliability"].items():
        if bins:
            ece = result[f"ece.{source}"]
            ax.plot([b[0] for b in bins], [b[1] for b in bins], marker="o", label=f"{source} (ECE {ece:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="calibrated score (bin mean)", ylabel="share of candidates judged right",
           title=f"Reliability, {result['split']} split ({result['photos']} photos, every candidate)")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def table(result: dict) -> str:
    def pct(v):
        return "   -" if v is None else f"{v:.2f}"

    lines = [f"split {result['split']}: {result['photos']} photos, {result['nouns']} nouns", "",
             "| measure | this job | naive top-1 | naive top-5 |", "|---|---|---|---|"]
    sources = sorted(k.split(".", 1)[1] for k in result if k.startswith("precision."))
    for s in sources:
        lines.append(f"| precision, {s} ({result[f'written.{s}']} tags) | {pct(result[f'precision.{s}'])} | "
                     f"{pct(result['naive_top1_precision']) if s == 'overall' else ''} | |")
    for s in sources:
        lines.append(f"| expected calibration error, {s} (every candidate) | {pct(result.get(f'ece.{s}'))} | | |")
    lines.append(f"| noun named at its level or below | {pct(result['named_at_level'])} | "
                 f"{pct(result['naive_top1_named'])} | {pct(result['naive_top5_named'])} |")
    lines.append(f"| the noun is among the tagger's words at all (the ceiling of the line above) | "
                 f"{pct(result['nameable'])} | | |")
    lines.append(f"| on those photos (nameable), noun named | {pct(result['named_on_nameable'])} | "
                 f"{pct(result['naive_top1_named_on_nameable'])} | |")
    lines.append(f"| on those photos, precision | {pct(result['precision_nameable'])} | "
                 f"{pct(result['naive_top1_precision_on_nameable'])} | |")
    lines.append(f"| beyond the tagger's words (the other photos): precision | {pct(result['precision_beyond'])} | | |")
    lines.append(f"| beyond the tagger's words: share of the right tags that are words above the noun | "
                 f"{pct(result['coarse_share_beyond'])} | | |")
    lines.append(f"| photos with no tag | {pct(result['untagged'])} | 0.00 | |")
    lines.append(f"| everyday words a photo shows that are written (recall of the labelled words) | "
                 f"{pct(result['everyday_recall'])} | | |")
    lines.append(f"| person tag on photos with people ({result['people_shown']} photos) | "
                 f"{pct(result['person_recall'])} | | |")
    lines.append(f"| photos without people that get a person tag (of {result['people_free']}) | "
                 f"{result['person_on_people_free']} | | |")
    lines.append(f"| right tags per photo | {result['right_tags_per_photo']:.2f} | "
                 f"{result['naive_top1_precision']:.2f} | |")
    if result.get("kinds"):
        lines += ["", f"by kind of photo ({result['split']} photos, the same job):", "", kind_table(result["kinds"]),
                  "", ceiling.table(result["kinds"])]
    return "\n".join(lines)


def figure(v: float | None) -> str:
    """A share as the kind tables print it."""
    return "-" if v is None else f"{v:.2f}"


def spread(interval: tuple[float, float] | list[float] | None) -> str:
    """A precision interval as the tables print it."""
    return "-" if interval is None else f"{interval[0]:.2f}-{interval[1]:.2f}"


def people_cells(r: dict) -> str:
    """The kind tables' last two cells: a person tag where people are shown, and without them."""
    shown = f"{figure(r['person_recall'])} of {r['people_shown']}" if r["people_shown"] else "-"
    return f"{shown} | {r['person_on_people_free']} of {r['people_free']}"


def kind_table(figures: dict[str, dict]) -> str:
    """One line per kind of photo: precision, coverage and calibration beside the naive top-1."""
    f = figure
    lines = [f"| kind | photos | precision (tags; {INTERVAL:.0%} interval) | naive top-1 precision | untagged | ECE | right tags per photo "
             "| person tag where people are shown | person tag without people |", "|---|---|---|---|---|---|---|---|---|"]
    for kind, r in figures.items():
        lines.append(f"| {kind} | {r['photos']} | {f(r.get('precision.overall'))} ({r.get('written.overall', 0)}; "
                     f"{spread(r['precision_interval'])}) | "
                     f"{f(r['naive_top1_precision'])} | {f(r['untagged'])} | {f(r['ece.overall'])} | "
                     f"{r['right_tags_per_photo']:.2f} | {people_cells(r)} |")
    return "\n".join(lines)
