"""One job per output at a time: OUTPUT/_lock.json names the run that holds it.

The lock is created only if absent and whole: locally a fully written temp file is hard-linked
into place (link fails if the name exists, so no taker ever sees a half-written lock); on gs:// a
generation-0 precondition, so two launchers racing for one bucket prefix cannot both win. A lock
that cannot be read is never taken silently: the launch is refused unless --break_lock. It records host, pid, the process's
start time and the run id. A lock left by a process that is gone (same host, pid dead or reused)
is stale and taken over; any other lock refuses the launch in one line, which says how to break
it (``--break_lock``) when its run is known to be dead (a remote job that failed, say).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass, field

from apache_beam.io.filesystems import FileSystems

from transforms.core import uris
from transforms.core.artifacts import exists, write_temp

LOCK = "_lock.json"


class OutputBusyError(Exception):
    """Another run holds the output; the message is one line for the user."""


class UnreadableLockError(Exception):
    """The lock file exists but is not a lock this tool wrote."""


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


def parse_lock(text: bytes) -> Lock:
    """A lock read back is data: UnreadableLockError unless it is one this tool wrote."""
    try:
        data = json.loads(text.decode("utf-8"))
        lock = Lock(**{k: data[k] for k in Lock.__dataclass_fields__ if k in data})
    except (ValueError, TypeError, AttributeError) as exc:
        raise UnreadableLockError(f"{type(exc).__name__}: {exc}" if str(exc) else "empty") from None
    if not (isinstance(lock.run_id, str) and isinstance(lock.host, str) and isinstance(lock.pid, int)
            and isinstance(lock.pid_start, str) and isinstance(lock.started, str)):
        raise UnreadableLockError("a field has the wrong type")
    return lock


def read_lock(output: str) -> Lock | None:
    """The lock, None when there is none; UnreadableLockError when it exists but is no lock."""
    path = lock_path(output)
    if not uris.scheme(path) and not os.path.lexists(path):
        return None
    try:
        with FileSystems.open(path) as f:
            text = f.read()
    except Exception as exc:  # noqa: BLE001 - every filesystem raises its own types
        if not exists(path):
            return None
        raise UnreadableLockError(f"{type(exc).__name__}: {exc}") from None
    return parse_lock(text)


def _create_local(path: str, text: str) -> bool:
    tmp = write_temp(os.path.dirname(path) or ".", LOCK, text)
    try:
        try:
            os.link(tmp, path)  # atomic create-if-absent of a whole file
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _take_over(path: str, judged: Lock | None) -> bool:
    """Remove the stale or broken lock we judged, and only that one: locally it is first renamed
    aside (one taker wins the rename), then checked to be the lock judged; another taker's fresh
    lock moved by mistake is put back."""
    if uris.scheme(path):
        with contextlib.suppress(Exception):
            FileSystems.delete([path])
        return True
    aside = f"{path}.{secrets.token_hex(6)}.old"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # another taker removed it first: try to create
    try:
        with open(aside, "rb") as f:
            moved = f.read()
        try:
            same = parse_lock(moved) == judged
        except UnreadableLockError:
            same = judged is None  # the broken lock --break_lock was asked to replace
        if not same:
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)  # not the lock we judged: a live taker's; restore it
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(aside)


def _create(path: str, text: str) -> bool:
    """Create ``path`` holding ``text`` only if it does not exist; False if it does."""
    if not uris.scheme(path):
        return _create_local(path, text)
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
        try:
            if _create(path, text):
                return ours, replaced
        except OSError as exc:  # a full or read-only disk: one line, and no lock left behind
            raise OutputBusyError(f"--output {output}: cannot create the lock {path} ({exc.strerror or exc})") from None
        try:
            held = read_lock(output)
        except UnreadableLockError as exc:
            if not break_lock:
                raise OutputBusyError(f"--output {output}: its lock {path} is unreadable ({exc}); if no job "
                                      "uses this output, pass --break_lock") from None
            held = None
        if held is not None and not held.is_stale() and not break_lock:
            raise OutputBusyError(f"--output {output} is in use by {held.describe()}; wait for it to finish, "
                             "or pass --break_lock if that run is gone")
        if _take_over(path, held):
            replaced = held
    raise OutputBusyError(f"--output {output}: could not take the lock {path}")


def release(output: str, run_id: str) -> None:
    """Drop the lock if this run still holds it (a broken-and-retaken lock is someone else's)."""
    try:
        held = read_lock(output)
    except UnreadableLockError:
        return  # not ours to remove
    if held is not None and held.run_id == run_id:
        with contextlib.suppress(Exception):  # already gone
            FileSystems.delete([lock_path(output)])
