"""Installable package for the image-tagging pipeline; also Beam's --setup_file for workers."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements() -> list[str]:
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="image-tagger",
    version="0.1.0",
    description="Bulk image tagging on Apache Beam: CNN tags, COCO objects, zero-shot word tags.",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*"]),
    package_data={"transforms": ["data/*.json", "data/*.txt", "data/everyday/*"], "pipeline": ["templates/*.j2"],
                  "pipeline.quality": ["data/*.json"]},
    include_package_data=True,
    install_requires=requirements(),
    entry_points={"console_scripts": ["image-tagger=pipeline.cli:main"]},
    license="Apache-2.0",
)
