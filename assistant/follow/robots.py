"""robots.txt, read once per host (and again after an hour) and honoured for every request."""

from __future__ import annotations

import time
import urllib.robotparser
from collections.abc import Callable
from dataclasses import dataclass, field

from .fetch import ROBOTS_AGENT, Fetched, FetchError, host_of

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: at least 500 KiB must be read
KEEP_S = 3600.0  # a host's robots.txt is read again after this long
MAX_DELAY_S = 60.0  # a longer Crawl-delay is taken as this (one host's robots.txt cannot stall the poll)


@dataclass
class Robots:
    """Per-host robots.txt rules. A missing robots.txt (4xx) allows everything; one the host cannot serve (5xx, no
    answer) allows nothing until it can (RFC 9309)."""

    fetch: Callable[[str, int], Fetched]  # (url, max bytes) -> response; robots.txt itself is never refused
    _rules: dict[str, tuple[float, urllib.robotparser.RobotFileParser, str]] = field(default_factory=dict)

    def rules(self, url: str) -> tuple[urllib.robotparser.RobotFileParser, str]:
        """The parsed robots.txt of the URL's host (fetched when not known or older than KEEP_S), and why nothing
        may be fetched from it when it could not be read ("" otherwise)."""
        host = host_of(url)
        cached = self._rules.get(host)
        if cached is not None and time.monotonic() - cached[0] < KEEP_S:
            return cached[1], cached[2]
        parser = urllib.robotparser.RobotFileParser(f"{host}/robots.txt")
        unread = ""
        try:
            got = self.fetch(f"{host}/robots.txt", ROBOTS_MAX_BYTES)
            parser.parse(got.body.decode("utf-8", "replace").splitlines())
        except FetchError as e:
            if " HTTP 4" in str(e):  # no robots.txt: everything is allowed
                parser.allow_all = True
            else:
                parser.disallow_all = True
                unread = f"{host}/robots.txt could not be read ({str(e).split(': ', 1)[-1]}); nothing is fetched "
                unread += "from the host until it can be"
        self._rules[host] = (time.monotonic(), parser, unread)
        return parser, unread

    def refusal(self, url: str) -> str | None:
        """Why robots.txt keeps this tool from fetching the URL, or None when it may (robots.txt itself always may)."""
        if url == f"{host_of(url)}/robots.txt":
            return None
        parser, unread = self.rules(url)
        if unread:
            return unread
        if not parser.can_fetch(ROBOTS_AGENT, url):
            return f"robots.txt of {host_of(url)} does not allow {ROBOTS_AGENT} to fetch it"
        return None

    def crawl_delay(self, url: str) -> float:
        """The Crawl-delay robots.txt asks of this tool, in seconds (0 when none), at most MAX_DELAY_S."""
        delay = self.rules(url)[0].crawl_delay(ROBOTS_AGENT)
        return min(float(delay), MAX_DELAY_S) if delay else 0.0
