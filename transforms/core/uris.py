"""Local path or URI: one rule for every module that must tell them apart.

The rule is Beam's (``FileSystems.get_scheme``): a path is a URI when it starts with
``scheme://``; everything else is a local path. Kept here without importing Beam, so the light
modules that answer ``--help`` stay light.
"""

from __future__ import annotations

import re

_URI = re.compile(r"(?P<scheme>[a-zA-Z][-a-zA-Z0-9+.]*)://")  # FileSystems.URI_SCHEMA_PATTERN


def scheme(path: str) -> str | None:
    """The scheme FileSystems reads ``path`` with (gs, http, file...), lower case; None for a
    local path, to which os.path applies."""
    match = _URI.match(path.strip())
    return match.group("scheme").lower() if match else None
