"""The web faces against a real running server: HTTP JSON API, gradio_client and the MCP tool."""

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from .conftest import ROOT, running_server

pytestmark = pytest.mark.integration
QUESTION = "What did Lavrov accuse Ukraine of?"


def _cli_json(index, question=QUESTION):
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", question, "--k", "3", "--json", "--index-dir", str(index)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    return json.loads(out.stdout)


def _post(url, body, headers=None, path="/api/search"):
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
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


def _mcp_call(url, headers=None):
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def call():
        client = httpx.AsyncClient(headers=headers or {}, timeout=60)
        async with client, streamable_http_client(url + "/gradio_api/mcp/", http_client=client) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = (await session.list_tools()).tools
                res = await session.call_tool("search", {"question": QUESTION, "k": 3})
                return tools, res

    return asyncio.run(call())


def test_mcp_tool_lists_and_answers(server):
    url, index = server
    tools, res = _mcp_call(url)
    assert sorted(t.name for t in tools) == ["quotes", "search"]
    assert "question" in json.dumps(next(t for t in tools if t.name == "search").inputSchema)
    assert json.loads(res.content[0].text) == _cli_json(index)


def test_chat_page_is_served_on_loopback(server):
    url, _ = server
    assert url.startswith("http://127.0.0.1:")
    html = urllib.request.urlopen(url + "/").read().decode()
    assert "<title>News assistant</title>" in html or "News assistant" in html


def test_follow_up_over_http_matches_cli(server):
    url, index = server
    body = {"question": "What did he accuse Ukraine of?", "k": 3, "history": ["What did Lavrov say at the UN?"]}
    data = _post(url, body)
    assert data["query"] == "What did Lavrov accuse Ukraine of?"
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", body["question"], "--after", body["history"][0], "--k", "3"]
        + ["--json", "--index-dir", str(index)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert json.loads(out.stdout) == data


def test_login_guards_every_route(real_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(real_index, index)
    login = {"authorization": "Basic " + base64.b64encode(b"editor:s3cret").decode()}
    with running_server(index, "--auth", "editor:s3cret") as url:
        paths = ("/", "/config", "/gradio_api/info", "/openapi.json", "/docs", "/gradio_api/mcp/", "/api/articles")
        for path in (*paths, "/gradio_api/upload", "/gradio_api/file=/etc/hostname", "/gradio_api/queue/join"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(url + path, timeout=30)
            assert e.value.code == 401, path
        with pytest.raises(urllib.error.HTTPError) as e:
            _post(url, {"question": QUESTION})
        assert e.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as e:
            _post(url, {"speaker": "Lavrov"}, path="/api/quotes")
        assert e.value.code == 401
        with pytest.raises(Exception):  # noqa: B017 - the MCP client wraps the 401 in its own error types
            _mcp_call(url)
        with pytest.raises(urllib.error.HTTPError) as e:  # a wrong password is no better
            _post(url, {"question": QUESTION}, {"authorization": "Basic " + base64.b64encode(b"editor:x").decode()})
        assert e.value.code == 401

        assert _post(url, {"question": QUESTION, "k": 3}, login)["found"] is True
        page = urllib.request.urlopen(urllib.request.Request(url + "/", headers=login), timeout=30).read().decode()
        assert "News assistant" in page
        tools, res = _mcp_call(url, login)
        assert (
            sorted(t.name for t in tools) == ["quotes", "search"] and json.loads(res.content[0].text)["found"] is True
        )
        from gradio_client import Client

        answer = Client(url + "/", headers=login, verbose=False).predict(question=QUESTION, k=3, api_name="/search")
        assert json.loads(answer)["found"] is True


def test_every_face_gives_the_embedded_answers_from_postgres(real_index, pg_url, tmp_path, monkeypatch):
    """serve, the HTTP API, gradio_client, MCP and the CLI over PostgreSQL answer as over the embedded index."""
    from assistant import Assistant

    from .conftest import SEEDS, engine_settings

    folder = tmp_path / "index"
    shutil.copytree(real_index, folder)  # the exported encoder comes along; the generations are not read
    Assistant(engine_settings("postgres", folder, pg_url)).add([SEEDS])
    expected = _cli_json(real_index)["passages"]
    monkeypatch.setenv("ASSISTANT_INDEX_BACKEND", "postgres")
    monkeypatch.setenv("ASSISTANT_INDEX_URL", pg_url)
    assert _cli_json(folder)["passages"] == expected
    with running_server(folder) as url:
        from gradio_client import Client

        assert _post(url, {"question": QUESTION, "k": 3})["passages"] == expected
        result = Client(url + "/", verbose=False).predict(question=QUESTION, k=3, api_name="/search")
        assert json.loads(result)["passages"] == expected
        _, res = _mcp_call(url)
        assert json.loads(res.content[0].text)["passages"] == expected


def test_quotes_by_a_speaker_are_the_same_over_http_gradio_client_and_the_cli(server):
    from gradio_client import Client

    url, index = server
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "quotes", "--speaker", "Lavrov", "--about", "Ukraine", "--k", "4"]
        + ["--json", "--index-dir", str(index)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    cli = json.loads(out.stdout)
    assert cli["quotes"] and all(q["speaker"] == "Sergei Lavrov" for q in cli["quotes"])
    first = cli["quotes"][0]
    article = _post(url, {"question": "What did Lavrov say?", "k": 1})["passages"][0]["citations"][0]
    assert first["citation"]["title"] == article["title"]
    assert _post(url, {"speaker": "Lavrov", "about": "Ukraine", "k": 4}, path="/api/quotes") == cli
    result = Client(url + "/", verbose=False).predict(speaker="Lavrov", about="Ukraine", k=4, api_name="/quotes")
    assert json.loads(result) == cli
    with pytest.raises(urllib.error.HTTPError) as e:
        _post(url, {"k": 4}, path="/api/quotes")  # neither a speaker nor a topic
    assert e.value.code == 400


def test_a_question_with_dates_gets_its_period_and_timeline_over_http_and_the_cli(server):
    from .conftest import upload

    url, index = server
    stories = [
        ("march", "2024-03-12", "The Port Ellery harbour council approved an electric ferry for the island route."),
        ("june", "2024-06-20", "The Port Ellery harbour council cancelled the electric ferry for the island route."),
    ]
    lines = [json.dumps({"id": i, "published": d, "title": f"Port Ellery ferry {i}", "text": t}) for i, d, t in stories]
    assert upload(url, [("ellery.jsonl", "\n".join(lines).encode())])["accepted"]
    question = "What did the Port Ellery harbour council decide about the electric ferry in March 2024?"
    answer = _post(url, {"question": question, "k": 3})
    assert answer["period"]["text"] == "Understood as: published 2024-03-01 to 2024-03-31"
    cited = {c["article_id"] for p in answer["passages"] for c in p["citations"]}
    assert cited == {"uploads/ellery.jsonl#march"}
    assert answer["timeline"] == [{"period": "2024-03-12", "articles": 1}]
    assert _cli_json(index, question) == answer


def _gradio_call(url, name, data):
    """One call of a Gradio API endpoint over plain HTTP, as an MCP client or a script makes it: (event, payload)."""
    import httpx

    with httpx.Client(base_url=url, timeout=120) as c:
        event_id = c.post(f"/gradio_api/call/{name}", json={"data": data}).json()["event_id"]
        text = c.get(f"/gradio_api/call/{name}/{event_id}").text
    event = text.split("event: ", 1)[1].split("\n", 1)[0]
    return event, json.loads(text.split("data: ", 1)[1].split("\n", 1)[0])


def test_wrong_types_to_the_gradio_api_are_one_line_naming_the_argument(server):
    url, index = server
    cases = [
        ("search", [QUESTION, "many", []], "k must be a whole number from 1 to 50, got 'many'"),
        ("search", [QUESTION, True, []], "k must be a whole number from 1 to 50, got 'True'"),
        ("quotes", ["Lavrov", "", "all"], "k must be a whole number from 1 to 50, got 'all'"),
        ("search", ["What did he say?", 3, "Lavrov"], "history must be a list of earlier questions, got str"),
        ("search", ["What did he say?", 3, {"a": "Lavrov"}], "history must be a list of earlier questions, got dict"),
        ("search", ["What did he say?", 3, ["Lavrov"] * 21], "history holds 21 questions; send at most 20, the latest"),
    ]
    for name, data, expected in cases:
        event, payload = _gradio_call(url, name, data)
        assert (event, payload.get("error")) == ("error", expected), (data, payload)  # before: answered, or a
        # Python message ("invalid literal for int() with base 10: 'many'"); the history "Lavrov" searched as its
        # letters ("What did he say (v o)?")
    event, payload = _gradio_call(url, "search", [QUESTION, 3, []])
    assert event == "complete" and json.loads(payload[0]) == _cli_json(index)  # the server answers on
    event, payload = _gradio_call(url, "search", [QUESTION, 500, None])
    assert event == "complete" and len(json.loads(payload[0])["passages"]) > 3  # a k out of range is brought in
