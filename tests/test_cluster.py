"""Embedding on a real Dask cluster on 127.0.0.1 (a scheduler and workers as processes): the same index as a local
build, a worker killed mid-run, the scheduler gone, an address nobody answers at, Dask not installed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant
from assistant.types import AssistantError

from .conftest import ROOT, SEEDS, bbc_sample, cli, engine_settings, settings_for
from .test_integration import _staged

pytest.importorskip("distributed", reason="pip install -e '.[cluster]'")
pytestmark = pytest.mark.integration

from assistant.cluster import LocalCluster, local_cluster  # noqa: E402 - needs Dask


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Two workers for the module (the worker-kill test, last, leaves one)."""
    with local_cluster(tmp_path_factory.mktemp("dask"), workers=2) as c:
        yield c


def _with_encoder(index: Path, real_index: Path) -> Path:
    """A new index folder (its encoder is the run's shared one, prepared with the seeds index: none exports again)."""
    index.mkdir(parents=True)
    return index


def _vectors(a: Assistant) -> dict[tuple, np.ndarray]:
    """Every passage's vector by (article, start, end), read through the engine contract: coordinate k of each
    vector is its cosine to the k-th unit vector."""
    view = a.view
    n, dim = view.meta["passages"], view.meta["dimension"]
    ids = np.sort(view.dense_top(np.full(dim, dim**-0.5, np.float32), n, None, 512).ids)
    rows = view.passages(ids.tolist())
    basis = np.eye(dim, dtype=np.float32)
    matrix = np.stack([view.dense_scores(basis[k], ids) for k in range(dim)], axis=1)
    return {rows[i][:3]: matrix[j] for j, i in enumerate(ids.tolist())}


def _assert_same_vectors(built: Assistant, local: Assistant) -> None:
    """The same passages, and each one's vectors within cosine 0.9999 (a local build embeds with the runtime its
    calibration chose, torch bf16 on a CPU with AMX: within 0.9999 of onnxruntime's fp32, which the workers run)."""
    a, b = _vectors(built), _vectors(local)
    assert a.keys() == b.keys()
    cosines = [float(a[k] @ b[k] / np.linalg.norm(a[k]) / np.linalg.norm(b[k])) for k in a]
    assert min(cosines) >= 0.9999


def test_cluster_builds_the_same_index_as_a_local_build(cluster, tmp_path, real_index):
    index = _with_encoder(tmp_path / "index", real_index)
    out = cli("index", SEEDS, "--index-dir", index, "--cluster", cluster.address)
    assert out.returncode == 0, out.stderr
    assert f"{Assistant.load(index_dir=real_index).view.meta['passages']} embedded" in out.stdout
    assert "passage/s" in out.stderr  # the client shows the progress bar
    _assert_same_vectors(Assistant.load(index_dir=index), Assistant.load(index_dir=real_index))


def test_postgres_takes_the_clusters_vectors(cluster, tmp_path, real_index, pg_url):
    folder = _with_encoder(tmp_path / "folder", real_index)
    settings = engine_settings("postgres", folder, pg_url).replace("embedding", cluster=cluster.address)
    report = Assistant(settings).add([SEEDS])
    assert report.embedded == report.passages > 40
    _assert_same_vectors(Assistant.load(config=settings), Assistant.load(index_dir=real_index))


def test_a_worker_killed_mid_run_has_its_batches_done_by_another(cluster, tmp_path, real_index):
    corpus = tmp_path / "bbc"
    bbc_sample(corpus, 40)
    local = Assistant(settings_for(_with_encoder(tmp_path / "local", real_index)))
    local.add([corpus])
    index = _with_encoder(tmp_path / "index", real_index)
    settings = settings_for(index).replace("embedding", cluster=cluster.address, batch_size=2)  # ~17 batches
    built = Assistant(settings)
    result: dict[str, object] = {}
    build = threading.Thread(target=lambda: result.update(report=built.add([corpus])))
    build.start()
    deadline = time.time() + 120
    while _staged(index / "staging.sqlite") < 3 and build.is_alive() and time.time() < deadline:
        time.sleep(0.05)
    staged = _staged(index / "staging.sqlite")
    assert build.is_alive() and 3 <= staged < 40, "the build ended before a worker could be killed"
    victim = cluster.workers[0]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    build.join(timeout=180)
    assert not build.is_alive() and "report" in result, "the build did not finish without the killed worker"
    report = result["report"]
    assert report.new == 40 and report.embedded == report.passages == local.view.meta["passages"]
    assert "Remove worker" in cluster.log.read_text()  # the scheduler saw it go, and sent its batches elsewhere
    _assert_same_vectors(Assistant.load(index_dir=index), local)


def test_the_scheduler_going_away_is_one_line_and_the_next_run_resumes(tmp_path, real_index):
    corpus = tmp_path / "bbc"
    bbc_sample(corpus, 40)
    index = _with_encoder(tmp_path / "index", real_index)
    with local_cluster(tmp_path / "dask", workers=1) as c:
        env = {**os.environ, "ASSISTANT_EMBEDDING_BATCH_SIZE": "2"}
        cmd = [sys.executable, "-m", "assistant", "index", str(corpus), "--index-dir", str(index), "--quiet"]
        proc = subprocess.Popen(
            [*cmd, "--cluster", c.address], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.time() + 120
        while _staged(index / "staging.sqlite") < 2 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the build ended before the scheduler could be stopped"
        os.kill(c.scheduler.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: lost the connection to the Dask scheduler at {c.address}")
    assert "run the same command again" in err and "Traceback" not in err
    assert not (index / "manifest.json").exists()  # nothing written: the index is as it was (none)
    report = Assistant(settings_for(index)).add([corpus])  # the next run, here
    assert report.resumed > 0 and report.embedded + report.resumed == report.passages


def test_an_address_nobody_answers_at_is_one_line(tmp_path, real_index):
    index = _with_encoder(tmp_path / "index", real_index)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    started = time.time()
    out = cli("index", SEEDS, "--index-dir", index, "--cluster", f"tcp://127.0.0.1:{port}", "--quiet")
    assert out.returncode == 1 and time.time() - started < 30
    assert out.stderr.strip() == (
        f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port} (no answer within 5 s); start it with "
        f"`dask scheduler` and workers with `dask worker tcp://127.0.0.1:{port}`, or drop --cluster (embedding.cluster)"
    )


def test_without_dask_the_default_install_works_and_cluster_says_what_to_install(tmp_path, real_index):
    index = _with_encoder(tmp_path / "index", real_index)
    code = (
        "import sys; sys.modules['distributed'] = None\n"  # as if Dask were not installed
        "import assistant.cli, assistant.core, assistant.indexer\n"
        "from assistant.cli import main\n"
        f"sys.exit(main(['index', {str(SEEDS)!r}, '--index-dir', {str(index)!r}, '--cluster', 'tcp://h:8786']))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip() == "error: embedding on a cluster needs Dask: pip install -e '.[cluster]'"


def test_a_model_without_an_onnx_encoder_cannot_use_a_cluster(tmp_path):
    from .fakes import HashEmbedder

    settings = settings_for(tmp_path / "index").replace("embedding", cluster="tcp://127.0.0.1:8786")
    with pytest.raises(AssistantError, match="ONNX encoder on the workers"):
        Assistant(settings, embedder=HashEmbedder()).add([SEEDS])
