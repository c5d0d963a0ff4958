"""One job per output at a time: OUTPUT/_lock.json names the run that holds it.

The lock is created only if absent (O_EXCL locally; a generation-0 precondition on gs://, so two
launchers racing for one bucket prefix cannot both win). It records host, pid, the process's
start time and the run id. A lock left by a process that is gone (same host, pid dead or reused)
is stale and taken over; any other lock refuses the launch in one line, which says how to break
it (``--break_lock``) when its run is known to be dead (a remote job that failed, say).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
from dataclasses import asdict, dataclass, field

from apache_beam.io.filesystems import FileSystems

LOCK = "_lock.json"


class OutputBusyError(Exception):
    """Another run holds the output; the message is one line for the user."""


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc), so a reused pid is told apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


@dataclass
class Lock:
    run_id: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    pid_start: str = field(default_factory=lambda: _process_start(os.getpid()))
    started: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def is_stale(self) -> bool:
        """Only a lock of this host can be judged: its process is gone or is another process."""
        if self.host != socket.gethostname():
            return False
        start = _process_start(self.pid)
        return not start or (bool(self.pid_start) and start != self.pid_start)

    def describe(self) -> str:
        return f"run {self.run_id} (host {self.host}, pid {self.pid}, since {self.started})"


def lock_path(output: str) -> str:
    return FileSystems.join(output.rstrip("/"), LOCK)


def read_lock(output: str) -> Lock | None:
    path = lock_path(output)
    try:
        with FileSystems.open(path) as f:
            data = json.loads(f.read().decode("utf-8"))
        return Lock(**{k: data[k] for k in Lock.__dataclass_fields__ if k in data})
    except Exception:  # noqa: BLE001 - absent; an unreadable lock is judged by _create failing
        return None


def _create(path: str, text: str) -> bool:
    """Create ``path`` holding ``text`` only if it does not exist; False if it does."""
    if "://" not in path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return True
    if path.startswith("gs://"):
        from google.api_core.exceptions import PreconditionFailed
        from google.cloud import storage  # type: ignore[attr-defined]

        bucket, _, name = path[len("gs://"):].partition("/")
        try:
            storage.Client().bucket(bucket).blob(name).upload_from_string(text, if_generation_match=0)
        except PreconditionFailed:
            return False
        return True
    if FileSystems.exists(path):  # other object stores: no create-if-absent in FileSystems
        return False
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))
    return True


def acquire(output: str, run_id: str, break_lock: bool = False) -> tuple[Lock, Lock | None]:
    """Take the output for ``run_id``; returns (our lock, the stale or broken lock it replaced)."""
    ours = Lock(run_id)
    text = json.dumps(asdict(ours))
    path = lock_path(output)
    replaced = None
    for _ in range(3):
        if _create(path, text):
            return ours, replaced
        held = read_lock(output)
        if held is not None and not held.is_stale() and not break_lock:
            raise OutputBusyError(f"--output {output} is in use by {held.describe()}; wait for it to finish, "
                             "or pass --break_lock if that run is gone")
        replaced = held
        FileSystems.delete([path])
    raise OutputBusyError(f"--output {output}: could not take the lock {path}")


def release(output: str, run_id: str) -> None:
    """Drop the lock if this run still holds it (a broken-and-retaken lock is someone else's)."""
    held = read_lock(output)
    if held is not None and held.run_id == run_id:
        with contextlib.suppress(Exception):  # already gone
            FileSystems.delete([lock_path(output)])
