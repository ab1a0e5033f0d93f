"""The writer lock of an index folder: one writer at a time across processes and threads; the others wait and say so."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .types import AssistantError

log = logging.getLogger("assistant")
FILE = ".lock"  # inside the index folder; holds who has the lock, for the others' message
_held = threading.local()  # index folders whose lock this thread holds (taking it again inside is a no-op)


def holder(folder: Path) -> str:
    """Who holds (or last held) the lock of an index folder, in words: 'pid 123, `assistant index news/`'."""
    try:
        info = json.loads((folder / FILE).read_text(encoding="utf-8"))
        since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
        return f"pid {int(info['pid'])}, `{str(info['command'])[:120]}`, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def writer_lock(folder: Path, wait_s: float | None = None) -> Iterator[float]:
    """Hold the folder's writer lock, waiting for another writer (logged once) up to `wait_s` seconds (None: as long
    as it takes); yields the seconds waited. The lock goes with the process: a writer killed at any moment frees it.
    """
    key = str(folder.resolve())
    held = getattr(_held, "folders", None)
    if held is None:
        held = _held.folders = set()
    if key in held:
        yield 0.0
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if wait_s is not None and waited >= wait_s:
                    raise AssistantError(
                        f"another writer has held the index in {folder}/ for over {wait_s:.0f} s ({holder(folder)}); "
                        "try again when it is done"
                    ) from None
                if not told:
                    log.warning("waiting for another writer of the index in %s/ (%s)…", folder, holder(folder))
                    told = True
                time.sleep(0.05)
        me = {"pid": os.getpid(), "command": " ".join(["assistant", *sys.argv[1:]]), "since": time.time()}
        with contextlib.suppress(OSError):  # who holds it is only for the others' message (a full disk may refuse it)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        held.add(key)
        try:
            yield time.monotonic() - started
        finally:
            held.discard(key)
    finally:
        os.close(fd)  # releases the lock
