"""The web faces against a real running server: HTTP JSON API, gradio_client and the MCP tool."""

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.integration
QUESTION = "What did Lavrov accuse Ukraine of?"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(real_index, tmp_path_factory):
    index = tmp_path_factory.mktemp("served") / "index"
    shutil.copytree(real_index, index)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--index-dir", str(index), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/openapi.json", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stdout.read()}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("server did not start in 120 s")
    yield url, index
    proc.terminate()
    proc.wait(timeout=30)


def _cli_json(index):
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", QUESTION, "--k", "3", "--json", "--index-dir", str(index)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    return json.loads(out.stdout)


def _post(url, body):
    req = urllib.request.Request(
        url + "/api/search", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def test_http_api_matches_cli_json_and_is_documented(server):
    url, index = server
    assert _post(url, {"question": QUESTION, "k": 3}) == _cli_json(index)
    spec = json.loads(urllib.request.urlopen(url + "/openapi.json").read())
    assert "/api/search" in spec["paths"]
    with pytest.raises(urllib.error.HTTPError) as e:
        _post(url, {"question": ""})
    assert e.value.code == 422
    assert _post(url, {"question": "omelette recipe with cheese"})["found"] is False


def test_gradio_client_search_endpoint(server):
    from gradio_client import Client

    url, index = server
    result = Client(url + "/", verbose=False).predict(question=QUESTION, k=3, api_name="/search")
    assert json.loads(result) == _cli_json(index)


def test_mcp_tool_lists_and_answers(server):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    url, index = server

    async def call():
        async with streamable_http_client(url + "/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = (await session.list_tools()).tools
                res = await session.call_tool("search", {"question": QUESTION, "k": 3})
                return tools, res

    tools, res = asyncio.run(call())
    assert [t.name for t in tools] == ["search"] and "question" in json.dumps(tools[0].inputSchema)
    assert json.loads(res.content[0].text) == _cli_json(index)


def test_chat_page_is_served_on_loopback(server):
    url, _ = server
    assert url.startswith("http://127.0.0.1:")
    html = urllib.request.urlopen(url + "/").read().decode()
    assert "<title>News assistant</title>" in html or "News assistant" in html
