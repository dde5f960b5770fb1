"""The playground: served only when enabled, locked down by its headers, and driven in a
real Chromium the way a person uses it (Playwright's sync API, Debian's browser)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from neuronetz_gateway.api.playground import content_security_policy, playground_page
from neuronetz_gateway.mock_ollama import MockOllamaThread
from tests.fixtures.gateway import RunningGateway

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHUNKS = 8
CHUNK_DELAY_S = 0.15


# --- the route -----------------------------------------------------------------------------


def test_playground_is_a_plain_404_when_disabled(
    make_gateway: Callable[..., RunningGateway],
) -> None:
    gateway = make_gateway()
    for path in ("/playground", "/playground/"):
        response = httpx.get(gateway.url + path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body == {"error": "unknown path", "request_id": response.headers["x-request-id"]}
        # The same answer as any unknown path: nothing tells that a playground exists.
        other = httpx.get(gateway.url + "/no-such-page").json()
        assert body["error"] == other["error"]


def test_playground_is_served_with_a_strict_policy(
    make_gateway: Callable[..., RunningGateway],
) -> None:
    gateway = make_gateway(playground_enabled=True)
    response = httpx.get(gateway.url + "/playground")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == playground_page().html
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    csp = headers["content-security-policy"]
    policy = dict(part.partition(" ")[::2] for part in csp.split("; "))
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["script-src"].startswith("'sha256-")
    assert policy["style-src"].startswith("'sha256-")
    assert "unsafe" not in csp


def test_the_page_loads_nothing_from_elsewhere() -> None:
    html = playground_page().html.decode("utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html), "external resource"
    style = html[html.index("<style>") : html.index("</style>")]
    assert "@import" not in style and "url(" not in style
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handlers defeat the policy"
    assert " style=" not in html, "inline style attributes defeat the policy"
    assert html.count("<script>") == 1 and html.count("<style>") == 1


def test_policy_hashes_exactly_the_inline_blocks() -> None:
    html = b"<style>a{}</style><script>go()</script><script>more()</script>"
    policy = content_security_policy(html)

    def sha(body: bytes) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"

    assert f"script-src {sha(b'go()')} {sha(b'more()')};" in policy
    assert f"style-src {sha(b'a{}')};" in policy
    assert "script-src 'none'" in content_security_policy(b"<p>no script</p>")


# --- in a browser --------------------------------------------------------------------------


@pytest.fixture
def browser_page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (make system-deps installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


def parse_curl(command: str) -> dict[str, Any]:
    words = shlex.split(command.replace("\\\n", " "))
    assert words[0] == "curl"
    out: dict[str, Any] = {"method": "GET", "headers": {}, "body": None, "stream": False}
    rest = iter(words[1:])
    for word in rest:
        if word == "-N":
            out["stream"] = True
        elif word == "-X":
            out["method"] = next(rest)
        elif word == "-H":
            name, _, value = next(rest).partition(": ")
            out["headers"][name.lower()] = value
        elif word == "--data-raw":
            out["body"] = next(rest)
        else:
            out["url"] = word
    return out


DONE = """() => {
  const status = document.querySelector('#status').textContent;
  return status.startsWith('POST %s ') && status.includes('done in');
}"""

TRACE_OUTPUT = """() => {
  window.__trace = [];
  const output = document.querySelector('#output');
  new MutationObserver(() => window.__trace.push({
    t: performance.now(),
    length: output.textContent.length,
    streaming: document.querySelector('#status').textContent.includes('streaming'),
  })).observe(output, {childList: true, characterData: true, subtree: true});
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_streamed_chat_in_the_browser(
    browser_page: Any, make_gateway: Callable[..., RunningGateway], mock: MockOllamaThread
) -> None:
    page = browser_page
    gateway = make_gateway(playground_enabled=True)
    key = gateway.admin.tenant_and_key("browser")
    mock.configure(chunks=CHUNKS, chunk_delay_s=CHUNK_DELAY_S)

    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))

    page.goto(gateway.url + "/playground")
    assert page.text_content("#base-url") == gateway.url

    # Locked, and visibly so, until a key is entered.
    for button in ("#run", "#refresh"):
        assert page.is_disabled(button)
        assert float(page.eval_on_selector(button, "b => getComputedStyle(b).opacity")) < 0.6
    page.fill("#api-key", key)
    assert page.is_enabled("#run") and page.is_enabled("#refresh")

    page.click("#refresh")
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('model(s)')"
    )
    assert "llama3.2:latest" in page.eval_on_selector_all(
        "#model option", "os => os.map(o => o.value)"
    )

    # A native chat: NDJSON, rendered as it arrives.
    page.click("nav button[data-path='/api/chat']")
    page.click("#run")
    page.wait_for_function(DONE % "/api/chat", timeout=20_000)
    status = page.text_content("#status") or ""
    assert status.startswith("POST /api/chat → HTTP 200") and "output" in status, status
    assert "Echo:" in (page.text_content("#output") or "")

    page.click("nav button[data-path='/v1/chat/completions']")
    page.evaluate(TRACE_OUTPUT)
    page.click("#run")
    page.wait_for_function(DONE % "/v1/chat/completions", timeout=20_000)
    status = page.text_content("#status") or ""
    assert status.startswith("POST /v1/chat/completions → HTTP 200"), status

    # Tokens arrived one by one while the response was still streaming.
    trace = page.evaluate("window.__trace")
    growing = [entry for entry in trace if entry["length"] > 0]
    lengths = [entry["length"] for entry in growing]
    assert lengths == sorted(lengths) and len(set(lengths)) >= CHUNKS - 1, trace
    assert all(entry["streaming"] for entry in growing[:-1]), trace
    spread_ms = growing[-1]["t"] - growing[0]["t"]
    assert spread_ms >= (CHUNKS - 2) * CHUNK_DELAY_S * 1000 * 0.8, trace
    assert "Echo:" in (page.text_content("#output") or "")
    assert "[DONE]" in (page.text_content("#frames") or "")
    assert "x-request-id" in (page.text_content("#headers") or "")

    # The curl box is the request the browser sent, byte for byte.
    (sent,) = [r for r in requests if r.url.endswith("/v1/chat/completions")]
    curl_text = page.text_content("#curl") or ""
    curl = parse_curl(curl_text)
    assert curl["url"] == sent.url
    assert curl["method"] == sent.method == "POST"
    assert curl["body"] == sent.post_data
    assert curl["stream"] is True
    assert curl["headers"]["authorization"] == "Bearer $NZ_API_KEY"
    assert sent.headers["authorization"] == f"Bearer {key}"
    assert curl["headers"]["content-type"] == sent.headers["content-type"] == "application/json"
    if shutil.which("curl"):
        ran = subprocess.run(
            ["bash", "-c", curl_text],
            env={**os.environ, "NZ_API_KEY": key},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.rstrip().endswith("data: [DONE]"), ran.stdout

    # The key lives in the page's memory only.
    assert key not in page.url
    assert all(key not in r.url for r in requests)
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    assert key not in page.content()
    assert key not in curl_text
    assert not problems, problems

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)


@pytest.mark.browser
def test_errors_are_shown_with_their_request_id(
    browser_page: Any, make_gateway: Callable[..., RunningGateway]
) -> None:
    page = browser_page
    gateway = make_gateway(playground_enabled=True)
    page.goto(gateway.url + "/playground")
    page.fill("#api-key", "nz_" + "x" * 41)
    assert "does not look like a key" not in (page.text_content("#gate") or "")
    page.fill("#api-key", "not-a-key")
    assert "does not look like a key" in (page.text_content("#gate") or "")
    page.click("nav button[data-path='/api/pull']")
    page.click("#run")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('HTTP')")
    status = page.text_content("#status") or ""
    assert status.startswith("POST /api/pull → HTTP 403") and "request id" in status
    assert "not available through the gateway" in (page.text_content("#output") or "")
    page.click("#forget-key")
    assert page.is_disabled("#run")
