"""Shared fixtures: paths to the data beside the clone, a fake-embedder assistant, a real one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.config import Settings

from .fakes import HashEmbedder

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
ENCODERS = "ASSISTANT_EMBEDDING_CACHE_DIR"


@pytest.fixture(scope="session", autouse=True)
def encoder_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One encoder cache for the run (the model exported and calibrated once), for the `assistant` processes that
    tests start too; the user's own cache is left alone."""
    cache = tmp_path_factory.mktemp("encoders")
    before = os.environ.get(ENCODERS)
    os.environ[ENCODERS] = str(cache)
    yield cache
    if before is None:
        os.environ.pop(ENCODERS, None)
    else:
        os.environ[ENCODERS] = before


def settings_for(index_dir: Path, **retrieval: object) -> Settings:
    """Default settings pointed at a temporary index (and the run's encoder cache)."""
    s = Settings().replace("index", dir=str(index_dir))
    if ENCODERS in os.environ:
        s = s.replace("embedding", cache_dir=os.environ[ENCODERS])
    return s.replace("retrieval", **retrieval) if retrieval else s


def cli(*args: object, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`assistant ARGS...` run as a user runs it, from the project folder; output captured as text."""
    cmd = [sys.executable, "-m", "assistant", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def bbc_sample(dest: Path, n: int) -> None:
    """The first n BBC business articles copied into a new folder (the test is skipped without ../shared)."""
    src = SHARED / "corpora" / "bbc-news" / "bbc" / "business"
    if not src.is_dir():
        pytest.skip(f"{src} is not there (../shared beside the clone)")
    dest.mkdir(parents=True)
    for f in sorted(src.glob("*.txt"))[:n]:
        shutil.copy(f, dest / f"bbc-{f.name}")


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body carrying files under the field `files`, and its content-type header."""
    boundary = "assistant-" + uuid.uuid4().hex
    body = b""
    for name, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        body += head.encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), {"content-type": f"multipart/form-data; boundary={boundary}"}


def upload(url: str, files: list[tuple[str, bytes]], timeout: float = 300) -> dict:
    """`POST /api/articles` with these (name, bytes) files; the JSON report."""
    body, headers = multipart(files)
    req = urllib.request.Request(url + "/api/articles", data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


@contextlib.contextmanager
def another_writer(assistant: Assistant) -> Iterator[threading.Event]:
    """Another thread holds the index's writer lock until the yielded event is set (at most 30 s)."""
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with assistant.engine.writing():
            held.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    try:
        yield release
    finally:
        release.set()
        t.join()


@pytest.fixture
def seeds_copy(tmp_path: Path) -> Path:
    """A writable copy of the seed articles."""
    dest = tmp_path / "seeds"
    shutil.copytree(SEEDS, dest)
    return dest


@pytest.fixture
def fake_assistant(tmp_path: Path, seeds_copy: Path) -> Assistant:
    """An assistant over the seeds with the fake embedder (fast)."""
    a = Assistant(settings_for(tmp_path / "index", min_score=0.05), embedder=HashEmbedder())
    a.add([seeds_copy])
    return a


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the seeds built once with the real packaged model."""
    index_dir = tmp_path_factory.mktemp("real") / "index"
    Assistant(settings_for(index_dir)).add([SEEDS])
    return index_dir


@pytest.fixture(scope="session")
def real_segmented(tmp_path_factory: pytest.TempPathFactory, real_index: Path) -> Path:
    """The seeds index again, written one article at a time (five segments; the last written with another article
    that is then removed: a deletion file): the same articles and passages as `real_index`."""
    index_dir = tmp_path_factory.mktemp("segmented") / "index"
    a = Assistant(settings_for(index_dir))
    seeds = sorted(SEEDS.iterdir())
    for f in seeds[:-1]:
        a.add([f])
    extra = index_dir.parent / "extra.txt"
    extra.write_text("Harbour notes\n\nThe harbour master said the ferry would run late on Sunday.\n")
    a.add([seeds[-1], extra])
    assert a.remove(["extra.txt"]) == 1
    segments = a.view.meta["segments"]
    assert len(segments) == 5 and segments[-1].get("deleted") and a.view.meta["articles"] == 5
    return index_dir


@pytest.fixture(scope="session")
def real_assistant(real_index: Path) -> Assistant:
    """The real-model assistant over the seeds index."""
    return Assistant.load(index_dir=real_index)


@contextlib.contextmanager
def running_server(index_dir: Path, *args: str) -> Iterator[str]:
    """A real `assistant serve` on a free loopback port, over `index_dir`; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "assistant", "serve", "--index-dir", str(index_dir), "--port", str(port), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/openapi.json", timeout=2)
                break
            except urllib.error.HTTPError:  # answering, behind a login
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {proc.stdout.read()}")
                if time.time() > deadline:
                    pytest.fail("server did not start in 180 s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(real_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real `assistant serve` over a copy of the seeds index, shared by one test module: (URL, index folder)."""
    index = tmp_path_factory.mktemp("served") / "index"
    shutil.copytree(real_index, index)
    with running_server(index) as url:
        yield url, index


@pytest.fixture(scope="session")
def pg_folder() -> Iterator[Path]:
    """A folder for the run's PostgreSQL servers (see server_folder)."""
    with server_folder() as folder:
        yield folder


@contextlib.contextmanager
def server_folder() -> Iterator[Path]:
    """A folder under /tmp that the unprivileged server user can enter (pytest's tmp_path is 0700 as root); every
    server still running on a folder inside it is killed at the end."""
    from assistant import pgserver

    base = Path(tempfile.mkdtemp(prefix="assistant-pg-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for data in base.iterdir():
            if data.is_dir() and (running := pgserver.running(data)) is not None:
                running.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(pg_folder: Path):  # noqa: ANN201 - pgserver.Server
    """A real PostgreSQL 18 + pgvector primary on a loopback port, for the whole run."""
    from assistant import pgserver

    server = pgserver.start(pg_folder / "primary", password="test-secret")
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:  # noqa: ANN001
    """The URL of a new, empty database on the test server (dropped afterwards)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def engine_settings(backend: str, folder: Path, url: str = "", **retrieval: object) -> Settings:
    """Settings for one engine: the embedded index in `folder`, or the database at `url` (`folder` then holds
    the encoder, staging and uploads)."""
    s = settings_for(folder, **retrieval)
    return s.replace("index", backend=backend, url=url) if backend == "postgres" else s


@pytest.fixture(params=["embedded", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Each engine in turn: (its name, the URL of an empty database for postgres, else '')."""
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("pg_url")
    return "embedded", ""
