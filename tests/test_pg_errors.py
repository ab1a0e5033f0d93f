"""Bad days with PostgreSQL: each is one line saying what is wrong and what to do, and the password never shows."""

from __future__ import annotations

import os
import socket

import psycopg
import pytest

from assistant import Assistant
from assistant.config import SettingError, load_settings, settings_to_dict
from assistant.types import AssistantError

from .conftest import ROOT, engine_settings
from .fakes import HashEmbedder

SECRET = "test-secret"  # the test server's password (conftest.pg_server)


def _cli(url: str, *args: str):  # noqa: ANN202
    import subprocess
    import sys

    env = {**os.environ, "ASSISTANT_INDEX_BACKEND": "postgres", "ASSISTANT_INDEX_URL": url}
    cmd = [sys.executable, "-m", "assistant", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def _one_line(out) -> str:  # noqa: ANN001
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert SECRET not in out.stderr + out.stdout and "wrong-pass" not in out.stderr + out.stdout
    return lines[0]


def test_wrong_password_server_down_and_no_database_are_one_line_each(pg_url, tmp_path):
    wrong = pg_url.replace(f":{SECRET}@", ":wrong-pass@")
    assert "password" in _one_line(_cli(wrong, "ask", "--index-dir", str(tmp_path), "ferry strike"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    down = f"postgresql://postgres:{SECRET}@127.0.0.1:{free}/news"
    assert "not answering" in _one_line(_cli(down, "search", "--index-dir", str(tmp_path), "ferry"))
    missing = pg_url.rsplit("/", 1)[0] + "/no_such_database"
    assert "does not exist" in _one_line(_cli(missing, "ask", "--index-dir", str(tmp_path), "ferry"))
    assert "no index in" in _one_line(_cli(pg_url, "ask", "--index-dir", str(tmp_path), "ferry"))


def test_a_database_where_pgvector_cannot_be_enabled(pg_server, pg_url, tmp_path, seeds_copy):
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'")
        conn.execute("GRANT CREATE ON SCHEMA public TO plain")
        conn.execute(f"GRANT CREATE ON DATABASE {name} TO plain")
    try:
        url = pg_url.replace(f"postgres:{SECRET}@", "plain:plain-pw@")
        a = Assistant(engine_settings("postgres", tmp_path, url), embedder=HashEmbedder())
        with pytest.raises(AssistantError, match="CREATE EXTENSION vector") as failed:
            a.add([seeds_copy])
        assert "plain-pw" not in str(failed.value)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY plain")
            conn.execute("DROP ROLE plain")


def test_another_model_and_an_older_schema_say_to_rebuild(pg_url, tmp_path, seeds_copy):
    other = engine_settings("postgres", tmp_path, pg_url).replace("embedding", model="other-model")
    Assistant(other, embedder=HashEmbedder()).add([seeds_copy])
    with pytest.raises(AssistantError, match="built with model 'other-model'.*rebuild"):
        Assistant.load(config=engine_settings("postgres", tmp_path, pg_url), embedder=HashEmbedder())
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE na_meta SET value = '0' WHERE key = 'schema'")
    with pytest.raises(AssistantError, match="has schema 0, this version reads 2; rebuild"):
        Assistant.load(config=other, embedder=HashEmbedder())
    a = Assistant(other, embedder=HashEmbedder())
    assert a.add([seeds_copy], rebuild=True).new == 5  # a rebuild makes the tables anew
    assert len(Assistant.load(config=other, embedder=HashEmbedder()).articles()) == 5


def _as_schema_1(url: str) -> None:
    """Turn an index into what the previous version wrote: postings a row each (its DDL), no blocks."""
    from assistant.engines.pg_blocks import TermBlock

    with psycopg.connect(url) as conn:
        article_of = dict(conn.execute("SELECT id, article_id FROM na_passages").fetchall())
        conn.execute(
            "CREATE TABLE na_postings (article_id text NOT NULL, term text NOT NULL, passage_id bigint NOT NULL, "
            "tf int NOT NULL, length int NOT NULL, PRIMARY KEY (article_id, term, passage_id))"
        )
        conn.execute("CREATE INDEX na_postings_term ON na_postings (term, passage_id) INCLUDE (tf, length, article_id)")
        dead = {r[0] for r in conn.execute("SELECT passage_id FROM na_dead")}
        blocks = conn.execute("SELECT term, base, n, width, data FROM na_blocks", binary=True).fetchall()
        with conn.cursor().copy("COPY na_postings FROM STDIN") as copy:
            for term, base, n, width, data in blocks:
                p = TermBlock.decode(base, n, width, data)
                for pid, tf, length in zip(p.ids.tolist(), p.tfs.tolist(), p.lengths.tolist(), strict=True):
                    if pid not in dead:
                        copy.write_row((article_of[pid], term, pid, tf, length))
        conn.execute("DROP TABLE na_blocks, na_dead")
        conn.execute("DROP SEQUENCE na_block_ids")
        conn.execute("UPDATE na_meta SET value = '1' WHERE key = 'schema'")


def test_an_index_of_the_previous_schema_is_upgraded_by_optimize(pg_url, tmp_path, seeds_copy):
    settings = engine_settings("postgres", tmp_path, pg_url)
    a = Assistant(settings, embedder=HashEmbedder())
    a.add([seeds_copy])
    a.remove([a.articles()[0]["id"]])  # a removed article: its postings gone from the old table, dead in blocks
    question = "What did Zelensky say to Russians?"
    before = [(h.text, round(h.score, 5)) for h in a.search(question, k=5)]
    _as_schema_1(pg_url)
    with pytest.raises(AssistantError, match="has schema 1 .*upgrade it with: assistant index --optimize"):
        Assistant.load(config=settings, embedder=HashEmbedder())
    out = _cli(pg_url, "index", "--optimize", "--quiet")
    assert out.returncode == 0, out.stderr
    again = Assistant.load(config=settings, embedder=HashEmbedder())
    assert [(h.text, round(h.score, 5)) for h in again.search(question, k=5)] == before
    assert again.check(full=True)["ok"]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('na_postings')").fetchone()[0] is None


def test_passwords_never_show_in_settings_or_their_errors():
    url = f"postgresql://news:{SECRET}@db.example:5432/news"
    s = load_settings(environ={"ASSISTANT_INDEX_URL": url, "ASSISTANT_INDEX_READ_URLS": url + "?password=" + SECRET})
    shown = str(settings_to_dict(s))
    assert SECRET not in shown and "news:***@db.example" in shown
    with pytest.raises(AssistantError) as failed:
        load_settings(environ={"ASSISTANT_INDEX_BACKEND": "mongo", "ASSISTANT_INDEX_URL": url})
    assert SECRET not in str(failed.value)
    assert SECRET not in str(SettingError("index", "url", url, "must be a URL"))
