"""The web server: the Gradio chat at /, `POST /api/search` (OpenAPI at /docs), and the MCP tool."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time.
import base64
import os
import secrets
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from . import __version__
from .app import CSS, HEAD, MAX_K, build_app
from .core import Assistant
from .documents import MB
from .types import AssistantError


class SearchRequest(BaseModel):
    """The body of `POST /api/search`."""

    question: str = Field(min_length=1, max_length=2000, description="the question, in plain English")
    k: int = Field(5, ge=1, le=MAX_K, description="how many passages")
    filters: dict[str, str | list[str]] | None = Field(
        None, description="article_id, source (string or list), published_from, published_to"
    )
    history: list[str] = Field(
        default_factory=list, max_length=20, description="earlier questions of the conversation, oldest first"
    )


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


def create_server(assistant: Assistant, auth: tuple[str, str] | None = None, mcp: bool = True) -> Any:
    """An ASGI app serving the chat, the JSON API and (with `mcp`) the MCP tool, over one `Assistant`."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home, ever
    import gradio as gr

    app = FastAPI(title="News assistant", version=__version__, description="Cited passages from news articles.")

    @app.post("/api/search")
    def api_search(req: SearchRequest) -> dict[str, Any]:
        """The passages that answer a question, with citations: the same JSON as `assistant ask --json`."""
        try:
            return assistant.ask(req.question, k=req.k, filters=req.filters, history=req.history).to_dict()
        except AssistantError as e:
            raise HTTPException(400, str(e)) from None

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
    return RequireLogin(app, *auth) if auth else app


def serve(assistant: Assistant) -> None:
    """Run the server, as `assistant.settings.server` says, until interrupted."""
    import uvicorn

    server = assistant.settings.server
    host, port = server.host, server.port
    app = create_server(assistant, parse_auth(server.auth), mcp=server.mcp)
    print(f"News assistant on http://{host}:{port}/  (API docs at /docs, MCP at /gradio_api/mcp/)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
