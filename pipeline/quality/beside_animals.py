"""People beside animals: what a rule against person tags on animals would cost (issue #33).

    python -m pipeline.quality.beside_animals [--workdir DIR] [--json FILE] [--show]

The photo set has no photo of a person with an animal, so a rule that drops person boxes or
tags on animal photos cannot be priced on it. These probes are made from it: each of Scratch's
photographed people (cut out on a transparent ground) is pasted at PERSON_HEIGHT of the height,
left or right, onto ANIMALS_EACH of gcompris's animal photos, and the default job runs on the
composites. The figure is the share with a person tag (every composite shows a person); the
composites come from installed packages and are written only under WORKDIR/beside_animals.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from pipeline.quality import photo_set
from pipeline.quality.flags import MeasureFlags
from pipeline.workdir import working_folder

PERSON_HEIGHT = 0.7  # the pasted person's height, as a share of the animal photo's
ANIMALS_EACH = 3  # animal photos each person is pasted onto
STRIDE = (3, 17)  # person i on animal (3 i + 17 j) mod n, j < ANIMALS_EACH: varied, reproducible pairs


def sources(photos: list[photo_set.Photo]) -> tuple[list[photo_set.Photo], list[photo_set.Photo]]:
    """(Scratch's photographed people, gcompris's animal photos) of the set, in name order."""
    people = sorted((p for p in photos if p.name.startswith("files/scratch/") and p.kind == "people"),
                    key=lambda p: p.name)
    animals = sorted((p for p in photos if p.name.startswith("gcompris/") and p.kind == "animals"),
                     key=lambda p: p.name)
    return people, animals


def composite(person: str, animal: str, left: bool) -> Image.Image:
    """The person's cut-out pasted on the animal photo, standing on its bottom edge."""
    ground = Image.open(animal).convert("RGB")
    cutout = Image.open(person).convert("RGBA")
    scale = PERSON_HEIGHT * ground.height / cutout.height
    cutout = cutout.resize((max(1, round(cutout.width * scale)), max(1, round(cutout.height * scale))))
    margin = round(0.05 * ground.width)
    x = margin if left else max(0, ground.width - cutout.width - margin)
    ground.paste(cutout, (x, ground.height - cutout.height), cutout)
    return ground


def write_composites(photos: list[photo_set.Photo], folder: Path, limit: int | None = None) -> list[photo_set.Photo]:
    """The composites as JPEG files under ``folder``, each a Photo that shows people (``limit``:
    that many, spread evenly over the people)."""
    people, animals = sources(photos)
    if not people or not animals:
        raise FileNotFoundError("the photo set has no Scratch people or gcompris animals here "
                                "(apt-get install scratch gcompris-qt-data)")
    pairs = [(person, animals[(STRIDE[0] * i + STRIDE[1] * j) % len(animals)], j % 2 == 0)
             for i, person in enumerate(people) for j in range(ANIMALS_EACH)]
    if limit is not None and limit < len(pairs):
        pairs = [pairs[k * len(pairs) // limit] for k in range(limit)]
    folder.mkdir(parents=True, exist_ok=True)
    out: list[photo_set.Photo] = []
    for person, animal, left in pairs:
        name = f"{person.name.rsplit('/', 1)[-1]}+{animal.name.rsplit('/', 1)[-1]}"
        path = folder / f"{name}.jpg"
        composite(person.path, animal.path, left).save(path, quality=90)
        out.append(photo_set.Photo(f"composites/{name}", str(path), animal.synset, "report", "shown", "people"))
    return out


def measure(workdir: str | None = None, limit: int | None = None, extra: list[str] | None = None) -> dict:
    """The default job on the composites: how many get a person tag (and a person box)."""
    with working_folder(workdir, "beside-animals-") as folder:  # shared with the other measures:
        own = folder / "beside_animals"  # the photos are reused, the composites and their job kept apart
        composites = write_composites(photo_set.collect(folder / "photos"), own / "composites", limit)
        rows = photo_set.run_job(composites, own / "job", extra or [])
        judge = photo_set.Judge()
        missed = [p.name for p in composites
                  if not any(judge.person_word(t["name"]) for t in rows.get(p.path, {}).get("tags", []))]
        boxed = sum(any(o["label"] == "person" for o in rows.get(p.path, {}).get("objects", [])) for p in composites)
        return {"composites": len(composites), "person_tag": 1 - len(missed) / len(composites),
                "person_box": boxed / len(composites), "missed": missed}


def main(argv: list[str] | None = None) -> dict:
    from pipeline.commands import Parser
    from pipeline.tag import parse_with_job_options

    parser = Parser("python -m pipeline.quality.beside_animals", __doc__ or "", (MeasureFlags,))
    args, extra = parse_with_job_options(parser, argv)  # the rest go to the tag job
    result = measure(args.workdir, extra=extra)
    print(f"people beside animals: a person tag on {result['person_tag']:.2f} of {result['composites']} composites "
          f"(a person box on {result['person_box']:.2f})")
    if args.show:
        print("no person tag:\n" + "\n".join(result["missed"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
