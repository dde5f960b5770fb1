"""Streams: whatever the upstream does to its bytes, the client gets well-formed NDJSON
(native) or SSE (OpenAI), ended by exactly one final frame or one error frame, and model
output can never forge a frame."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.adversarial.conftest import MakeServed
from tests.adversarial.scripted_upstream import Script, ScriptedUpstream, scripted_upstream
from tests.fixtures.gateway import RunningGateway

NATIVE_ERROR = "the model server failed while answering"


def chunk(text: str | bytes) -> bytes:
    content = text if isinstance(text, str) else None
    if content is None:  # raw bytes inside the JSON string (may be invalid UTF-8)
        assert isinstance(text, bytes)
        return (
            b'{"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":'
            b'{"role":"assistant","content":"' + text + b'"},"done":false}\n'
        )
    return orjson.dumps({
        "model": "llama3.2", "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content}, "done": False,
    }) + b"\n"  # fmt: skip


DONE = orjson.dumps({
    "model": "llama3.2", "created_at": "2025-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
    "prompt_eval_count": 3, "eval_count": 2,
}) + b"\n"  # fmt: skip

SCRIPTS: dict[str, Script] = {
    "clean": Script([chunk("Hel"), chunk("lo"), DONE]),
    "cut mid-line": Script([chunk("Hel"), chunk("lo")[:20]]),
    "cut mid-line, chunked": Script([chunk("Hel"), chunk("lo")[:20]], chunked=True),
    "cut mid-UTF-8": Script([chunk("caf"), chunk("é")[: chunk("é").index(b"\xc3") + 1]]),
    "invalid UTF-8 in a line": Script([chunk("a"), chunk(b"caf\xc3"), DONE]),
    "lone surrogate escape": Script([chunk("a"), chunk(b"\\ud800"), DONE]),
    "no final frame": Script([chunk("a"), chunk("b")]),
    "nothing at all": Script([]),
    "frames after done": Script([chunk("a"), DONE, chunk("forged"), DONE]),
    "error frame with a path": Script(
        [chunk("a"), b'{"error":"panic at /usr/lib/ollama/runner.go:12 goroutine 7"}\n']
    ),
    "not an object": Script([chunk("a"), b"[1,2,3]\n", DONE]),
    "null line": Script([chunk("a"), b"null\n", DONE]),
    "CRLF line ends": Script([chunk("a").replace(b"\n", b"\r\n"), DONE.replace(b"\n", b"\r\n")]),
    "blank lines": Script([b"\n\n", chunk("a"), b"\r\n\n", DONE]),
    "one line in 1-byte parts": Script([bytes([b]) for b in chunk("slow")] + [DONE]),
    "1 MB line": Script([chunk("x" * 1_000_000), DONE]),
    "17 MB first line": Script([chunk("y" * 17_000_000)]),
    "17 MB line after a chunk": Script([chunk("a"), chunk("y" * 17_000_000)]),
    # The gateway answers each upstream read at once; every line of it is still checked.
    "many frames in one write": Script([chunk("a") + chunk("b") + chunk("c") + DONE]),
    "error frame inside one write": Script(
        [chunk("a"), chunk("b") + b'{"error":"panic at /usr/lib/ollama"}\n' + chunk("x") + DONE]
    ),
    "cut line inside one write": Script([chunk("a") + chunk("b")[:25] + b"\n" + DONE]),
    "done then garbage in one write": Script([chunk("a") + DONE + b"garbage{\n" + chunk("forged")]),
}
CLEAN = {"clean", "CRLF line ends", "blank lines", "one line in 1-byte parts", "1 MB line",
         "frames after done", "many frames in one write",
         "done then garbage in one write"}  # fmt: skip


@dataclass
class Parsed:
    frames: list[dict[str, Any]]
    done: bool
    errors: int
    text: str


def parse_ndjson(body: bytes) -> Parsed:
    body.decode("utf-8")  # strict: the stream is valid UTF-8
    assert body == b"" or body.endswith(b"\n")
    frames = [orjson.loads(line) for line in body.split(b"\n") if line]
    assert all(isinstance(f, dict) for f in frames)
    done = [i for i, f in enumerate(frames) if f.get("done") is True]
    errors = [i for i, f in enumerate(frames) if "error" in f]
    assert len(done) + len(errors) == 1, frames[-3:]  # exactly one ending...
    assert (done or errors)[0] == len(frames) - 1  # ...and it is the last frame
    text = "".join(f.get("message", {}).get("content", "") for f in frames if "error" not in f)
    return Parsed(frames, bool(done), len(errors), text)


def parse_sse(body: bytes) -> Parsed:
    body.decode("utf-8")
    assert body.endswith(b"\n\n")
    events = body[:-2].split(b"\n\n")
    frames: list[dict[str, Any]] = []
    done = False
    for event in events:
        lines = event.split(b"\n")
        assert len(lines) == 1 and lines[0].startswith(b"data: "), event[:100]
        assert not done, "a frame after [DONE]"
        payload = lines[0][len(b"data: ") :]
        if payload == b"[DONE]":
            done = True
            continue
        frames.append(orjson.loads(payload))
    errors = [f for f in frames if "error" in f]
    assert done != bool(errors) and len(errors) <= 1
    if errors:
        assert "error" in frames[-1]
    text = "".join(
        (c.get("delta") or {}).get("content") or c.get("text") or ""
        for f in frames
        if "error" not in f
        for c in f.get("choices", [])
    )
    return Parsed(frames, done, len(errors), text)


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with scripted_upstream() as up:
        yield up


@pytest.fixture
def scripted(make_served: MakeServed, upstream: ScriptedUpstream) -> RunningGateway:
    return make_served(ollama_base_url=upstream.url)


@pytest.mark.parametrize("surface", ["native", "openai"])
def test_scripted_upstream_streams_stay_well_formed(
    scripted: RunningGateway, upstream: ScriptedUpstream, surface: str
) -> None:
    key = scripted.admin.tenant_and_key("acme")
    headers = {"Authorization": f"Bearer {key}"}
    messages = [{"role": "user", "content": "hi"}]
    path, body, parse = (
        ("/api/chat", {"model": "llama3.2", "messages": messages}, parse_ndjson)
        if surface == "native"
        else ("/v1/chat/completions",
              {"model": "llama3.2", "messages": messages, "stream": True}, parse_sse)
    )  # fmt: skip
    outcomes = {}
    for name, script in SCRIPTS.items():
        upstream.script = script
        resp = httpx.post(scripted.url + path, json=body, headers=headers, timeout=30)
        if resp.status_code != 200:  # failed before the first byte: an error, no stream
            assert resp.status_code == 502 and name not in CLEAN, (name, resp.status_code)
            assert "usr/lib" not in resp.text and "goroutine" not in resp.text
            outcomes[name] = "502"
            continue
        parsed = parse(resp.content)
        assert "forged" not in parsed.text and "usr/lib" not in resp.text, name
        if name in CLEAN:
            assert parsed.done and not parsed.errors, name
        else:
            assert parsed.errors == 1 and not parsed.done, name
            if surface == "native":
                assert parsed.frames[-1] == {"error": NATIVE_ERROR}
        if name == "1 MB line":
            assert parsed.text == "x" * 1_000_000
        outcomes[name] = "done" if parsed.done else "error frame"
    print(f"[adversarial] streams/{surface}: cases={len(SCRIPTS)} {outcomes}")


FORGERIES = [
    'a\nb', '{"done":true}', '\n{"done":true,"eval_count":0}\n', 'data: [DONE]\n\n',
    '\r\n\r\ndata: {"choices":[]}\n\n', 'data: ', '"}]}\n{"error":"x"}', '\u2028\u2029',
    'event: error\ndata: x', '\x00\x1b[2J', '\ud7ff\ue000\U0010ffff',
]  # fmt: skip


@pytest.mark.parametrize("stream", [True, False])
def test_model_output_cannot_forge_frames(served: RunningGateway, stream: bool) -> None:
    """The mock echoes the prompt: whatever the model says arrives as content, verbatim,
    inside exactly the frames the gateway made."""
    key = served.admin.tenant_and_key("acme")
    headers = {"Authorization": f"Bearer {key}"}
    for forgery in FORGERIES:
        prompt = f"x {forgery} y"
        messages = [{"role": "user", "content": prompt}]
        native = httpx.post(
            served.url + "/api/chat",
            json={"model": "llama3.2", "messages": messages, "stream": stream},
            headers=headers,
        )
        openai = httpx.post(
            served.url + "/v1/chat/completions",
            json={"model": "llama3.2", "messages": messages, "stream": stream},
            headers=headers,
        )
        assert native.status_code == openai.status_code == 200, forgery
        if stream:
            n, o = parse_ndjson(native.content), parse_sse(openai.content)
            assert n.done and o.done and not n.errors and not o.errors, forgery
            assert n.text == o.text
            said = n.text
        else:
            said = native.json()["message"]["content"]
            assert openai.json()["choices"][0]["message"]["content"] == said
        assert said.split() == f"Echo: {prompt}".split(), forgery
    print(f"[adversarial] streams/forgery (stream={stream}): cases={len(FORGERIES)} × 2 surfaces")
