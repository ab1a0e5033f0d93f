"""Embedding on a Dask cluster: the client ships the ONNX encoder to each worker once, then sends it batches."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from .embedding import EmbeddingStopped
from .onnx_encoder import OnnxEncoder, _cores
from .types import AssistantError

try:
    from distributed import Client, WorkerPlugin, wait
    from distributed.client import FIRST_COMPLETED
except ImportError:  # the default install has no Dask
    raise AssistantError("embedding on a cluster needs Dask: pip install -e '.[cluster]'") from None

T = TypeVar("T")
CONNECT_S = 5  # how long to try to reach the scheduler (and to reconnect to it) before giving up
NO_WORKERS_S = 60  # how long a cluster may have no worker at all before the build stops
AHEAD = 2  # batches in flight per worker thread: one running, one waiting, so no worker idles between batches
FILES = ("encoder.json", "tokenizer.json", "model.onnx")  # what a worker needs of an exported encoder
_END = object()
_ENCODERS: dict[str, OnnxEncoder] = {}  # in a worker process: the encoders loaded there, by content hash


class EncoderPlugin(WorkerPlugin):
    """Carries the encoder's files to every worker (those joining later too) and loads them there once."""

    idempotent = True  # registered again by a later run: the scheduler keeps the first, workers are not sent it again

    def __init__(self, files: dict[str, bytes], digest: str) -> None:
        self.files, self.digest = files, digest
        self.name = f"assistant-encoder-{digest[:16]}"

    def setup(self, worker: Any) -> None:
        """Write the files into the worker's folder, load the encoder, keep it in this process."""
        if self.digest not in _ENCODERS:
            folder = Path(tempfile.mkdtemp(prefix="assistant-encoder-", dir=worker.local_directory))
            try:
                for name, data in self.files.items():
                    (folder / name).write_bytes(data)
                threads = max(1, _cores() // max(1, worker.state.nthreads))  # the worker's threads share the cores
                _ENCODERS[self.digest] = OnnxEncoder(folder, threads=threads)
            finally:
                shutil.rmtree(folder, ignore_errors=True)  # onnxruntime holds the model in memory
        self.files = {}  # the scheduler keeps its own copy for workers that join later


def _encode(digest: str, batch_size: int, texts: list[str]) -> np.ndarray:
    """Run on a worker: the vectors of the texts, by the encoder the plugin loaded there."""
    encoder = _ENCODERS.get(digest)
    if encoder is None:
        raise RuntimeError("the encoder is not loaded on this worker (see its log for why)")
    if encoder.batch_size != batch_size:
        encoder = copy.copy(encoder)  # the same session, another batch size
        encoder.batch_size = batch_size
    return encoder.encode(texts)


def encoder_files(folder: Path) -> tuple[dict[str, bytes], str]:
    """The files of an exported encoder that a worker needs, and their content hash."""
    files = {name: (folder / name).read_bytes() for name in FILES}
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return files, digest.hexdigest()


class ClusterEncoder:
    """A connection to a Dask scheduler whose workers embed batches of texts with the index's ONNX encoder."""

    def __init__(self, address: str, encoder_dir: Path, batch_size: int) -> None:
        """Connect (a one-line error when the scheduler cannot be reached) and ship the encoder to the workers."""
        self.address, self.batch_size = address, batch_size
        files, self.digest = encoder_files(encoder_dir)
        self._quiet = _Quiet()
        try:
            self.client = Client(address, timeout=CONNECT_S)  # the default client: `wait` uses it
        except Exception as e:  # refused, no answer, or something that is not a scheduler (a garbled reply)
            self._quiet.restore()
            why = (
                f"no answer within {CONNECT_S} s"
                if isinstance(e, OSError | TimeoutError)
                else f"what answers there is not a Dask scheduler: {_reason(e)}"
            )
            raise AssistantError(
                f"cannot reach the Dask scheduler at {address} ({why}); start it with `dask scheduler` and workers "
                f"with `dask worker {address}`, or drop --cluster (embedding.cluster)"
            ) from None
        try:
            self.client.register_plugin(EncoderPlugin(files, self.digest))
        except Exception as e:
            error = self._failed(e) if self.client.status != "running" else None
            self.close()
            raise error or AssistantError(
                f"a worker of the Dask cluster at {address} could not load the encoder ({_reason(e)}); every worker "
                "needs this project installed: pip install -e '.[cluster]'"
            ) from None

    def map(self, batches: Iterable[T], texts_of: Callable[[T], list[str]]) -> Iterator[tuple[T, np.ndarray]]:
        """Each batch with the vectors of its texts, as workers finish them (not in order); several batches run ahead
        so that no worker waits. A batch lost with a worker is embedded again by another (Dask recomputes it)."""
        todo = iter(batches)
        running: dict[Any, T] = {}
        idle_since: float | None = None
        while True:
            room = max(2, AHEAD * sum(self._workers().values())) - len(running)
            for batch in _take(todo, room):
                future = self.client.submit(_encode, self.digest, self.batch_size, texts_of(batch), pure=False)
                running[future] = batch
            if not running:
                return
            try:
                done = wait(list(running), timeout=5, return_when=FIRST_COMPLETED).done
            except TimeoutError:
                idle_since = None if self._workers() else idle_since or time.monotonic()
                if idle_since is not None and time.monotonic() - idle_since > NO_WORKERS_S:
                    raise EmbeddingStopped(
                        f"the Dask cluster at {self.address} has had no worker for {NO_WORKERS_S} s; start some "
                        f"(`dask worker {self.address}`)"
                    ) from None
                continue
            except Exception as e:
                raise self._failed(e) from None
            for future in done:
                try:
                    vectors = future.result()
                except Exception as e:
                    raise self._failed(e) from None
                yield running.pop(future), vectors

    def _workers(self) -> dict[str, int]:
        """Threads of each worker of the cluster now."""
        try:
            return self.client.nthreads()
        except Exception as e:
            raise self._failed(e) from None

    def _failed(self, e: BaseException) -> AssistantError:
        """The one-line error for a failure while embedding: the scheduler gone, or a batch failing on workers."""
        if self.client.status != "running":
            return EmbeddingStopped(
                f"lost the connection to the Dask scheduler at {self.address}; start it and its workers again, or "
                "drop --cluster"
            )
        if type(e).__name__ == "KilledWorker":
            return EmbeddingStopped(
                f"a batch of passages brought down several workers of the Dask cluster at {self.address} in turn "
                "(out of memory?); check the workers' logs"
            )
        return EmbeddingStopped(f"a worker of the Dask cluster at {self.address} failed to embed ({_reason(e)})")

    def close(self) -> None:
        """Cancel what is still running and disconnect."""
        try:
            self.client.close(timeout=CONNECT_S)
        except Exception:  # the scheduler is gone already
            pass
        finally:
            self._quiet.restore()

    def __enter__(self) -> ClusterEncoder:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _Quiet(logging.Filter):
    """Dask's own log lines (reconnecting, tracebacks of a lost connection) held back while a client runs: the build
    reports a failure in one line of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.handlers = list(logging.getLogger("distributed").handlers)  # its child loggers write through these
        for handler in self.handlers:
            handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop every record of Dask's loggers."""
        return not record.name.startswith("distributed")

    def restore(self) -> None:
        """Let Dask log as before."""
        for handler in self.handlers:
            handler.removeFilter(self)


@dataclass
class LocalCluster:
    """A scheduler and its workers on this machine, each a process of its own (tests and the benchmark)."""

    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    log: Path | None = None  # the scheduler's log

    def stop(self) -> None:
        """Kill every process of the cluster by its id."""
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@contextlib.contextmanager
def local_cluster(folder: Path, workers: int, cores: Sequence[int] = ()) -> Iterator[LocalCluster]:
    """A scheduler on a free 127.0.0.1 port and `workers` one-thread workers without nannies (a worker's pid is the
    worker), logs and scratch files in `folder`; worker i pinned to core cores[i] when given. Killed on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    address_file, log = folder / "scheduler.json", folder / "scheduler.log"
    address_file.unlink(missing_ok=True)
    run = [sys.executable, "-m"]
    with open(log, "w") as out:
        scheduler = subprocess.Popen(
            [*run, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
            + ["--scheduler-file", str(address_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    cluster = LocalCluster("", scheduler, log=log)
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() or not address_file.read_text().strip():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise AssistantError(f"the Dask scheduler did not start: {log.read_text()[-300:]}")
            time.sleep(0.1)
        cluster.address = json.loads(address_file.read_text())["address"]
        for i in range(workers):
            pin = ["taskset", "-c", str(cores[i])] if cores else []
            cmd = [*pin, *run, "distributed.cli.dask_worker", cluster.address, "--nthreads", "1", "--no-nanny"]
            cmd += ["--no-dashboard", "--local-directory", str(folder / f"worker{i}")]
            cluster.workers.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if workers:
            with Client(cluster.address, timeout=CONNECT_S, set_as_default=False) as client:
                client.wait_for_workers(workers, timeout=60)
        yield cluster
    finally:
        cluster.stop()


def _take(items: Iterator[T], n: int) -> list[T]:
    """Up to n more items."""
    out: list[T] = []
    while len(out) < n and (item := next(items, _END)) is not _END:
        out.append(item)
    return out


def _reason(e: BaseException) -> str:
    """An exception in a few words: its type and first line."""
    first = (str(e).splitlines() or [""])[0][:200]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
