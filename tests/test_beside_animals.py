"""People pasted beside animals: the probe that prices a rule against person tags on animals
(pipeline/quality/beside_animals.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.quality import beside_animals, photo_set

pytestmark = pytest.mark.usefixtures("photo_set_packages")


def test_a_composite_shows_the_person_standing_on_the_animal_photo(tmp_path):
    people, animals = beside_animals.sources(photo_set.collect(tmp_path / "photos"))
    assert len(people) >= 50 and len(animals) >= 50
    person, animal = people[0], animals[0]
    ground = np.asarray(Image.open(animal.path).convert("RGB"), dtype=int)
    for left in (True, False):
        made = np.asarray(beside_animals.composite(person.path, animal.path, left), dtype=int)
        assert made.shape == ground.shape
        changed = np.abs(made - ground).sum(2) > 30
        rows, cols = np.nonzero(changed)
        height = (rows.max() - rows.min() + 1) / ground.shape[0]
        assert 0.5 < height <= beside_animals.PERSON_HEIGHT + 0.01 and rows.max() >= ground.shape[0] - 2
        assert (cols.mean() < ground.shape[1] / 2) == left, "pasted on the side asked for"


def test_the_job_finds_the_people_beside_animals(tmp_path):
    """Today 0.80 of the 162 composites get a person tag (docs/QUALITY.md): a person rule that
    vetoed people on animal photos would show here."""
    result = beside_animals.measure(str(tmp_path), limit=12)
    assert result["composites"] == 12 and len(result["missed"]) == round((1 - result["person_tag"]) * 12)
    assert all(name.startswith("composites/") for name in result["missed"])
    assert result["person_tag"] >= 0.6 and result["person_box"] >= 0.6
    assert sorted(p.name for p in (tmp_path / "beside_animals" / "composites").iterdir()) and not (tmp_path / "job").exists(), \
        "kept apart from the photo set's own job folder in a shared work folder"
