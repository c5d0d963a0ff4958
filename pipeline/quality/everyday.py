"""The everyday head: the paper's TaggerNet taught the words a photo library is searched by.

    python -m pipeline.quality.everyday --output transforms/data/everyday [--leave_out KIND] [--workdir DIR]

Its labels are the photo set's (pipeline/quality/data/photo_set.json, section ``everyday``):
complete for every word, so a photo's missing word is a negative. It is built with the
project's own ``learn`` (pipeline/training/learn.py) on both halves of the set (never the
19-photo key's report photos): cross-fitted Platt calibration and precision-first floors, so a
written word's score is its held-out chance of being right. A measurement builds it on one half
(pipeline/quality/cross_fit.py) or, with ``--leave_out KIND``, without that kind's photos
(pipeline/quality/by_kind.py). The embedded head
(transforms/data/everyday/, the ``everyday`` stage) is this command's output; the test that
rebuilds it is tests/test_everyday_head.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline.quality import photo_set
from pipeline.workdir import working_folder
from transforms.core.options import Flags, option

SEED = 0  # the shipped head is rebuilt from the same photos and labels
SUPPORT_QUANTILE = 0.05  # a word's support floor keeps this share of its tune photos' ImageNet mass below it


def section() -> dict:
    return photo_set.key()["everyday"]


def words() -> tuple[str, ...]:
    return tuple(section()["words"])


def corrections(photos: list[photo_set.Photo], judge: photo_set.Judge) -> list[str]:
    """One correction line per photo (transforms/knowledge/corrections.py): its words added, every
    other everyday word rejected (a complete label), an unjudged word left unknown."""
    lines = []
    for photo in photos:
        shown, unknown = judge.everyday(photo)
        content = hashlib.sha256(Path(photo.path).read_bytes()).hexdigest()
        lines.append(json.dumps({
            "uri": photo.path, "image_id": photo.name, "content_sha256": content, "added": sorted(shown),
            "rejected": sorted(judge.everyday_words - shown - unknown), "reviewer": "photo_set.json",
            "review": "everyday", "group": photo.synset,  # a noun's photos share a fold: floors hold on new nouns
        }))
    return lines


def learn_target() -> float:
    """learn's --target_precision default: the head is written precision-first, as learn writes."""
    from pipeline.commands import LearnFlags

    return LearnFlags().target_precision


def labels_sha256() -> str:
    return hashlib.sha256(json.dumps(section(), sort_keys=True).encode()).hexdigest()


def build(output: str, photos: list[photo_set.Photo], features: str, workdir: Path, leave_out: str | None = None,
          quiet: bool = True, half: str | None = None) -> dict:
    """Learn the head from the photos a fit may learn from (of ``half``, None: both; without kind
    ``leave_out``) and publish it in ``output`` without the corrections themselves: the head
    carries its words, not the set's labels."""
    from pipeline.training import held_out, learn
    from transforms.output import model_folder
    from transforms.stages.taggernet import CONFIG, CORRECTIONS

    chosen = photo_set.fit_photos(photos, half, leave_out)
    name = "-".join([half or "both", leave_out or "every-kind"])
    judge = photo_set.Judge()
    workdir.mkdir(parents=True, exist_ok=True)
    listing = workdir / f"everyday-{name}.jsonl"
    listing.write_text("".join(line + "\n" for line in corrections(chosen, judge)))
    staging = workdir / f"learn-{name}"
    metrics = learn.main(["--corrections", str(listing), "--output", str(staging), "--features", features,
                          "--seed", str(SEED), "--no_review_negatives", "--allow_local_paths",
                          *(["--quiet"] if quiet else [])])
    files = {name: model_folder.read_file(str(staging), name) for name in model_folder.verify(str(staging))}
    files.pop(CORRECTIONS)
    config = json.loads(files[CONFIG])
    config["trained_at"] = "from the photo set's labels"
    config["corrections"] = {**config["corrections"], "files": [],
                             "labels": {"section": "pipeline/quality/data/photo_set.json#everyday",
                                        "sha256": labels_sha256(), "photos": len(chosen), "half": half, "left_out_kind": leave_out}}
    config["built_by"] = "python -m pipeline.quality.everyday"
    config["support"] = support(config["vocabulary"], chosen, judge)
    files[CONFIG] = json.dumps(config, indent=1, sort_keys=True).encode()
    words = [held_out.WordFigures(**{k: w[k] for k in held_out.WordFigures.__dataclass_fields__}) for w in metrics["words"]]
    target = learn_target()
    card = learn.model_card(config, metrics, [w.line(target) for w in words], target)
    files["model_card.md"] = card.replace("# TaggerNet learned from corrections", "# The everyday head (TaggerNet)").encode()
    model_folder.publish(output, files, "everyday")
    return metrics


def support(vocabulary: list[str], photos: list[photo_set.Photo], judge: photo_set.Judge) -> dict[str, float]:
    """Per learned word that names ImageNet classes (never person), the ImageNet probability under
    them that all but SUPPORT_QUANTILE of the photos showing it reach (transforms/stages/everyday.py)."""
    import numpy as np

    from pipeline.quality.calibrate import imagenet_probs
    from transforms.stages.everyday import UNSUPPORTED, class_mass
    from transforms.stages.tagger import ImageNetTagTable

    table = ImageNetTagTable.embedded()
    words = [w for w in vocabulary if w in table.names and w not in UNSUPPORTED]
    shown = {w: [p for p in photos if w in judge.everyday(p)[0]] for w in words}
    paths = sorted({p.path for chosen in shown.values() for p in chosen})
    probs = dict(zip(paths, imagenet_probs(paths), strict=True)) if paths else {}
    out = {}
    for w in words:
        mass = [class_mass(probs[p.path], table.classes_of(w)) for p in shown[w]]
        if mass:
            out[w] = round(float(np.quantile(mass, SUPPORT_QUANTILE)), 4)
    return out


def extract_features(photos: list[photo_set.Photo], workdir: Path, quiet: bool = True) -> str:
    """The default backbone's features of every photo (the feature job), reused by every build
    while the photos are the same ones: a work folder kept from another set is extracted again."""
    from pipeline.training import extract_features as job

    target = workdir / "features"
    listing = workdir / "features.jsonl"
    wanted = "".join(json.dumps({"uri": p.path, "labels": [], "split": "train"}) + "\n" for p in photos)
    done = (target / "_SUCCESS").exists() or any(target.glob("features-*.parquet"))
    if done and listing.is_file() and listing.read_text() == wanted:
        return str(target)
    listing.write_text(wanted)
    job.run(["--dataset", "list", "--labels", str(listing), "--output", str(target), "--overwrite",
             "--val_fraction", "0", "--test_fraction", "0", "--allow_local_paths", *(["--quiet"] if quiet else [])],
            then="the everyday head is learned from these features")
    return str(target)


@dataclass(frozen=True)
class HeadFlags(Flags):
    GROUP: ClassVar[str] = "everyday_head"

    output: str | None = option(None, "Model folder to write (the embedded one: transforms/data/everyday).", required=True)
    leave_out: str | None = option(None, "Also leave this kind's photos out.", choices=photo_set.kinds())
    workdir: str | None = option(None, "Where photos and features go, kept and reused (default: a temporary folder removed at the end).")

    def check(self) -> None:
        from pipeline.commands import need

        need(output=self.output)


def main(argv: list[str] | None = None) -> None:
    from pipeline.commands import Parser

    parser = Parser("python -m pipeline.quality.everyday", __doc__ or "", (HeadFlags,))
    args = parser.check(parser.parse_args(argv))
    with working_folder(args.workdir, "everyday-") as folder:
        photos = photo_set.collect(folder / "photos")
        features = extract_features(photos, folder, quiet=False)
        build(os.path.abspath(args.output), photos, features, folder, args.leave_out, quiet=False)
    print(f"everyday head written to {args.output}")


if __name__ == "__main__":
    main()
