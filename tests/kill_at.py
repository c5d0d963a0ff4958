"""Run a command module and SIGKILL it at one named step of its writes (transforms/core/faults.py).

python -m tests.kill_at STEP MODULE [ARGS...]    e.g. tests.kill_at commit:rename0 pipeline.tag --input ...
"""

from __future__ import annotations

import os
import runpy
import signal
import sys

from transforms.core import faults


def main() -> None:
    where, module, *args = sys.argv[1:]

    def kill(name: str) -> None:
        if name == where:
            os.kill(os.getpid(), signal.SIGKILL)

    faults.on_step(kill)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
