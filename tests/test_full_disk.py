"""A full disk, for real: the index folder on a small tmpfs mounted in a mount namespace of the test's own (unshare),
so nothing outside the test sees it. Each failure must be one line, and the index must stay as it was."""

import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT, SEEDS, bbc_sample

pytestmark = pytest.mark.integration
QUESTION = "What did Zelensky say to Russians?"


def _in_small_disk(tmp_path, mb, script):
    """Run a shell script with $DISK a fresh tmpfs of `mb` MB (gone when it ends); (exit code, stdout, stderr)."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare (util-linux): cannot mount a small disk for the test")
    disk = tmp_path / "disk"
    disk.mkdir()
    wrapper = f"mount -t tmpfs -o size={mb}m tmpfs {shlex.quote(str(disk))} || exit 97\nDISK={shlex.quote(str(disk))}\n"
    flags = ["-m"] if os.geteuid() == 0 else ["-rm"]
    cmd = ["unshare", *flags, "--propagation", "private", "sh", "-c", wrapper + script]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if out.returncode == 97 or "unshare failed" in out.stderr or "Operation not permitted" in out.stderr[:300]:
        pytest.skip(f"cannot mount a tmpfs in a namespace here: {out.stderr.strip()[:200]}")
    return out


def _step(out, name):
    """The exit code one step of the script recorded."""
    marker = f"=== {name} rc="
    rc = int(out.stdout.split(marker, 1)[1].split()[0])
    return rc


@pytest.mark.parametrize("free_kb", [0, 1024])  # nothing left (staging fails) / room to embed, not to write
def test_a_full_disk_during_a_build_is_one_line_and_the_old_index_still_answers(tmp_path, real_index, free_kb):
    corpus = tmp_path / "bbc"
    bbc_sample(corpus, 40)
    size = sum(f.stat().st_size for f in real_index.rglob("*") if f.is_file()) // 2**20 + 6
    py = shlex.quote(sys.executable)
    script = f"""
cp -r {shlex.quote(str(real_index))} "$DISK/index"
dd if=/dev/zero of="$DISK/filler" bs=64k 2>/dev/null
truncate -s -{free_kb}K "$DISK/filler"
{py} -m assistant index {shlex.quote(str(corpus))} --index-dir "$DISK/index" --quiet 2>"$DISK/../index.err"
echo "=== index rc=$?"
OUT="$DISK/.."
{py} -m assistant ask {shlex.quote(QUESTION)} --index-dir "$DISK/index" --json >"$OUT/ask.json" 2>"$OUT/ask.err"
echo "=== ask rc=$?"
{py} -m assistant check --full --index-dir "$DISK/index" 2>"$DISK/../check.err"
echo "=== check rc=$?"
ls -a "$DISK/index"
"""
    out = _in_small_disk(tmp_path, size, script)
    err = (tmp_path / "index.err").read_text().strip().splitlines()
    assert _step(out, "index") == 1, out.stdout + out.stderr
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "No space left on device" in err[0] or "disk is full" in err[0], err
    print(f"full disk ({free_kb} KB free) during a build: {err[0]}")
    assert _step(out, "ask") == 0, (tmp_path / "ask.err").read_text()
    assert json.loads((tmp_path / "ask.json").read_text())["found"]
    assert _step(out, "check") == 0, (tmp_path / "check.err").read_text()
    assert ".building-" not in out.stdout  # nothing half-written left behind


def test_an_index_that_cannot_hold_its_encoder_is_not_built_without_it(tmp_path):
    py = shlex.quote(sys.executable)
    script = f"""
export ASSISTANT_EMBEDDING_CACHE_DIR="$DISK/encoders"
{py} -m assistant index {shlex.quote(str(SEEDS))} --index-dir "$DISK/index" --quiet 2>"$DISK/../index.err"
echo "=== index rc=$?"
ls -a "$DISK/index" 2>/dev/null
"""
    out = _in_small_disk(tmp_path, 40, script)  # the exported encoder is about 90 MB
    err = (tmp_path / "index.err").read_text().strip().splitlines()
    assert _step(out, "index") == 1, out.stdout
    assert len(err) == 1 and err[0].startswith("error: cannot save the ONNX encoder"), err
    assert "manifest.json" not in out.stdout and "gen-" not in out.stdout
    print(f"no room for the encoder: {err[0]}")
