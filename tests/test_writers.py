"""Writers side by side (in one process, with the fake embedder): nothing one writer reported is undone by another;
uploads keep their own ids; waiting for the lock; damage and failed writes are one line and lose nothing."""

import errno
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant
from assistant.checksums import damaged
from assistant.indexer import update_index
from assistant.postings import Postings
from assistant.types import AssistantError
from assistant.uploads import MAX_NAME_BYTES, add_uploads, safe_name
from assistant.writer import MEANWHILE

from .conftest import another_writer, settings_for
from .fakes import HashEmbedder
from .layout import biggest, leftovers


def _story(folder: Path, name: str, title: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"{title}\n\n{body}")
    return path


def _ids(a: Assistant) -> set[str]:
    return {x["id"] for x in a.articles()}


def _stale_add(slow: Assistant, stale, paths, **kw):
    """`slow` adds `paths` on top of the snapshot it loaded earlier (as a writer that read its files first)."""
    return update_index(slow.engine, slow.folder, stale, slow.settings, lambda: slow.embedder, paths, **kw)


def test_a_slower_writer_keeps_what_a_faster_one_wrote_meanwhile(fake_assistant, tmp_path):
    slow = Assistant(fake_assistant.settings, embedder=HashEmbedder())
    stale = slow.view  # the slow writer read the index (and its files) first
    fast = _story(tmp_path / "fast", "ferry.txt", "Ferry strike", "The island ferry crews walked out on Monday.")
    fake_assistant.add([fast.parent])  # the fast writer finishes and reports its article indexed
    late = _story(tmp_path / "slow", "harvest.txt", "Harvest", "Farmers in Kent brought in a record apple harvest.")
    report, wrote = _stale_add(slow, stale, [late.parent])
    assert wrote and report.new == 1
    fresh = Assistant.load(index_dir=fake_assistant.folder, embedder=HashEmbedder())
    assert {"ferry.txt", "harvest.txt"} <= _ids(fresh)
    assert fresh.search("island ferry crews walked out")[0].citations[0].article_id == "ferry.txt"


def test_an_article_another_writer_changed_meanwhile_keeps_its_version(fake_assistant, seeds_copy):
    slow = Assistant(fake_assistant.settings, embedder=HashEmbedder())
    stale = slow.view
    target = seeds_copy / "002_a1b23aa4f37148f7.txt"
    original = target.read_text()
    target.write_text(original + "\n\nThe fast writer's closing paragraph about ferries.")
    fake_assistant.add([seeds_copy])  # reported done with the fast writer's version
    target.write_text(original + "\n\nThe slow writer's closing paragraph, read earlier.")
    report, _ = _stale_add(slow, stale, [seeds_copy])
    assert any(MEANWHILE in w.reason and "002_a1b23aa4f37148f7.txt" in w.path for w in report.warnings)
    text = Assistant.load(index_dir=fake_assistant.folder, embedder=HashEmbedder()).article_text(target.name)
    assert "fast writer's closing paragraph" in text


def test_prune_and_remove_leave_articles_added_after_the_writer_started(fake_assistant, seeds_copy):
    slow = Assistant(fake_assistant.settings, embedder=HashEmbedder())
    stale = slow.view
    _story(seeds_copy, "late.txt", "Late story", "A story added by another writer while the slow one read its files.")
    fake_assistant.add([seeds_copy])
    (seeds_copy / "late.txt").unlink()  # the slow writer never saw it on disk
    (seeds_copy / "000_2658ee1ef5810850.txt").unlink()
    report, _ = _stale_add(slow, stale, [seeds_copy], prune=True)
    ids = _ids(Assistant.load(index_dir=fake_assistant.folder, embedder=HashEmbedder()))
    assert "late.txt" in ids and "000_2658ee1ef5810850.txt" not in ids and report.removed == 1


def test_a_removal_made_during_a_build_stays(fake_assistant, seeds_copy, tmp_path):
    slow = Assistant(fake_assistant.settings, embedder=HashEmbedder())
    stale = slow.view
    assert fake_assistant.remove(["004_9ef5f17bb255e9d8.txt"]) == 1
    extra = _story(tmp_path / "extra", "new.txt", "New", "A new story about the harbour museum reopening.")
    _stale_add(slow, stale, [extra.parent])
    ids = _ids(Assistant.load(index_dir=fake_assistant.folder, embedder=HashEmbedder()))
    assert "004_9ef5f17bb255e9d8.txt" not in ids and "new.txt" in ids


def test_a_writer_waits_for_the_lock_and_says_so(fake_assistant, tmp_path, caplog):
    extra = _story(tmp_path / "extra", "new.txt", "New", "A new story about the harbour museum reopening.")
    with another_writer(fake_assistant) as release:
        other = Assistant(fake_assistant.settings, embedder=HashEmbedder())
        with pytest.raises(AssistantError, match=r"another writer has held the index in .* for over 0 s"):
            other.add([extra.parent], wait_s=0.2)
        threading.Timer(0.5, release.set).start()
        started = time.perf_counter()
        report = other.add([extra.parent])
    assert report.new == 1 and time.perf_counter() - started >= 0.3
    assert any("waiting for another writer of the index" in r.getMessage() for r in caplog.records)


def test_an_upload_cannot_replace_an_article_it_did_not_add(fake_assistant, tmp_path):
    seed_id = "000_2658ee1ef5810850.txt"
    before = fake_assistant.article_text(seed_id)
    planted = tmp_path / "planted.jsonl"
    planted.write_text(json.dumps({"id": seed_id, "title": "Planted", "text": "A planted text under a real id."}))
    same_name = _story(tmp_path / "x", seed_id, "Also planted", "A file named like a seed article.")
    result = add_uploads(fake_assistant, [planted, same_name], max_mb=1, max_files=5)
    assert result.accepted == ["planted.jsonl", seed_id]
    assert fake_assistant.article_text(seed_id) == before
    assert fake_assistant.article(seed_id)["title"] != "Planted"
    ids = _ids(fake_assistant)
    assert f"uploads/{seed_id}" in ids and f"uploads/planted.jsonl#{seed_id}" in ids
    assert fake_assistant.article(f"uploads/planted.jsonl#{seed_id}")["title"] == "Planted"
    # nor an article another upload added: record ids live inside their own file's name
    story = _story(tmp_path / "y", "story.txt", "Ferry vote", "The harbour council voted for an electric ferry.")
    add_uploads(fake_assistant, [story], max_mb=1, max_files=5)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "story.txt", "title": "Planted", "text": "Planted over another upload."}))
    add_uploads(fake_assistant, [other], max_mb=1, max_files=5)
    assert "electric ferry" in fake_assistant.article_text("uploads/story.txt")
    assert fake_assistant.article_text("uploads/other.jsonl#story.txt") == "Planted over another upload."


def test_two_files_of_one_name_are_both_kept_and_long_names_are_cut(fake_assistant, tmp_path):
    a = _story(tmp_path / "a", "story.txt", "Ferry vote", "The harbour council voted for an electric ferry.")
    b = _story(tmp_path / "b", "story.txt", "Museum", "The harbour museum reopens in May after the flood.")
    long_name = "n" * 300 + ".txt"
    c = _story(tmp_path / "c", "c.txt", "Long name", "A file uploaded under a name of 300 characters.")
    result = add_uploads(fake_assistant, [a, b, c], max_mb=1, max_files=5, names=["story.txt", "story.txt", long_name])
    assert result.accepted[:2] == ["story.txt", "story (2).txt"]
    assert len(result.accepted[2].encode()) <= MAX_NAME_BYTES and result.accepted[2].endswith(".txt")
    assert any("stored as story (2).txt" in n.reason for n in result.notes)
    ids = _ids(fake_assistant)
    assert {"uploads/story.txt", "uploads/story (2).txt", f"uploads/{result.accepted[2]}"} <= ids
    again = add_uploads(fake_assistant, [a], max_mb=1, max_files=5, names=["story.txt"])  # same content, same name
    assert again.accepted == ["story.txt"] and again.report.embedded == 0
    assert safe_name("é" * 200 + ".md").encode() and len(safe_name("é" * 200 + ".md").encode()) <= MAX_NAME_BYTES


def test_removing_an_upload_deletes_its_file_so_it_does_not_come_back(fake_assistant, tmp_path):
    a = _story(tmp_path / "a", "gone.txt", "Ferry vote", "The harbour council voted for an electric ferry.")
    add_uploads(fake_assistant, [a], max_mb=1, max_files=5)
    stored = Path(fake_assistant.settings.index.dir) / "uploads" / "gone.txt"
    assert stored.exists()
    assert fake_assistant.remove(["uploads/gone.txt"]) == 1
    assert not stored.exists()
    b = _story(tmp_path / "b", "next.txt", "Museum", "The harbour museum reopens in May after the flood.")
    add_uploads(fake_assistant, [b], max_mb=1, max_files=5)
    fake_assistant.refresh()
    assert "uploads/gone.txt" not in _ids(fake_assistant) and "uploads/next.txt" in _ids(fake_assistant)


def test_uploads_indexed_before_they_had_ids_of_their_own_move_to_them(fake_assistant, monkeypatch, tmp_path):
    folder = Path(fake_assistant.settings.index.dir) / "uploads"
    _story(folder, "old.txt", "Old upload", "An upload made by an earlier version, under its bare file name.")
    with monkeypatch.context() as m:  # what an earlier version did: the uploads folder indexed as a plain folder
        m.setattr("assistant.indexer.uploads_root", lambda folder: str(tmp_path / "elsewhere"))
        m.setattr("assistant.writer.uploads_root", lambda folder: str(tmp_path / "elsewhere"))
        fake_assistant.add([folder])
    assert "old.txt" in _ids(fake_assistant)
    new = _story(tmp_path / "new", "new.txt", "New upload", "A new upload about the harbour museum reopening.")
    add_uploads(fake_assistant, [new], max_mb=1, max_files=5)
    fake_assistant.refresh()  # reads the uploads folder again: the old upload moves to its own id
    ids = _ids(fake_assistant)
    assert "old.txt" not in ids and {"uploads/old.txt", "uploads/new.txt"} <= ids


def test_a_damaged_staging_file_is_moved_aside_not_left_to_block_every_run(tmp_path, seeds_copy, caplog):
    index = tmp_path / "index"
    index.mkdir()
    (index / "staging.sqlite").write_bytes(b"garbage, not a database" * 200)
    a = Assistant(settings_for(index), embedder=HashEmbedder())
    report = a.add([seeds_copy])
    assert report.articles == 5
    assert list(index.glob("staging.sqlite.damaged-*")) and not (index / "staging.sqlite").exists()
    assert any("was damaged" in r.getMessage() for r in caplog.records)


def test_a_failed_write_is_one_line_and_leaves_the_index_as_it_was(fake_assistant, tmp_path, monkeypatch):
    gen = fake_assistant.view.meta["generation"]
    extra = _story(tmp_path / "extra", "new.txt", "New", "A new story about the harbour museum reopening.")

    def full(self, folder):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Postings, "save", full)
    with pytest.raises(AssistantError) as e:
        fake_assistant.add([extra.parent])
    assert "\n" not in str(e.value) and "No space left on device" in str(e.value) and "index is as it was" in str(e)
    d = fake_assistant.folder
    assert json.loads((d / "manifest.json").read_text())["generation"] == gen
    assert not leftovers(d)
    monkeypatch.undo()
    assert fake_assistant.add([extra.parent]).new == 1  # what was embedded was kept: the rerun embeds nothing


@pytest.mark.parametrize("target", ["vectors.npy", "rows.npy", "tfs.npy", "index.sqlite"])
def test_garbage_in_an_index_file_is_caught_by_its_checksum(fake_assistant, target):
    d = fake_assistant.folder
    path = biggest(d) / target
    fake_assistant.reload()
    data = bytearray(path.read_bytes())
    start = len(data) // 2
    n = max(1, len(data) // 20)  # 5% of the file, same size
    data[start : start + n] = np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(AssistantError) as e:
        Assistant.load(index_dir=d, embedder=HashEmbedder())
    assert f"{target} does not match its checksum" in str(e.value) and "assistant index --rebuild" in str(e.value)


def test_large_files_are_checked_by_a_sample_that_catches_a_damaged_run(tmp_path, monkeypatch):
    from assistant import checksums

    f = tmp_path / "big.bin"
    f.write_bytes(np.random.default_rng(2).integers(0, 256, 4_000_000, dtype=np.uint8).tobytes())
    files = checksums.describe(tmp_path)
    monkeypatch.setattr(checksums, "WHOLE_MAX", 1000)  # the file counts as large: sampled when opened
    assert damaged(tmp_path, files) is None
    data = bytearray(f.read_bytes())
    original = bytes(data)
    data[1_000_000:1_020_000] = bytes(20_000)  # a run of 0.5% of the file zeroed
    f.write_bytes(bytes(data))
    assert "does not match its checksum" in damaged(tmp_path, files)
    data = bytearray(original)
    f.write_bytes(bytes(data[:5]) + bytes([data[5] ^ 1]) + bytes(data[6:]))  # one more byte: only the full check
    assert damaged(tmp_path, files, full=True)


def test_bidirectional_and_c1_controls_are_taken_out_of_uploaded_names(fake_assistant, tmp_path):
    story = _story(tmp_path / "a", "s.txt", "Ferry vote", "The harbour council voted for an electric ferry.")
    names = ["evil\u202egpj.txt", "\u2067note\u2069\u200f.md", "memo\x85\x9b.txt"]  # RLO, isolates, RLM, C1 codes
    result = add_uploads(fake_assistant, [story] * 3, max_mb=1, max_files=5, names=names)
    assert result.accepted == ["evilgpj.txt", "note.md", "memo.txt"], result.accepted  # before: kept, so the first
    # showed as "eviltxt.jpg" in the archive, the citations and the reply
    stored = {p.name for p in (Path(fake_assistant.settings.index.dir) / "uploads").iterdir()}
    assert stored == {"evilgpj.txt", "note.md", "memo.txt"}
    assert {f"uploads/{n}" for n in stored} <= _ids(fake_assistant)
