"""Fast, anonymous GCS access when ``STORAGE_EMULATOR_HOST`` points at a GCS emulator.

Beam looks for Google credentials before its first gs:// call and, finding none, retries with
backoff for about 27 s per process before falling back to an anonymous client. With an
emulator there are no credentials to find: we tell Beam's credential cache up front that
there are none, so it goes straight to the anonymous client (which google-cloud-storage
points at the emulator). A test fixture: the GCS tests call it once the emulator runs; no
production import touches Beam.
Without STORAGE_EMULATOR_HOST nothing changes: no private field is touched.

Why a private field: Beam 2.77 has no public route. ``--no_auth`` is parsed
(GoogleCloudOptions) but never read by its credential lookup, and
``gcsio.create_storage_client(use_credentials=False)`` is not reachable through FileSystems.
The patch is guarded by hasattr, so a Beam with another cache keeps its own behaviour.
"""

from __future__ import annotations

import os


def use_anonymous_gcs_if_emulated() -> bool:
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return False
    try:
        from apache_beam.internal.gcp import auth
    except ImportError:
        return False
    cache = getattr(auth, "_Credentials", None)
    if cache is None or not hasattr(cache, "_credentials_init"):
        return False  # a Beam version with another credential cache: keep its behaviour
    with cache._credentials_lock:  # noqa: SLF001 - Beam's process-wide credential cache
        cache._credentials = None  # noqa: SLF001
        cache._credentials_init = True  # noqa: SLF001
    return True
