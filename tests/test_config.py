import dataclasses
import tomllib

import pytest

from assistant.config import Settings, load_settings, settings_to_dict
from assistant.types import AssistantError

from .conftest import ROOT


def test_default_toml_matches_the_code():
    data = tomllib.loads((ROOT / "config" / "default.toml").read_text())
    assert data == settings_to_dict(Settings())


def test_every_setting_is_commented_in_default_toml():
    text = (ROOT / "config" / "default.toml").read_text().splitlines()
    for i, line in enumerate(text):
        if "=" in line and not line.startswith("#"):
            above = text[i - 1]
            assert above.startswith("#") or "=" in above, f"setting without a comment: {line}"


def test_file_then_environment_override(tmp_path):
    f = tmp_path / "my.toml"
    f.write_text('[retrieval]\nmin_score = 0.2\ncandidates = 20\n[embedding]\nmodel = "/models/x"\n')
    s = load_settings(f, environ={"ASSISTANT_RETRIEVAL_MIN_SCORE": "0.4", "ASSISTANT_EMBEDDING_OFFLINE": "false"})
    assert s.retrieval.min_score == 0.4 and s.retrieval.candidates == 20
    assert s.embedding.model == "/models/x" and s.embedding.offline is False
    assert dataclasses.replace(s.chunking) == Settings().chunking


@pytest.mark.parametrize(
    "text, message",
    [
        ("[retrieval]\nmin_score = 'high'\n", "retrieval.min_score = 'high' is not a valid float"),
        ("[nope]\nx = 1\n", "unknown section [nope]"),
        ("[retrieval]\nmin_scor = 1\n", "unknown setting retrieval.min_scor"),
        ("[retrieval\n", "is not valid TOML"),
    ],
)
def test_bad_config_names_the_problem(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(AssistantError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_settings(f, environ={})


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("ASSISTANT_EMBEDDING_BATCH_SIZE", "0", "ASSISTANT_EMBEDDING_BATCH_SIZE=0 (embedding.batch_size): must be"),
        ("ASSISTANT_CHUNKING_MAX_TOKENS", "3", "(chunking.max_tokens): must be between 8 and 8192"),
        ("ASSISTANT_RETRIEVAL_CANDIDATES", "0", "(retrieval.candidates): must be between 1 and 10000"),
        ("ASSISTANT_RETRIEVAL_MIN_SCORE", "nan", "(retrieval.min_score): must be a number"),
        ("ASSISTANT_RETRIEVAL_DENSE_WEIGHT", "1.5", "(retrieval.dense_weight): must be between 0 and 1"),
        ("ASSISTANT_RETRIEVAL_METHOD", "magic", "must be one of hybrid, dense, bm25"),
        ("ASSISTANT_SERVER_PORT", "70000", "(server.port): must be a port number"),
        ("ASSISTANT_SERVER_AUTH", "nopassword", "(server.auth): must look like USER:PASSWORD"),
        ("ASSISTANT_INGEST_MAX_FILE_MB", "-1", "(ingest.max_file_mb): must be a number of megabytes above 0"),
        ("ASSISTANT_EMBEDDING_BATCH_SIZE", "2.5", "ASSISTANT_EMBEDDING_BATCH_SIZE = '2.5' is not a valid int"),
    ],
)
def test_settings_out_of_range_are_refused_when_they_load(variable, value, message):
    with pytest.raises(AssistantError) as e:
        load_settings(environ={variable: value})
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_bad_value_in_a_file_names_the_file_and_the_setting(tmp_path):
    f = tmp_path / "my.toml"
    f.write_text("[chunking]\nmax_tokens = 100\noverlap_tokens = -5\n")
    with pytest.raises(AssistantError, match=r"my\.toml: chunking\.overlap_tokens = -5: must be 0 or more"):
        load_settings(f, environ={})


def test_allowed_hosts_come_from_a_list_or_a_comma_separated_variable(tmp_path):
    f = tmp_path / "my.toml"
    f.write_text('[server]\nallowed_hosts = ["news.example.org"]\n')
    assert load_settings(f, environ={}).server.allowed_hosts == ["news.example.org"]
    s = load_settings(environ={"ASSISTANT_SERVER_ALLOWED_HOSTS": "a.example, b.example"})
    assert s.server.allowed_hosts == ["a.example", "b.example"]
    with pytest.raises(AssistantError, match="server.port = 0"):
        Settings().replace("server", port=0)
