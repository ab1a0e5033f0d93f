"""Cross-site guard: refuse requests for foreign host names (DNS rebinding) and writes from other sites (CSRF)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
OTHER_SITE = ("cross-site", "same-site")  # Sec-Fetch-Site values of a request started by another origin

Place = tuple[str, int | None]  # a (host, port) pair: the host lower-case, an IP address in its short form


def split_host(value: str) -> Place | None:
    """'host[:port]' or '[v6]:port' as a Place; None when it is not a valid host header."""
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
        if not is_ip(host):
            return None
    else:
        host, _, port = value.partition(":")
    if not host or (port and not (port.isdigit() and int(port) <= 65535)):
        return None
    return normal_host(host), int(port) if port else None


def normal_host(host: str) -> str:
    """A host as compared here: lower-case, no trailing dot, an IP address in its canonical short form."""
    host = host.lower().rstrip(".")
    return str(ipaddress.ip_address(host)) if is_ip(host) else host


def is_ip(host: str) -> bool:
    """Whether `host` is an IPv4 or IPv6 address literal (no brackets)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def url_place(url: str) -> Place | None:
    """The (host, port) of an Origin or Referer URL, its scheme's default port filled in; None when unusable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        return None
    place = split_host(parts.netloc)
    if place is None:
        return None
    return place[0], place[1] if place[1] is not None else DEFAULT_PORTS[parts.scheme]


def same_place(origin: Place, server: Place) -> bool:
    """Whether an origin's (host, port) is the server's: the scheme is ignored, so a TLS reverse proxy still matches."""
    if origin[0] != server[0]:
        return False
    return origin[1] == server[1] or (server[1] is None and origin[1] in (80, 443))


class CrossSiteGuard:
    """ASGI middleware: a foreign Host is refused (400), a cross-site write (403); no CORS grants to other origins."""

    def __init__(self, app: Any, bind_host: str, allowed_hosts: Iterable[str] = ()) -> None:
        """Wrap `app` for a server bound to `bind_host` that also answers to the names in `allowed_hosts`."""
        self.app = app
        names = {normal_host(h.strip()) for h in allowed_hosts if h.strip()}
        self.any_host = "*" in names
        bind = bind_host.strip().lower()
        if bind in WILDCARD_BINDS:  # reachable from the network under this machine's own names
            names |= {normal_host(socket.gethostname()), normal_host(socket.getfqdn())}
        elif not is_ip(bind.strip("[]")):
            names.add(normal_host(bind))  # the name it was told to bind, as the startup line shows it
        self.names = frozenset(names)

    def host_allowed(self, host: str) -> bool:
        """Whether requests naming `host` are served: IP literals, localhost, this machine's and the allowed names."""
        if self.any_host or is_ip(host) or host in self.names:
            return True
        return host == "localhost" or host.endswith(".localhost")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Check the Host, then the Origin (or Referer) of a write, then pass the request on without foreign CORS."""
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1").strip() for k, v in reversed(scope.get("headers") or [])}
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        host_header = headers.get("host")
        if host_header:
            server = split_host(host_header)
            if server is None or not self.host_allowed(server[0]):
                shown = repr((host_header if server is None else server[0])[:100])
                hint = "add it to server.allowed_hosts (e.g. behind a reverse proxy)"
                return await self.refuse(scope, send, 400, f"host {shown} is not served here; {hint}")
            this = f"{scheme}://{host_header}"
        else:  # HTTP/1.0 without a Host: compare with the address the request came in on
            addr = scope.get("server") or ("", None)
            server, this = (normal_host(str(addr[0])), addr[1]), f"{scheme}://{addr[0]}:{addr[1]}"

        origin = headers.get("origin")
        foreign = origin is not None and not same_place(url_place(origin) or ("", -1), server)
        method = scope.get("method", "GET")
        if foreign and method == "OPTIONS" and "access-control-request-method" in headers:  # a CORS preflight
            why = f"cross-origin request refused: Origin {origin[:200]} is not this server ({this})"
            return await self.refuse(scope, send, 403, f"{why}; this server grants no CORS access to other origins")
        if scope["type"] == "websocket" or method not in SAFE_METHODS:
            reason = self.cross_site(origin, headers.get("referer"), headers.get("sec-fetch-site"), server)
            if reason:
                hint = "use the chat's own page, or a script or curl"
                return await self.refuse(scope, send, 403, f"cross-site request refused: {reason} ({this}); {hint}")
        if not foreign:
            return await self.app(scope, receive, send)

        async def without_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"access-control-")]
                message = {**message, "headers": kept}
            await send(message)

        return await self.app(scope, receive, without_cors)

    @staticmethod
    def cross_site(origin: str | None, referer: str | None, fetch_site: str | None, server: Place) -> str | None:
        """Why a write is from another site (for its refusal); None when same-origin or not from a browser page."""
        if origin is not None:
            place = url_place(origin)
            if place is None or not same_place(place, server):
                return f"Origin {origin[:200]} is not this server"
        elif referer is not None:
            place = url_place(referer)
            if place is None or not same_place(place, server):
                return f"Referer {referer.split('?')[0][:200]} is not this server"
        if fetch_site in OTHER_SITE:
            return f"the browser sent it from another site (Sec-Fetch-Site: {fetch_site}), not from this server"
        return None

    @staticmethod
    async def refuse(scope: dict, send: Any, status: int, message: str) -> None:
        """Answer with `status` and a one-line plain-text body; a websocket is closed (1008) before it is accepted."""
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        body = message.encode("utf-8", "replace") + b"\n"
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
