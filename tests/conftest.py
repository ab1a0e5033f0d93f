"""Shared fixtures: paths to the data beside the clone, a fake-embedder assistant, a real one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.config import Settings

from .fakes import HashEmbedder

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"


def settings_for(index_dir: Path, **retrieval: object) -> Settings:
    """Default settings pointed at a temporary index."""
    s = Settings().replace("index", dir=str(index_dir))
    return s.replace("retrieval", **retrieval) if retrieval else s


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
def real_assistant(real_index: Path) -> Assistant:
    """The real-model assistant over the seeds index."""
    return Assistant.load(index_dir=real_index)
