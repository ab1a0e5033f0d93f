"""The web server: the Gradio chat at /, `POST /api/search` and `/api/quotes` (OpenAPI at /docs), the MCP tools."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time.
import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field

from . import __version__
from .app import CSS, HEAD, MAX_HISTORY, MAX_K, build_app
from .core import MAX_QUESTION_CHARS, NOT_UNICODE, Assistant
from .documents import MB
from .guard import CrossSiteGuard
from .types import AssistantError
from .uploads import add_uploads, safe_name

MAX_REQUEST_MB = 4  # the largest request body outside uploads (a question, a chat turn with its history)
UPLOAD_PATHS = ("/api/articles", "/gradio_api/upload")
MAX_ECHOED = 200  # characters of a refused input a validation error repeats


class SearchRequest(BaseModel):
    """The body of `POST /api/search`."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the question, in plain English")
    k: int = Field(5, ge=1, le=MAX_K, description="how many passages")
    filters: dict[str, str | list[str]] | None = Field(
        None, description="article_id, source (string or list), published_from, published_to"
    )
    history: list[str] = Field(
        default_factory=list, max_length=MAX_HISTORY, description="earlier questions of the conversation, oldest first"
    )


class QuotesRequest(BaseModel):
    """The body of `POST /api/quotes`: whose quotations, about what (one of them at least)."""

    speaker: str | None = Field(None, max_length=MAX_QUESTION_CHARS, description="a name, e.g. 'Zelensky'")
    about: str | None = Field(None, max_length=MAX_QUESTION_CHARS, description="a topic the quotations are ranked by")
    k: int = Field(20, ge=1, le=MAX_K, description="at most this many quotations")
    filters: dict[str, str | list[str]] | None = Field(
        None, description="article_id, source (string or list), published_from, published_to"
    )


def _readable(errors: Any) -> Any:
    """Validation errors as JSON-ready data, a lone surrogate in the input ('string_unicode') said in words, and a
    long input not sent back whole (a question of a megabyte is not answered with a megabyte)."""
    out = jsonable_encoder(errors)
    for e in out:
        if isinstance(e, dict) and e.get("type") == "string_unicode":
            e["msg"] = NOT_UNICODE
        if isinstance(e, dict) and len(shown := json.dumps(e.get("input"))) > MAX_ECHOED:
            e["input"] = f"{shown[:MAX_ECHOED]}… ({len(shown):,} characters in all)"
    return out


def parse_auth(value: "str | None") -> "tuple[str, str] | None":
    """'user:password' into a pair; None or empty means no login."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise AssistantError("auth must look like USER:PASSWORD")
    return user, password


class RequireLogin:
    """ASGI middleware: every route (chat, Gradio API, MCP, JSON API, docs) needs HTTP Basic credentials."""

    def __init__(self, app: Any, user: str, password: str) -> None:
        """Wrap `app` so that only requests carrying USER:PASSWORD reach it."""
        self.app = app
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Pass an authorised request on; answer any other with 401 and a login challenge."""
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        if secrets.compare_digest(given.encode(), self.expected.encode()):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        headers = [(b"content-type", b"text/plain"), (b"www-authenticate", b'Basic realm="News assistant"')]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": b"login required"})


class LimitBody:
    """ASGI middleware: a request body over its limit is refused (413) before it is read into memory."""

    def __init__(self, app: Any, upload_bytes: int, other_bytes: int = MAX_REQUEST_MB * MB) -> None:
        """Wrap `app`; uploads may carry `upload_bytes`, any other request `other_bytes`."""
        self.app = app
        self.upload_bytes = upload_bytes
        self.other_bytes = other_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Refuse a declared oversize body at once; cut off an undeclared one when it passes the limit."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.upload_bytes if scope.get("path", "").startswith(UPLOAD_PATHS) else self.other_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            body = f"request body over the {limit / MB:g} MB limit".encode()
            await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"text/plain")]})
            return await send({"type": "http.response.body", "body": body})
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            return {"type": "http.disconnect"} if seen > limit else message

        return await self.app(scope, limited, send)


def create_server(assistant: Assistant, auth: tuple[str, str] | None = None, mcp: bool = True) -> Any:
    """An ASGI app serving the chat, the JSON API and (with `mcp`) the MCP tool, over one `Assistant`."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home, ever
    import gradio as gr

    app = FastAPI(title="News assistant", version=__version__, description="Cited passages from news articles.")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """422 naming what is wrong; JSON in ASCII, so input that is not valid Unicode cannot break the reply."""
        return Response(json.dumps({"detail": _readable(exc.errors())}), 422, media_type="application/json")

    @app.post("/api/search")
    def api_search(req: SearchRequest) -> dict[str, Any]:
        """The passages that answer a question, with citations: the same JSON as `assistant ask --json`."""
        try:
            return assistant.ask(req.question, k=req.k, filters=req.filters, history=req.history).to_dict()
        except AssistantError as e:
            raise HTTPException(400, str(e)) from None

    @app.post("/api/quotes")
    def api_quotes(req: QuotesRequest) -> dict[str, Any]:
        """Quotations across the archive: every one by `speaker`, ranked by relevance to `about`, each cited;
        the same JSON as `assistant quotes --json`."""
        try:
            said = assistant.quotes(speaker=req.speaker, about=req.about, k=req.k, filters=req.filters)
        except AssistantError as e:
            raise HTTPException(400, str(e)) from None
        return {"speaker": req.speaker, "about": req.about, "quotes": [q.to_dict() for q in said]}

    @app.post("/api/articles")
    def api_articles(
        files: Annotated[list[UploadFile], File(description="article files: .txt .md .html .json .jsonl .sgm")],
    ) -> dict[str, Any]:
        """Add articles: each file is checked for type and size, kept in <index>/uploads/ and indexed at once.

        Answers which files were accepted, which refused and why, and the index report; 400 when none was accepted.
        """
        server = assistant.settings.server
        with tempfile.TemporaryDirectory(prefix="assistant-upload-") as tmp:
            paths, names = [], []
            for i, f in enumerate(files):  # all of them fit in the body limit; add_uploads refuses too many
                name = safe_name(f.filename or "")
                dest = Path(tmp) / f"{i}{Path(name).suffix}"
                with open(dest, "wb") as out:  # the request's size limit (LimitBody) bounds what this writes
                    shutil.copyfileobj(f.file, out)
                paths.append(dest)
                names.append(name)
            try:
                result = add_uploads(assistant, paths, server.upload_max_mb, server.upload_max_files, names)
            except AssistantError as e:  # another writer held the index too long, a full disk: nothing was kept
                raise HTTPException(503, f"{e}; nothing was added") from None
        if not result.accepted:
            raise HTTPException(400, result.message())
        return result.to_dict()

    demo = build_app(assistant)
    app = gr.mount_gradio_app(
        app,
        demo,
        path="",
        mcp_server=mcp,
        footer_links=["api"],
        css=CSS,
        head=HEAD,
        max_file_size=int(assistant.settings.server.upload_max_mb * MB),  # Gradio refuses bigger files first
    )
    server = assistant.settings.server
    app = LimitBody(app, int(server.upload_max_mb * server.upload_max_files * MB) + MB)
    app = RequireLogin(app, *auth) if auth else app
    return CrossSiteGuard(app, server.host, server.allowed_hosts)  # outermost: foreign hosts and sites never get in


def serve(assistant: Assistant) -> None:
    """Run the server, as `assistant.settings.server` says, until interrupted; a port that is taken is one line."""
    import uvicorn

    server = assistant.settings.server
    sockets = listen(server.host, server.port)  # before anything is printed: a busy port fails here, in one line
    try:
        app = create_server(assistant, parse_auth(server.auth), mcp=server.mcp)
        where = f"http://{_host_port(server.host, sockets[0].getsockname()[1])}/"
        print(f"News assistant on {where}  (API docs at /docs, MCP at /gradio_api/mcp/)", flush=True)
        config = uvicorn.Config(app, host=server.host, port=server.port, log_level="warning")
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()


def listen(host: str, port: int) -> list[Any]:
    """Listening sockets on every address `host` names, bound as uvicorn binds them; a failure is an AssistantError."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        hint = "give --host an address of this machine"
        raise AssistantError(f"cannot listen on {_host_port(host, port)} ({e.strerror}); {hint}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free to reuse
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as asyncio binds it: "::" is IPv6 only
            sock.bind(address)
            sock.listen(2048)
    except OSError as e:
        for sock in sockets:
            sock.close()
        hint = "stop the other server or pick another --port"
        raise AssistantError(f"cannot listen on {_host_port(host, port)} ({e.strerror or e}); {hint}") from None
    return sockets


def _host_port(host: str, port: int) -> str:
    """'host:port', an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
