"""Writers racing for real: separate `assistant` processes and a running server on one index, started at random
moments against each other, many times. Whatever a writer reported as indexed must still be there at the end."""

import json
import os
import random
import shutil
import subprocess
import sys
import time

import pytest

from assistant import Assistant

from .conftest import ROOT, SEEDS, bbc_sample, cli, running_server, upload

pytestmark = pytest.mark.integration
ROUNDS = int(os.environ.get("ASSISTANT_RACE_ROUNDS", "6"))
FAST = "Harbour ferry strike\n\nThe crews of the Port Ellery harbour ferry walked out on Monday over a pay offer."


def _ids(index):
    return {a["id"] for a in Assistant.load(index_dir=index).articles()}


def _start(*args):
    cmd = [sys.executable, "-m", "assistant", *map(str, args)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def slow_corpus(tmp_path_factory):
    """40 BBC business articles: a build that takes a few seconds (reading, chunking, embedding)."""
    d = tmp_path_factory.mktemp("race") / "bbc40"
    bbc_sample(d, 40)
    return d


def _fresh_index(real_index, dest):
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(real_index, dest)
    return dest


def test_a_fast_writer_started_during_a_slow_build_keeps_its_articles(tmp_path, real_index, slow_corpus):
    fast = tmp_path / "fast"
    fast.mkdir()
    (fast / "ferry-strike.txt").write_text(FAST)
    slow_ids = {f.name for f in slow_corpus.iterdir()}
    rng = random.Random(int(os.environ.get("ASSISTANT_KILL_SEED", "2026")))
    seen = []
    for n in range(ROUNDS):
        index = _fresh_index(real_index, tmp_path / "index")
        rebuild = n % 3 == 2  # every third round the slow writer rebuilds the index from scratch
        args = ("index", "--rebuild", SEEDS, slow_corpus) if rebuild else ("index", slow_corpus)
        slow = _start(*args, "--index-dir", index, "--quiet")
        delay = rng.uniform(0.2, 2.5)
        time.sleep(delay)
        during = slow.poll() is None  # the fast writer starts while the slow one has not committed
        started = time.perf_counter()
        out = cli("index", fast, "--index-dir", index, "--quiet")
        fast_s = time.perf_counter() - started
        assert out.returncode == 0, out.stderr
        slow_running = slow.poll() is None
        if not rebuild:  # reported indexed: it answers at once (a rebuild makes the fast writer wait for it)
            assert "ferry-strike.txt" in _ids(index)
        _, err = slow.communicate(timeout=600)
        assert slow.returncode == 0, err
        ids = _ids(index)
        assert "ferry-strike.txt" in ids, f"round {n}: the fast writer's article is gone"
        assert slow_ids <= ids and {p.name for p in SEEDS.iterdir()} <= ids
        waited = "waiting for another writer" in out.stderr
        kind = "rebuild" if rebuild else "update"
        seen.append((round(delay, 2), kind, during, slow_running, waited, round(fast_s, 1)))
    print(
        "races (delay s, slow writer, fast one started during it, slow one still running when the fast one ended, "
        f"fast one waited, fast s): {seen}"
    )
    assert sum(1 for _, _, during, _, _, _ in seen if during) >= ROUNDS - 1  # the rounds really raced


def test_uploads_and_a_removal_during_builds_stay(tmp_path, real_index, slow_corpus):
    index = _fresh_index(real_index, tmp_path / "index")
    removed = "000_2658ee1ef5810850.txt"
    rng = random.Random(7)
    uploaded = []
    with running_server(index) as url:
        for n in range(max(2, ROUNDS // 2)):
            corpus = tmp_path / f"slow-{n}"
            shutil.copytree(slow_corpus, corpus)
            for f in corpus.iterdir():  # new ids each round, so that every round embeds and writes
                f.rename(f.with_name(f"r{n}-{f.name}"))
            slow = _start("index", corpus, "--index-dir", index, "--quiet")
            for k in range(2):
                time.sleep(rng.uniform(0.2, 1.5))
                name = f"upload-{n}-{k}.txt"
                report = upload(
                    url, [(name, f"Upload {n} {k}\n\nFerry timetable {n}-{k} for the outer islands.".encode())]
                )
                assert report["accepted"] == [name], report
                uploaded.append(f"uploads/{name}")
                assert f"uploads/{name}" in _ids(index)  # answered as indexed: it is in the index now
            if n == 0:
                out = cli("remove", removed, "--index-dir", index)
                assert out.returncode == 0, out.stderr
            _, err = slow.communicate(timeout=600)
            assert slow.returncode == 0, err
        ids = _ids(index)
        assert set(uploaded) <= ids, sorted(set(uploaded) - ids)
        assert removed not in ids
        answer = json.loads(
            urllib_post(url, "/api/search", {"question": "Ferry timetable 0-1 for the outer islands", "k": 3})
        )
        assert any(c["article_id"] == "uploads/upload-0-1.txt" for p in answer["passages"] for c in p["citations"])
    print(f"uploads during builds: {len(uploaded)} answered and all still indexed; a removal during a build stayed")


def test_an_upload_while_another_process_holds_the_lock_waits_then_succeeds(tmp_path, real_index):
    index = _fresh_index(real_index, tmp_path / "index")
    hold = (
        "import sys, time\nfrom pathlib import Path\nfrom assistant.lock import writer_lock\n"
        "with writer_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(4)\n"
    )
    with running_server(index) as url:
        holder = subprocess.Popen([sys.executable, "-c", hold, str(index)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        started = time.perf_counter()
        report = upload(url, [("held.txt", b"Held\n\nAn upload made while another process held the writer lock.")])
        waited = time.perf_counter() - started
        holder.wait(30)
        assert report["accepted"] == ["held.txt"] and report["report"]["new"] == 1
        assert waited >= 2.5 and "uploads/held.txt" in _ids(index)
    print(f"an upload during another writer's lock waited {waited:.1f} s, then was indexed")


def urllib_post(url, path, body):
    """POST JSON; the response body as text."""
    import urllib.request

    req = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read().decode()
