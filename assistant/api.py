"""The web server: the Gradio chat at /, `POST /api/search` (OpenAPI at /docs), and the MCP tool."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time.
import base64
import os
import secrets
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from . import __version__
from .app import MAX_K, build_app
from .core import Assistant
from .types import AssistantError


class SearchRequest(BaseModel):
    """The body of `POST /api/search`."""

    question: str = Field(min_length=1, max_length=2000, description="the question, in plain English")
    k: int = Field(5, ge=1, le=MAX_K, description="how many passages")
    filters: dict[str, str | list[str]] | None = Field(
        None, description="article_id, source (string or list), published_from, published_to"
    )


def parse_auth(value: "str | None") -> "tuple[str, str] | None":
    """'user:password' into a pair; None or empty means no login."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise AssistantError("auth must look like USER:PASSWORD")
    return user, password


def create_server(assistant: Assistant, auth: tuple[str, str] | None = None, mcp: bool = True) -> Any:
    """A FastAPI app serving the chat, the JSON API and (with `mcp`) the MCP tool, over one `Assistant`."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home, ever
    import gradio as gr

    def require_login(request: Request) -> None:
        if auth is None:
            return
        header = request.headers.get("authorization", "")
        try:
            user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", ""
        if not (secrets.compare_digest(user, auth[0]) and secrets.compare_digest(password, auth[1])):
            raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Basic"})

    app = FastAPI(title="News assistant", version=__version__, description="Cited passages from news articles.")

    @app.post("/api/search", dependencies=[Depends(require_login)])
    def api_search(req: SearchRequest) -> dict[str, Any]:
        """The passages that answer a question, with citations: the same JSON as `assistant ask --json`."""
        try:
            return assistant.ask(req.question, k=req.k, filters=req.filters).to_dict()
        except AssistantError as e:
            raise HTTPException(400, str(e)) from None

    demo = build_app(assistant)
    return gr.mount_gradio_app(app, demo, path="", auth=auth, mcp_server=mcp, footer_links=["api"])


def serve(assistant: Assistant) -> None:
    """Run the server, as `assistant.settings.server` says, until interrupted."""
    import uvicorn

    server = assistant.settings.server
    host, port = server.host, server.port
    app = create_server(assistant, parse_auth(server.auth), mcp=server.mcp)
    print(f"News assistant on http://{host}:{port}/  (API docs at /docs, MCP at /gradio_api/mcp/)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
