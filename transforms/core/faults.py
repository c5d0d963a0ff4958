"""Named steps of multi-step writes, where a test can stop the process (tests/zygote.py).

A run's commit and a model folder's publish call ``step("<where>:<step>")`` between their
steps. Nothing listens in a real run: a step calls no hook and costs a loop over an empty list.
The crash-safety tests run the job through tests/zygote.py, which registers a hook that kills
the process with SIGKILL at exactly the named step.
"""

from __future__ import annotations

from collections.abc import Callable

_hooks: list[Callable[[str], None]] = []


def on_step(hook: Callable[[str], None]) -> None:
    """Call ``hook(name)`` at every step from now on (tests only)."""
    _hooks.append(hook)


def step(name: str) -> None:
    for hook in _hooks:
        hook(name)
