"""``Pipeline._stream`` answers each upstream read with one chunk holding the frames of
all its lines, and still treats every line on its own: a bad line in the middle of a
read ends the stream with one error frame after the good lines before it, nothing after
the final frame is sent, and the reservation is settled exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest

from neuronetz_gateway.auth.authenticator import Principal
from neuronetz_gateway.limits.base import LimitStore, Reservation
from neuronetz_gateway.proxy.adapters import NATIVE
from neuronetz_gateway.proxy.context import RequestContext
from neuronetz_gateway.proxy.openai_adapters import ChatAdapter
from neuronetz_gateway.proxy.pipeline import STREAM_FAILED, Pipeline, ResponseAdapter
from neuronetz_gateway.proxy.streaming import LineReader
from neuronetz_gateway.upstream.discovery import Discovery
from neuronetz_gateway.upstream.router import Router, UpstreamCall

from .test_streaming import ScriptedContent

NATIVE_ERROR = orjson.dumps({"error": STREAM_FAILED}) + b"\n"


def chunk(text: str) -> bytes:
    return orjson.dumps(
        {"model": "m", "message": {"role": "assistant", "content": text}, "done": False}
    )


FINAL = orjson.dumps(
    {
        "model": "m",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 7,
        "eval_count": 3,
    }
)


def read(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


class Limits:
    in_process = True

    def __init__(self) -> None:
        self.settled: list[int] = []

    async def settle(self, reservation: Reservation, used: int) -> None:
        self.settled.append(used)


class Upstream:
    """The parts of ``UpstreamCall`` a stream uses, with the router's first read done."""

    def __init__(self, reads: list[bytes]) -> None:
        self.content = ScriptedContent(reads)
        self.reader = LineReader(self.content, 1 << 20)
        self.first_line: bytes | None = None
        self.ended: list[str] = []

    async def start(self) -> UpstreamCall:
        self.first_line = await self.reader.next_line()
        return cast(UpstreamCall, self)

    def release(self) -> None:
        self.ended.append("release")

    def abort(self) -> None:
        self.ended.append("abort")


def context(log_prompts: bool = False) -> RequestContext:
    return RequestContext(
        request_id="r1",
        started=time.perf_counter(),
        started_at=datetime.now(UTC),
        client_ip="127.0.0.1",
        surface="native",
        method="POST",
        path="/api/chat",
        principal=cast(Principal, SimpleNamespace(log_prompts=log_prompts)),
    )


class Run:
    def __init__(self, reads: list[bytes], adapter: ResponseAdapter = NATIVE, **ctx: Any) -> None:
        self.limits = Limits()
        self.pipeline = Pipeline(
            limits=cast(LimitStore, self.limits),
            discovery=cast(Discovery, None),
            router=cast(Router, None),
        )
        self.upstream = Upstream(reads)
        self.ctx = context(**ctx)
        self.adapter = adapter

    async def bodies(self, take: int | None = None) -> list[bytes]:
        stream = self.pipeline._stream(
            self.ctx,
            await self.upstream.start(),
            self.adapter,
            cast(Reservation, None),
            prompt_estimate=11,
        )
        out = []
        async for body in stream:
            out.append(body)
            if take is not None and len(out) == take:
                break
        await stream.aclose()  # what StreamResponse does when the client goes away
        return out


async def test_every_line_of_a_read_goes_out_in_one_chunk_as_received() -> None:
    run = Run([read(chunk("a"), chunk("b"), chunk("c")), read(chunk("d"), FINAL)], log_prompts=True)
    bodies = await run.bodies()
    assert bodies == [read(chunk("a"), chunk("b"), chunk("c")), read(chunk("d"), FINAL)]
    assert run.ctx.first_byte is not None and run.ctx.error_class is None
    assert (run.ctx.tokens_in, run.ctx.tokens_out) == (7, 3)  # from the final frame
    assert run.ctx.response_parts == ["a", "b", "c", "d"]
    assert run.upstream.ended == ["release"] and run.limits.settled == [10]


async def test_a_line_split_across_reads() -> None:
    line = chunk("split")
    run = Run([read(chunk("a")) + line[:9], line[9:20], line[20:] + b"\n" + read(FINAL)])
    assert await run.bodies() == [read(chunk("a")), read(line, FINAL)]
    assert run.upstream.ended == ["release"]


@pytest.mark.parametrize(
    "bad",
    [b'{"error":"panic at /usr/lib/ollama/runner.go"}', b'{"message":', b"[1]", b"null"],
)
async def test_a_bad_line_in_the_middle_of_a_read_ends_the_stream_after_the_good_ones(
    bad: bytes,
) -> None:
    run = Run([read(chunk("a")), read(chunk("b"), bad, chunk("never"), FINAL)])
    bodies = await run.bodies()
    assert bodies == [read(chunk("a")), read(chunk("b")) + NATIVE_ERROR]
    assert run.ctx.error_class == "upstream_stream_broken"
    assert (run.ctx.tokens_in, run.ctx.tokens_out) == (11, 2)  # prompt estimate, delivered
    assert run.upstream.ended == ["abort"] and run.limits.settled == [13]


async def test_nothing_after_the_final_frame_of_a_read_is_sent_or_read() -> None:
    run = Run([read(chunk("a"), FINAL, chunk("forged"), b"garbage{"), read(chunk("more"))])
    assert await run.bodies() == [read(chunk("a"), FINAL)]
    assert run.ctx.error_class is None and run.upstream.ended == ["release"]
    assert run.upstream.content.reads == [read(chunk("more"))]
    assert run.limits.settled == [10]


async def test_a_stream_that_ends_without_a_final_frame() -> None:
    run = Run([read(chunk("a"), chunk("b")), b'{"cut'])
    assert await run.bodies() == [read(chunk("a"), chunk("b")), NATIVE_ERROR]
    assert run.upstream.ended == ["abort"] and run.limits.settled == [13]


async def test_a_client_that_leaves_mid_stream_aborts_the_upstream_once() -> None:
    run = Run([read(chunk("a"), chunk("b")), read(chunk("c")), read(FINAL)])
    assert await run.bodies(take=1) == [read(chunk("a"), chunk("b"))]
    assert run.ctx.error_class == "client_disconnected"
    assert run.upstream.ended == ["abort"] and run.limits.settled == [13]


def sse_payloads(body: bytes) -> list[Any]:
    assert body.endswith(b"\n\n")
    events = body[:-2].split(b"\n\n")
    assert all(event.startswith(b"data: ") for event in events)
    return [
        payload if payload == b"[DONE]" else orjson.loads(payload)
        for payload in (event[len(b"data: ") :] for event in events)
    ]


def contents(payloads: list[Any]) -> list[Any]:
    return [
        p["choices"][0]["delta"] if isinstance(p, dict) and p.get("choices") else p
        for p in payloads
    ]


async def test_sse_frames_of_a_read_go_out_in_one_chunk_with_the_ending_in_the_last() -> None:
    run = Run(
        [read(chunk("a"), chunk("b")), read(chunk("c"), FINAL)],
        adapter=ChatAdapter("m", include_usage=True),
    )
    first, last = await run.bodies()
    assert contents(sse_payloads(first)) == [
        {"role": "assistant", "content": ""},
        {"content": "a"},
        {"content": "b"},
    ]
    payloads = sse_payloads(last)
    assert contents(payloads)[:2] == [{"content": "c"}, {}]
    assert payloads[1]["choices"][0]["finish_reason"] == "stop"
    assert payloads[2]["usage"]["total_tokens"] == 10 and payloads[3] == b"[DONE]"
    assert run.upstream.ended == ["release"] and run.limits.settled == [10]


async def test_sse_error_in_the_middle_of_a_read() -> None:
    run = Run(
        [read(chunk("a"), b'{"error":"CUDA out of memory"}', FINAL)],
        adapter=ChatAdapter("m", include_usage=True),
    )
    (body,) = await run.bodies()
    payloads = sse_payloads(body)
    assert contents(payloads[:2]) == [{"role": "assistant", "content": ""}, {"content": "a"}]
    assert len(payloads) == 3 and "error" in payloads[2]
    assert b"CUDA" not in body and b"[DONE]" not in body
    assert run.upstream.ended == ["abort"] and run.limits.settled == [12]


class RemoteLimits(Limits):
    """A store in another process (Redis): its settlement's reply takes a while."""

    in_process = False

    def __init__(self) -> None:
        super().__init__()
        self.reply = asyncio.Event()

    async def settle(self, reservation: Reservation, used: int) -> None:
        self.settled.append(used)
        await self.reply.wait()


async def streamed_with_remote_store(
    reads: list[bytes],
) -> tuple[RemoteLimits, list[bytes], list[asyncio.Future[None]]]:
    run = Run(reads)
    limits = run.limits = RemoteLimits()
    run.pipeline.limits = cast(LimitStore, limits)
    later: list[asyncio.Future[None]] = []
    stream = run.pipeline._stream(
        run.ctx, await run.upstream.start(), run.adapter, cast(Reservation, None), 11, later
    )

    async def drain() -> list[bytes]:
        return [body async for body in stream]

    bodies = await asyncio.wait_for(drain(), 2.0)  # ends without the store's reply
    return limits, bodies, later


async def test_a_complete_stream_ends_before_a_remote_settlement_replies() -> None:
    limits, bodies, later = await streamed_with_remote_store(
        [read(chunk("a")), read(chunk("b"), FINAL)]
    )
    assert bodies == [read(chunk("a")), read(chunk("b"), FINAL)]
    assert len(later) == 1 and not later[0].done()
    for _ in range(5):
        await asyncio.sleep(0)
    assert (
        limits.settled == [10] and not later[0].done()
    )  # sent at once; only its reply is outstanding
    limits.reply.set()
    await asyncio.wait_for(later[0], 1.0)


async def test_a_broken_stream_still_settles_before_its_end() -> None:
    run = Run([read(chunk("a"), b"not json")])
    limits = run.limits = RemoteLimits()
    limits.reply.set()
    run.pipeline.limits = cast(LimitStore, limits)
    later: list[asyncio.Future[None]] = []
    stream = run.pipeline._stream(
        run.ctx, await run.upstream.start(), run.adapter, cast(Reservation, None), 11, later
    )
    async for _ in stream:
        pass
    assert later == [] and limits.settled == [12]  # awaited before the stream's end


async def test_stream_response_waits_for_deferred_work_after_its_last_write() -> None:
    from neuronetz_gateway.proxy.responses import StreamResponse

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x\n"

    done = asyncio.get_running_loop().create_future()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    response = StreamResponse(
        chunks(),  # type: ignore[arg-type]
        media_type="application/x-ndjson",
        headers={},
        after=[done],
    )
    task = asyncio.ensure_future(response({"type": "http"}, receive, send))  # type: ignore[arg-type]
    for _ in range(10):
        await asyncio.sleep(0)
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert not task.done()  # the end is out; the response still waits for the work
    done.set_result(None)
    await asyncio.wait_for(task, 1.0)
