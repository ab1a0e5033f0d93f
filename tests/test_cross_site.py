"""Other sites cannot use the server: foreign Host names (DNS rebinding), cross-site writes (CSRF) and CORS reads."""

import asyncio
import http.client
import http.server
import json
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from assistant import Assistant
from assistant.guard import CrossSiteGuard

from .conftest import cli, multipart, running_server, upload

integration = pytest.mark.integration  # every test here but the guard's own rules starts a real server
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOGIN = ("editor", "s3cret")
BASIC = "Basic ZWRpdG9yOnMzY3JldA=="  # editor:s3cret
PLANTED = "Sanctuary opens\n\nThe Zorblatt cormorant sanctuary opened on Vellmar island with 90 nesting platforms."
OWN = "Pier reopens\n\nThe Quillfeather ferry pier in Port Ellery reopened after repairs costing 7 million euros.\n"
MILL = "Mill reopens\n\nThe Brackwater mill reopened as a museum of {} on Monday, the town said.\n"
ATTACK_FILES = ("csrf-form.txt", "csrf-fetch.txt", "csrf-gradio.txt", "csrf-gradio-nocors.txt")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
RESOLVE = "--host-resolver-rules=MAP rebind.test 127.0.0.1, MAP attacker.test 127.0.0.1"

# The attacker's page: every way a page on another origin could write to the server or read from it.
ATTACK_PAGE = """<!doctype html><html><head><title>cute cats</title></head><body><h1>Cute cats</h1>
<iframe name="sink" id="sink"></iframe>
<script>
const T = __TARGET__, ARTICLE = __ARTICLE__, seen = {};
const file = (name) => new File([ARTICLE], name, {type: "text/plain"});
function form(name) { const fd = new FormData(); fd.append("files", file(name)); return fd; }
async function attempt(key, fn) { try { seen[key] = await fn(); } catch (e) { seen[key] = "blocked: " + e.name; } }
async function read(r) { return "READ " + r.status + ": " + (await r.text()).slice(0, 80); }
const opaque = (r) => "opaque, status " + r.status + " (type " + r.type + ")";
function submitForm() {  // (1) an auto-submitted multipart form carrying a file
  return new Promise((resolve) => {
    const sink = document.getElementById("sink"), timer = setTimeout(() => resolve("no load event"), 30000);
    sink.addEventListener("load", () => { clearTimeout(timer); resolve("submitted (result unreadable)"); });
    const f = document.createElement("form");
    f.method = "POST"; f.action = T + "/api/articles"; f.enctype = "multipart/form-data"; f.target = "sink";
    const input = document.createElement("input");
    input.type = "file"; input.name = "files";
    const dt = new DataTransfer(); dt.items.add(file("csrf-form.txt")); input.files = dt.files;
    f.appendChild(input); document.body.appendChild(f); f.submit();
  });
}
async function run() {
  const inc = {credentials: "include"};
  await attempt("form POST /api/articles", submitForm);
  await attempt("no-cors POST /api/articles", async () => opaque(await fetch(T + "/api/articles",
    {...inc, method: "POST", mode: "no-cors", body: form("csrf-fetch.txt")})));
  const question = JSON.stringify({question: "Where did the Zorblatt cormorant sanctuary open?"});
  await attempt("POST /api/search (text/plain)", async () => read(await fetch(T + "/api/search",
    {...inc, method: "POST", headers: {"content-type": "text/plain"}, body: question})));
  await attempt("POST /api/search (json, preflight)", async () => read(await fetch(T + "/api/search",
    {...inc, method: "POST", headers: {"content-type": "application/json"}, body: question})));
  await attempt("GET /gradio_api/info", async () => read(await fetch(T + "/gradio_api/info", inc)));
  await attempt("GET /openapi.json", async () => read(await fetch(T + "/openapi.json", inc)));
  await attempt("POST /gradio_api/upload", async () => read(await fetch(T + "/gradio_api/upload?upload_id=csrf1",
    {...inc, method: "POST", body: form("csrf-gradio.txt")})));
  await attempt("no-cors POST /gradio_api/upload", async () => opaque(await fetch(
    T + "/gradio_api/upload?upload_id=csrf2", {...inc, method: "POST", mode: "no-cors",
    body: form("csrf-gradio-nocors.txt")})));
  await attempt("no-cors POST /gradio_api/queue/join", async () => opaque(await fetch(T + "/gradio_api/queue/join",
    {...inc, method: "POST", mode: "no-cors", headers: {"content-type": "text/plain"},
     body: JSON.stringify({data: [question], fn_index: 0, session_hash: "csrf"})})));
  window.__seen = seen;
}
run();
</script></body></html>"""


def request(url: str, path: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    """One raw HTTP request to the server at `url` (any Host header allowed): (status, headers, body text)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def search_body(question: str) -> bytes:
    """A `POST /api/search` JSON body."""
    return json.dumps({"question": question, "k": 5}).encode()


def index_state(index: Path) -> tuple[str, list[str]]:
    """The index's current generation and the files in its uploads folder."""
    generation = json.loads((index / "manifest.json").read_text())["generation"]
    uploads = index / "uploads"
    return generation, sorted(p.name for p in uploads.iterdir()) if uploads.is_dir() else []


def planted_found(url: str, headers: dict | None = None) -> bool:
    """Whether the server's answer to a question about the planted article quotes it."""
    status, _, body = request(
        url,
        "/api/search",
        "POST",
        {"content-type": "application/json", **(headers or {})},
        search_body("Where did the Zorblatt cormorant sanctuary open?"),
    )
    assert status == 200, body
    return "zorblatt" in json.dumps(json.loads(body)["passages"]).lower()


def served_copy(real_index: Path, tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh copy of the seeds index for one server."""
    index = tmp_path_factory.mktemp(name) / "index"
    shutil.copytree(real_index, index)
    return index


@pytest.fixture(scope="module")
def served(real_index, tmp_path_factory):
    """A server without a login: (URL, index folder)."""
    index = served_copy(real_index, tmp_path_factory, "cross-site")
    with running_server(index) as url:
        yield url, index


@pytest.fixture(scope="module")
def served_login(real_index, tmp_path_factory):
    """A server behind `--auth editor:s3cret` that also answers to news.example.org: (URL, index folder)."""
    index = served_copy(real_index, tmp_path_factory, "cross-site-login")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_SERVER_ALLOWED_HOSTS", "news.example.org")  # the server process inherits it
        with running_server(index, "--auth", ":".join(LOGIN)) as url:
            yield url, index


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, resolving rebind.test and attacker.test to 127.0.0.1."""
    if CHROMIUM is None:
        pytest.skip("no chromium: install the Debian package `chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_ARGS, RESOLVE])
        yield b
        b.close()


@pytest.fixture(scope="module")
def attacker(served, served_login):
    """A plain web server on its own port of 127.0.0.1 serving the attack page; yields {target URL: page path}."""
    pages = {}
    for url, _ in (served, served_login):
        page = ATTACK_PAGE.replace("__TARGET__", json.dumps(url)).replace("__ARTICLE__", json.dumps(PLANTED))
        pages[f"/attack-{urlsplit(url).port}.html"] = page.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _multipart_planted(name: str, text: str = PLANTED) -> tuple[bytes, dict[str, str]]:
    """A multipart upload body of one article file, and its headers."""
    return multipart([(name, text.encode())])


# --- the guard's rules, without a server -----------------------------------------------------------------------------


def guarded(bind: str = "127.0.0.1", allowed: tuple = (), kind: str = "http", method: str = "POST", **headers: str):
    """What CrossSiteGuard makes of one request: the status (or 'close 1008', 'accepted') and its response headers."""
    sent = []

    async def app(scope, receive, send):
        if kind == "websocket":
            return await send({"type": "websocket.accept"})
        cors = [
            (b"access-control-allow-origin", b"http://127.0.0.1:8000"),
            (b"access-control-allow-credentials", b"true"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": cors})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": kind, "method": method, "scheme": "http", "server": ("127.0.0.1", 7860), "headers": raw}
    asyncio.run(CrossSiteGuard(app, bind, allowed)(scope, receive, send))
    first = sent[0]
    if kind == "websocket":
        return "accepted" if first["type"] == "websocket.accept" else f"close {first['code']}", {}
    return first["status"], {k.decode(): v.decode() for k, v in first["headers"]}


HERE = "127.0.0.1:7860"
NEWS = ("news.example.org",)


@pytest.mark.parametrize(
    ("expected", "bind", "allowed", "headers"),
    [
        (400, "127.0.0.1", (), {"host": "evil.test:7860"}),
        (400, "127.0.0.1", (), {"host": "localhost.evil.test"}),
        (400, "127.0.0.1", (), {"host": "::1"}),  # an IPv6 address must come in brackets
        (400, "127.0.0.1", (), {"host": socket.gethostname() + ".invalid"}),
        (200, "127.0.0.1", (), {}),  # HTTP/1.0 without a Host
        (200, "127.0.0.1", (), {"host": HERE}),
        (200, "127.0.0.1", (), {"host": "[::1]:7860"}),
        (200, "127.0.0.1", (), {"host": "localhost."}),
        (200, "127.0.0.1", (), {"host": "chat.localhost:7860"}),
        (200, "127.0.0.1", ("News.Example.org",), {"host": "news.EXAMPLE.org"}),
        (200, "127.0.0.1", ("*",), {"host": "anything.example"}),
        (200, "0.0.0.0", (), {"host": f"{socket.gethostname()}:7860"}),
        (200, "::", (), {"host": socket.getfqdn()}),
        (200, "box.lan", (), {"host": "box.lan:7860"}),  # the name it was told to bind
        (403, "127.0.0.1", (), {"host": HERE, "origin": "http://127.0.0.1:8000"}),
        (403, "127.0.0.1", (), {"host": HERE, "origin": "http://localhost:7860"}),
        (403, "127.0.0.1", (), {"host": HERE, "origin": "null"}),
        (403, "127.0.0.1", (), {"host": HERE, "referer": "http://127.0.0.1:8000/page"}),
        (403, "127.0.0.1", (), {"host": HERE, "sec_fetch_site": "cross-site"}),
        (403, "127.0.0.1", (), {"host": HERE, "origin": f"http://{HERE}", "sec_fetch_site": "same-site"}),
        (200, "127.0.0.1", (), {"host": HERE, "origin": f"http://{HERE}", "sec_fetch_site": "same-origin"}),
        (200, "127.0.0.1", (), {"host": "[::1]:7860", "origin": "http://[0:0::1]:7860"}),
        (200, "127.0.0.1", (), {"host": HERE, "referer": f"http://{HERE}/?q=1"}),
        (200, "127.0.0.1", NEWS, {"host": "news.example.org", "origin": "https://news.example.org"}),  # TLS proxy
        (403, "127.0.0.1", NEWS, {"host": "news.example.org", "origin": "https://news.example.org:8443"}),
    ],
)
def test_guard_rules(expected, bind, allowed, headers):
    status, _ = guarded(bind, allowed, **headers)
    assert status == expected, headers


def test_guard_drops_cors_for_other_origins_and_keeps_it_for_its_own():
    status, headers = guarded(method="GET", host=HERE, origin="http://127.0.0.1:8000")
    assert status == 200 and not [h for h in headers if h.startswith("access-control-")]
    status, headers = guarded(
        method="OPTIONS", host=HERE, origin="http://127.0.0.1:8000", access_control_request_method="POST"
    )
    assert status == 403 and not [h for h in headers if h.startswith("access-control-")]
    status, headers = guarded(method="GET", host=HERE, origin=f"http://{HERE}")
    assert status == 200 and "access-control-allow-origin" in headers  # the server's own pages: unchanged


def test_guard_refuses_cross_site_websockets_before_accepting():
    assert guarded(kind="websocket", host=HERE, origin="http://127.0.0.1:8000")[0] == "close 1008"
    assert guarded(kind="websocket", host="evil.test:7860")[0] == "close 1008"
    assert guarded(kind="websocket", host=HERE, origin=f"http://{HERE}")[0] == "accepted"
    assert guarded(kind="websocket", host=HERE)[0] == "accepted"


# --- without a browser --------------------------------------------------------------------------------------------


@integration
def test_foreign_host_is_refused(served):
    url, _ = served
    port = urlsplit(url).port
    quotes = json.dumps({"speaker": "Lavrov"}).encode()
    for method, path, body in (
        ("GET", "/", None),
        ("POST", "/api/search", search_body("What did Lavrov say?")),
        ("POST", "/api/quotes", quotes),
    ):
        headers = {"Host": f"evil.test:{port}", "content-type": "application/json"}
        status, _, text = request(url, path, method, headers, body)
        assert status == 400, (path, text)
        assert text.strip() == (
            "host 'evil.test' is not served here; add it to server.allowed_hosts (e.g. behind a reverse proxy)"
        )


@integration
def test_local_hosts_are_served(served):
    url, _ = served
    port = urlsplit(url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        assert request(url, "/", headers={"Host": host})[0] == 200, host
        status, _, text = request(
            url, "/api/search", "POST", {"Host": host, "content-type": "application/json"}, search_body("Lavrov")
        )
        assert status == 200 and json.loads(text)["passages"], host
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:  # HTTP/1.0 without a Host header
        raw.sendall(b"GET /openapi.json HTTP/1.0\r\n\r\n")
        assert raw.recv(64).startswith(b"HTTP/1.1 200")


@integration
def test_allowed_hosts_setting_and_guard_before_login(served_login):
    url, _ = served_login
    auth = {"Authorization": BASIC}
    assert request(url, "/openapi.json", headers={"Host": "news.example.org", **auth})[0] == 200
    assert request(url, "/openapi.json", headers={"Host": "NEWS.example.org:443", **auth})[0] == 200
    assert request(url, "/openapi.json", headers={"Host": "other.example.org", **auth})[0] == 400
    assert request(url, "/openapi.json", headers={"Host": "evil.test"})[0] == 400  # refused before the login asks
    assert request(url, "/openapi.json", headers={"Host": "news.example.org"})[0] == 401


@integration
def test_cross_site_upload_is_refused_and_nothing_indexed(served):
    url, index = served
    port = urlsplit(url).port
    before = index_state(index)
    body, headers = _multipart_planted("csrf-http.txt")
    refusals = {
        "Origin": {"Origin": "http://127.0.0.1:1"},
        "Origin null": {"Origin": "null"},
        "Origin, other host same port": {"Origin": f"http://attacker.test:{port}"},
        "Referer": {"Referer": "http://127.0.0.1:1/cats.html"},
        "Sec-Fetch-Site": {"Sec-Fetch-Site": "cross-site"},
        "Sec-Fetch-Site same-site": {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-site"},
    }
    for what, extra in refusals.items():
        status, _, text = request(url, "/api/articles", "POST", {**headers, **extra}, body)
        assert status == 403, (what, text)
        assert text.startswith("cross-site request refused: ") and text.count("\n") == 1, text
    status, _, text = request(url, "/gradio_api/upload", "POST", {**headers, "Origin": "http://127.0.0.1:1"}, body)
    assert status == 403, text
    assert index_state(index) == before
    assert not planted_found(url)
    print(f"\ncross-site POST /api/articles refused: {text.strip()}")


@integration
def test_same_origin_and_originless_uploads_are_accepted(served):
    url, index = served
    port = urlsplit(url).port
    body, headers = _multipart_planted("same-origin.txt", MILL.format("flour"))
    same = {**headers, "Origin": f"http://127.0.0.1:{port}", "Referer": f"{url}/", "Sec-Fetch-Site": "same-origin"}
    status, _, text = request(url, "/api/articles", "POST", same, body)
    assert status == 200 and json.loads(text)["accepted"] == ["same-origin.txt"], text
    report = upload(url, [("no-origin.txt", MILL.format("bread").encode())])
    assert report["accepted"] == ["no-origin.txt"]  # curl, scripts and the other tests send no Origin
    assert {"same-origin.txt", "no-origin.txt"} <= set(index_state(index)[1])


@integration
def test_no_cors_grants_to_other_origins(served):
    url, _ = served
    port = urlsplit(url).port
    preflight = {"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "POST"}
    status, headers, text = request(url, "/api/search", "OPTIONS", preflight)
    assert status == 403 and not [h for h in headers if h.startswith("access-control-")], (headers, text)
    for origin in ("http://127.0.0.1:8000", "http://localhost:8000", "null", "https://evil.test"):
        status, headers, _ = request(url, "/gradio_api/info", headers={"Origin": origin})
        assert status == 200 and not [h for h in headers if h.startswith("access-control-allow")], (origin, headers)
    status, _, _ = request(url, "/api/search", "OPTIONS", {**preflight, "Origin": f"http://127.0.0.1:{port}"})
    assert status == 200  # the server's own pages are answered as before


@integration
def test_busy_port_is_one_line(real_index):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = cli("serve", "--index-dir", real_index, "--port", port, timeout=300)
    print(f"\nbusy port: exit {done.returncode}, stderr {done.stderr!r}")
    assert done.returncode == 1
    assert "News assistant on http" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot listen on 127.0.0.1:"), done.stderr
    assert "stop the other server or pick another --port" in lines[0]


# --- in Chromium -----------------------------------------------------------------------------------------------------


def attack(context, url: str, page_url: str) -> tuple[dict, list[tuple[str, str, "int | None", str]]]:
    """Open the attack page in `context`: what its script could see, and each request it sent to the server at `url`
    as (method, path, status the server answered, note)."""
    page = context.new_page()
    requests, answered = [], []
    page.on("request", lambda r: requests.append(r) if r.url.startswith(url) else None)
    cdp = context.new_cdp_session(page)  # statuses of the responses that CORS hid from the page (and from Playwright)
    sent = {}
    cdp.on("Network.requestWillBeSent", lambda e: sent.setdefault(e["requestId"], e["request"]))
    cdp.on("Network.responseReceivedExtraInfo", lambda e: answered.append((e["requestId"], e["statusCode"])))
    cdp.send("Network.enable")
    page.goto(page_url)
    page.wait_for_function("window.__seen !== undefined", timeout=120_000, polling=200)
    seen = page.evaluate("window.__seen")
    time.sleep(1)  # the last responses
    hidden = [(sent[i]["method"], sent[i]["url"], status) for i, status in answered if i in sent]
    observed = []
    for r in requests:
        response = r.response()
        note = "browser sent the login" if "authorization" in r.all_headers() else ""
        status = response.status if response else None
        if status is None and r.failure:
            note = f"{note}; failed in the browser: {r.failure}".lstrip("; ")
        if status is None:
            match = next((h for h in hidden if h[:2] == (r.method, r.url)), None)
            if match:
                hidden.remove(match)
                status, note = match[2], f"{note}; the page could not read it (no CORS)".lstrip("; ")
        observed.append((r.method, urlsplit(r.url).path, status, note))
    page.close()
    return seen, observed


@integration
@pytest.mark.parametrize("login", [False, True], ids=["no-login", "login"])
@pytest.mark.parametrize("attacker_host", ["127.0.0.1", "attacker.test"])
def test_attacker_page_can_neither_write_nor_read(browser, served, served_login, attacker, login, attacker_host):
    url, index = served_login if login else served
    port = urlsplit(url).port
    before = index_state(index)
    creds = {"http_credentials": {"username": LOGIN[0], "password": LOGIN[1]}} if login else {}
    context = browser.new_context(**creds)
    try:
        chat = context.new_page()
        chat.goto(url + "/")  # the user has the chat open: the browser holds its login
        chat.wait_for_selector("#question textarea", timeout=60_000)
        seen, observed = attack(context, url, f"http://{attacker_host}:{attacker}/attack-{port}.html")
        if login:  # the same browser, on the chat page itself, still asks and gets answers
            chat.locator("#question textarea").fill("What did Lavrov accuse Ukraine of?")
            chat.locator("#question textarea").press("Enter")
            chat.wait_for_function(
                "document.querySelector('#chat .bot')?.innerText.includes('Russophobia')", timeout=120_000, polling=200
            )
    finally:
        context.close()

    print(f"\nattacker page http://{attacker_host}:{attacker}/ -> {url} ({'--auth' if login else 'no login'}):")
    for key, value in seen.items():
        print(f"  page saw {key}: {value}")
    for method, path, status, note in observed:
        print(f"  server   {method} {path} -> {status}{f'  ({note})' if note else ''}")
    assert not [v for v in seen.values() if v.startswith("READ")], seen  # no response was readable
    assert seen["form POST /api/articles"].startswith("submitted")
    writes = [(path, status) for method, path, status, _ in observed if method == "POST"]
    assert [p for p, _ in writes].count("/api/articles") == 2, observed  # the form and the fetch both arrived
    assert {p for p, _ in writes} >= {"/api/search", "/gradio_api/upload", "/gradio_api/queue/join"}, observed
    assert all(status in (403, None) for _, status in writes), writes  # None: CORS hid it and CDP did not say
    assert index_state(index) == before  # same generation, no new file in <index>/uploads/
    assert not set(ATTACK_FILES) & set(index_state(index)[1])
    assert not planted_found(url, {"Authorization": BASIC} if login else None)


@integration
def test_dns_rebinding_is_refused_in_the_browser(browser, served):
    url, _ = served
    port = urlsplit(url).port
    page = browser.new_page()
    try:
        response = page.goto(f"http://rebind.test:{port}/")
        text = page.locator("body").inner_text()
        print(f"\nhttp://rebind.test:{port}/ -> {response.status}: {text.strip()}")
        assert response.status == 400 and "host 'rebind.test' is not served here" in text
        assert page.locator("#question textarea").count() == 0
        assert page.goto(f"http://127.0.0.1:{port}/").status == 200
        page.wait_for_selector("#question textarea", timeout=60_000)
    finally:
        page.close()


@integration
def test_chat_page_itself_still_uploads_and_asks(browser, served, tmp_path):
    url, index = served
    own = tmp_path / "quillfeather-pier.txt"
    own.write_text(OWN, encoding="utf-8")
    page = browser.new_page()
    posts = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    try:
        page.goto(url + "/")
        page.wait_for_selector("#question textarea", timeout=60_000)
        page.get_by_text("Add articles").click()  # Gradio's own routes: /gradio_api/upload, then queue/join
        page.locator("#upload input[type=file]").set_input_files(str(own))
        page.wait_for_function(
            "document.querySelector('#upload-status')?.innerText.includes('Indexed')", timeout=180_000, polling=500
        )
        page.locator("#question textarea").fill("How much did the Quillfeather pier repairs cost?")
        page.locator("#question textarea").press("Enter")
        page.wait_for_function(
            "document.querySelector('#chat .bot')?.innerText.includes('7 million euros')", timeout=120_000, polling=200
        )
        origins = [(urlsplit(r.url).path, r.all_headers().get("origin")) for r in posts]
    finally:
        page.close()
    print(f"\nthe chat's own POSTs and their Origin: {sorted(set(origins))}")
    assert "quillfeather-pier.txt" in index_state(index)[1]
    assert {"/gradio_api/upload", "/gradio_api/queue/join"} <= {path for path, _ in origins}
    assert {origin for _, origin in origins} == {url}, origins  # each write said it came from the chat page itself


def _panel_events(url: str, headers: dict | None = None) -> dict[str, tuple[int, int]]:
    """The archive panel's "open" and "Yes, remove it" events in the page's Gradio config: {name: (fn_index, id)}."""
    status, _, text = request(url, "/config", headers=headers)
    assert status == 200, text
    config = json.loads(text)
    ids = {c["props"].get("elem_id"): c["id"] for c in config["components"] if c.get("props")}
    events = {}
    for name in ("archive-open", "archive-yes"):
        target = ids[name]
        events[name] = next(d["id"] for d in config["dependencies"] if [target, "click"] in d["targets"]), target
    return events


def _queue_call(url: str, event: tuple[int, int], data: list, session: str, headers: dict) -> tuple[int, str]:
    """Join the Gradio queue for one event of a session, as the chat page's script does: (status, body)."""
    fn_index, trigger = event
    body = json.dumps({"data": data, "event_data": None, "fn_index": fn_index, "trigger_id": trigger,
                       "session_hash": session}).encode()  # fmt: skip
    status, _, text = request(
        url, "/gradio_api/queue/join", "POST", {"content-type": "application/json", **headers}, body
    )
    return status, text


def _completed(url: str, session: str, n: int) -> list[dict]:
    """The session's next `n` finished events, read from its queue stream."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    done = []
    try:
        conn.request("GET", f"/gradio_api/queue/data?session_hash={session}")
        stream = conn.getresponse()
        while len(done) < n:
            line = stream.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    done.append(message)
    finally:
        conn.close()
    return done


@integration
def test_a_cross_site_page_cannot_remove_articles_through_the_archive_panel(served):
    url, index = served
    port = urlsplit(url).port
    assert upload(url, [("removal-target.txt", MILL.format("lace").encode())])["accepted"] == ["removal-target.txt"]
    article = "uploads/removal-target.txt"
    events = _panel_events(url)
    steps = [(events["archive-open"], ["#article:uploads%2Fremoval-target.txt"]), (events["archive-yes"], [None] * 6)]
    before = index_state(index)
    for foreign in ({"Origin": "http://127.0.0.1:1"}, {"Referer": "http://attacker.test:1/"}, {"Origin": "null"}):
        for event, data in steps:  # open the article, then confirm its removal, from another site
            status, text = _queue_call(url, event, data, "attacker", foreign)
            assert status == 403 and text.startswith("cross-site request refused: "), (foreign, text)
    assert index_state(index) == before and article in {a["id"] for a in Assistant.load(index_dir=index).articles()}

    own = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}  # the chat page itself
    for event, data in steps:
        status, text = _queue_call(url, event, data, "chat-page", own)
        assert status == 200, text
        finished = _completed(url, "chat-page", 1)
        assert finished and finished[0]["success"], finished
    status_html = finished[0]["output"]["data"][-1]
    assert status_html == "<p>Removed “Mill reopens” (uploads/removal-target.txt).</p>", status_html
    assert article not in {a["id"] for a in Assistant.load(index_dir=index).articles()}
    assert "removal-target.txt" not in index_state(index)[1]  # its file went with it, as `assistant remove` does


@integration
def test_behind_a_login_the_archive_panels_removal_needs_it_and_the_same_site(served_login):
    url, index = served_login
    auth = {"Authorization": BASIC}
    body, headers = _multipart_planted("login-removal-target.txt", MILL.format("silk"))
    status, _, text = request(url, "/api/articles", "POST", {**headers, **auth}, body)
    assert status == 200, text
    yes = _panel_events(url, auth)["archive-yes"]
    before = index_state(index)
    for extra, expected in (({}, 401), ({**auth, "Origin": "http://127.0.0.1:1"}, 403)):
        status, text = _queue_call(url, yes, [None] * 6, "attacker", extra)
        assert status == expected, text
    assert index_state(index) == before and "login-removal-target.txt" in before[1]
