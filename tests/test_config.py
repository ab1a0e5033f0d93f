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
