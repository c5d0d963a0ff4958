"""Named kill points for the crash-safety tests (tests/test_crash_safety.py).

A multi-step write (a run's commit, a model folder's publish) calls ``step("<where>:<step>")``
between its steps; the test sets IMAGE_TAGGER_FAULT to one of those names in a child process,
which is then killed with SIGKILL at exactly that point. Unset, a step costs a string compare.
"""

from __future__ import annotations

import os
import signal

_FAULT = os.environ.get("IMAGE_TAGGER_FAULT", "")


def step(name: str) -> None:
    if name == _FAULT:
        os.kill(os.getpid(), signal.SIGKILL)
