import subprocess
import sys

from .conftest import ROOT


def run(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_help_lists_every_command():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("index", "ask", "search", "batch", "quotes", "remove", "check", "eval", "serve", "follow"):
        assert cmd in out.stdout
    sub = run("ask", "--help")
    assert "--index-dir" in sub.stdout and "--json" in sub.stdout


def test_missing_index_is_one_line_on_stderr(tmp_path):
    out = run("ask", "What happened?", "--index-dir", str(tmp_path / "nothing"))
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip().count("\n") == 0
    assert "no index in" in out.stderr and "assistant index" in out.stderr


def test_bad_config_is_one_line(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[retrieval]\nmin_score = 'x'\n")
    out = run("search", "x", "--config", str(cfg))
    assert out.returncode == 1 and "retrieval.min_score" in out.stderr and "Traceback" not in out.stderr


def test_settings_out_of_range_are_one_line_naming_the_variable(tmp_path):
    import os

    for variable, value in (
        ("ASSISTANT_EMBEDDING_BATCH_SIZE", "0"),
        ("ASSISTANT_CHUNKING_MAX_TOKENS", "3"),
        ("ASSISTANT_RETRIEVAL_CANDIDATES", "0"),
        ("ASSISTANT_RETRIEVAL_MIN_SCORE", "nan"),
    ):
        env = {**os.environ, variable: value}
        out = subprocess.run(
            [sys.executable, "-m", "assistant", "index", "seeds", "--index-dir", str(tmp_path / "i")],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            env=env,
        )
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"error: environment: {variable}=")
        assert not (tmp_path / "i").exists()
