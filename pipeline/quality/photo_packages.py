"""python -m pipeline.quality.photo_packages: unpack every Debian package the photo set reads
that is not installed here (``make photo-packages``; no root, no dependency).

Apart from pipeline/quality/debian_packages.py, which knows nothing of the photo set, so that
the photo set, which reads through it, and this command import in one direction only.
"""

from __future__ import annotations

from pipeline.quality import photo_set
from pipeline.quality.debian_packages import Download, apt_download, unpack_missing


def main(argv: list[str] | None = None, download: Download = apt_download) -> list[str]:
    """The packages unpacked (a package still missing a file ends the command in one line)."""
    from pipeline.commands import Parser

    Parser("python -m pipeline.quality.photo_packages", __doc__ or "").parse_args(argv)
    return unpack_missing(photo_set.packages(), download)


if __name__ == "__main__":
    main()
