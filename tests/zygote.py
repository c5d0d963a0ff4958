"""A fork server for tests that kill many short jobs: it imports the jobs' libraries once and
forks a fresh child per run, so a run costs its own work rather than a Python start with Beam
and torch. Each child runs ``python -m MODULE ARGS`` as a new process would: its own session
(a SIGKILL to its group takes it all), stdout to /dev/null, stderr to a file, atexit at its end.

    python -m tests.zygote PRELOAD...   reads one JSON request per line on stdin:
    {"module": ..., "args": [...], "stderr": PATH, "kill_at": STEP or null}
    and answers the child's pid, then its exit code (negative: killed by that signal).

A forked child is only as sound as its parent's threads: the server refuses to start if an
import left a second Python thread running (the native pools of OpenBLAS and jemalloc that numpy
and pyarrow start are fork-aware: both re-arm through pthread_atfork).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(request: dict) -> None:
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    if request.get("kill_at"):
        from transforms.core import faults

        def kill(name: str) -> None:
            if name == request["kill_at"]:
                os.kill(os.getpid(), signal.SIGKILL)

        faults.on_step(kill)
    sys.argv = [request["module"], *request["args"]]
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    sys.exit(0)


def serve(preload: list[str]) -> None:
    for name in preload:  # its libraries stay imported; the module itself runs fresh as __main__
        importlib.import_module(name)
        sys.modules.pop(name, None)
    if threading.active_count() != 1:
        sys.exit(f"zygote: {threading.active_count()} threads after the imports; forking would not be sound")
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)  # never returns: the child exits through the interpreter's normal end
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


class Zygote:
    """The client: ``run`` one module and return (exit code, stderr)."""

    def __init__(self, preload: list[str], workdir: Path):
        self.workdir = workdir
        tmp = workdir / "tmp"  # a killed child's temp folders (Beam's beam-pipeline-temp*) stay in the test's
        tmp.mkdir(exist_ok=True)
        # One OpenMP thread: the suite's two workers share two cores, and learn's torch training
        # (which sets no thread count of its own) spins its threads against the other worker's: 86 s
        # for the learn kill test beside two busy processes, 28 s with one thread (docs/BENCHMARKS.md).
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.zygote", *preload], cwd=ROOT, env=env, bufsize=0,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._line() == "ready", "the zygote did not start"
        self.count = 0

    def run(self, module: str, args: list[str], kill_at: str | None = None,
            kill_after: float | None = None) -> tuple[int, str]:
        """Run to its end, or SIGKILL its session ``kill_after`` seconds in (when still running)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.count += 1
        stderr = self.workdir / f"stderr{self.count}.txt"
        request = {"module": module, "args": args, "stderr": str(stderr), "kill_at": kill_at}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        pid = int(self._line())
        if kill_after is not None and not select.select([self.proc.stdout], [], [], kill_after)[0]:
            with contextlib.suppress(ProcessLookupError):  # it ended just now
                os.killpg(pid, signal.SIGKILL)
        code = int(self._line())
        return code, stderr.read_text(errors="replace")

    def _line(self) -> str:
        """One answer, read unbuffered so that ``select`` sees exactly what is still unread."""
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode().strip()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


if __name__ == "__main__":
    serve(sys.argv[1:])
