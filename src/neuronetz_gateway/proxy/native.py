"""Validation and normalisation of native Ollama request bodies. Pure functions.

Each ``prepare_*`` takes the client's parsed JSON object and returns the body the
gateway will send upstream (re-serialised, only known fields, output capped,
``keep_alive`` clamped) together with what the pipeline needs to know about it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.proxy.body import check_field_names

UpstreamPath = Literal["/api/chat", "/api/generate", "/api/embed", "/api/embeddings"]

# Fields of Ollama's request structs (api/types.go) that the gateway forwards.
CHAT_FIELDS = (
    "model", "messages", "tools", "format", "options", "stream", "keep_alive", "think",
    "truncate", "shift", "logprobs", "top_logprobs",
)  # fmt: skip
GENERATE_FIELDS = (
    "model", "prompt", "suffix", "system", "template", "context", "stream", "raw", "format",
    "images", "options", "keep_alive", "think", "truncate", "shift", "logprobs", "top_logprobs",
)  # fmt: skip
EMBED_FIELDS = ("model", "input", "truncate", "dimensions", "keep_alive", "options")
EMBEDDINGS_FIELDS = ("model", "prompt", "options", "keep_alive")
MESSAGE_FIELDS = (
    "role",
    "content",
    "thinking",
    "images",
    "tool_calls",
    "tool_name",
    "tool_call_id",
)
OPTION_FIELDS = (
    "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n",
    "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty", "stop", "num_ctx",
    "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "draft_num_predict",
)  # fmt: skip
# Options that change the server for everyone or its resource use; tenants may not set them.
OPERATOR_ONLY_OPTIONS = frozenset({"num_gpu", "main_gpu", "use_mmap", "num_thread", "num_batch"})
THINK_LEVELS = frozenset({"low", "medium", "high", "max"})
ROLES = frozenset({"system", "user", "assistant", "tool"})
_GO_DURATION = re.compile(r"^(-?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """Operator bounds applied to every request."""

    max_num_predict: int
    keep_alive_min_s: int
    keep_alive_max_s: int


@dataclass(slots=True)
class ModelCall:
    """A validated request, ready for the pipeline."""

    upstream_path: UpstreamPath
    payload: dict[str, Any]
    model: str
    stream: bool
    reserve_tokens: int
    prompt_log: Any = field(default=None)


def estimate_text_tokens(text: str) -> int:
    """Upper-bound estimate of a text's tokens: one per 3 UTF-8 bytes, rounded up.

    Real tokenizers average about 4 bytes per token on English text; 3 keeps the
    estimate on the safe side for code and other languages. The reservation is settled
    to the backend's real count when the response ends.
    """
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / 3)


def _str(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name} is required", param=name)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", param=name)
    return value


def _model(body: dict[str, Any]) -> str:
    model = _str(body, "model", required=True)
    assert model is not None
    if not model.strip() or len(model) > 256 or any(ord(c) < 32 for c in model):
        raise BadRequest("model is required", param="model")
    return model


def _stream(body: dict[str, Any]) -> bool:
    value = body.get("stream")
    if value is None:
        return True  # Ollama streams when `stream` is missing or null
    if not isinstance(value, bool):
        raise BadRequest("stream must be a boolean", param="stream")
    return value


def parse_keep_alive(value: Any) -> float:
    """Seconds from Ollama's keep_alive forms: a number or a Go duration string."""
    if isinstance(value, bool):
        raise BadRequest("keep_alive must be a number or a duration", param="keep_alive")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        match = _GO_DURATION.match(text)
        if match:
            seconds = sum(float(n) * _GO_UNITS[u] for n, u in _GO_PART.findall(match.group(2)))
            return -seconds if match.group(1) else seconds
    raise BadRequest("keep_alive must be a number or a duration like 5m", param="keep_alive")


def clamp_keep_alive(value: Any, policy: CallPolicy) -> int:
    seconds = parse_keep_alive(value)
    if seconds < 0:  # "forever"
        return policy.keep_alive_max_s
    return int(min(max(seconds, policy.keep_alive_min_s), policy.keep_alive_max_s))


def _options(body: dict[str, Any], policy: CallPolicy, *, generates: bool) -> dict[str, Any]:
    raw = body.get("options")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadRequest("options must be an object", param="options")
    check_field_names(raw, OPTION_FIELDS, "options")
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in OPTION_FIELDS:
            continue  # Ollama ignores unknown options; so do we, without forwarding them
        if key in OPERATOR_ONLY_OPTIONS:
            raise BadRequest(f"options.{key} is reserved to the operator", param=f"options.{key}")
        if key == "stop":
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise BadRequest("options.stop must be an array of strings", param="options.stop")
        elif key == "use_mmap":
            pass
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadRequest(f"options.{key} must be a number", param=f"options.{key}")
        options[key] = value
    if generates:
        predict = options.get("num_predict")
        if predict is None or predict < 0:
            options["num_predict"] = policy.max_num_predict
        elif predict > policy.max_num_predict:
            raise BadRequest(
                f"options.num_predict may not exceed {policy.max_num_predict}",
                param="options.num_predict",
            )
        else:
            options["num_predict"] = int(predict)
    return options


def _common(
    body: dict[str, Any], out: dict[str, Any], policy: CallPolicy, *, generates: bool
) -> None:
    out["options"] = _options(body, policy, generates=generates)
    if body.get("keep_alive") is not None:
        out["keep_alive"] = clamp_keep_alive(body["keep_alive"], policy)
    for flag in ("truncate", "shift", "logprobs", "raw"):
        if flag in body and body[flag] is not None:
            if not isinstance(body[flag], bool):
                raise BadRequest(f"{flag} must be a boolean", param=flag)
            out[flag] = body[flag]
    if body.get("top_logprobs") is not None:
        top = body["top_logprobs"]
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
            raise BadRequest("top_logprobs must be between 0 and 20", param="top_logprobs")
        out["top_logprobs"] = top
    if "think" in body and body["think"] is not None:
        think = body["think"]
        if not (isinstance(think, bool) or (isinstance(think, str) and think in THINK_LEVELS)):
            raise BadRequest("think must be a boolean or low|medium|high|max", param="think")
        out["think"] = think
    if "format" in body and body["format"] not in (None, ""):
        fmt = body["format"]
        if not (fmt == "json" or isinstance(fmt, dict)):
            raise BadRequest('format must be "json" or a JSON schema object', param="format")
        out["format"] = fmt


def _images(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise BadRequest(f"{where} must be an array of base64 strings", param=where)
    return list(value)


def _message(raw: Any, index: int) -> tuple[dict[str, Any], int]:
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object", param=where)
    check_field_names(raw, MESSAGE_FIELDS, where)
    role = raw.get("role")
    if not isinstance(role, str) or role.lower() not in ROLES:
        raise BadRequest(f"{where}.role must be system, user, assistant or tool", param=where)
    msg: dict[str, Any] = {"role": role.lower()}
    text_len = 8
    for name in ("content", "thinking", "tool_name", "tool_call_id"):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRequest(f"{where}.{name} must be a string", param=f"{where}.{name}")
        msg[name] = value
        text_len += estimate_text_tokens(value)
    if raw.get("images") is not None:
        msg["images"] = _images(raw["images"], f"{where}.images")
        text_len += 768 * len(msg["images"])  # a generous per-image allowance
    if raw.get("tool_calls") is not None:
        calls = raw["tool_calls"]
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise BadRequest(f"{where}.tool_calls must be an array of objects", param=where)
        msg["tool_calls"] = calls
        text_len += estimate_text_tokens(repr(calls))
    return msg, text_len


def prepare_chat(body: dict[str, Any], policy: CallPolicy) -> ModelCall:
    check_field_names(body, CHAT_FIELDS, "request")
    model = _model(body)
    messages_raw = body.get("messages")
    if messages_raw is None:
        messages_raw = []
    if not isinstance(messages_raw, list):
        raise BadRequest("messages must be an array", param="messages")
    messages: list[dict[str, Any]] = []
    prompt_tokens = 0
    for i, raw in enumerate(messages_raw):
        msg, tokens = _message(raw, i)
        messages.append(msg)
        prompt_tokens += tokens
    out: dict[str, Any] = {"model": model, "messages": messages}
    stream = _stream(body)
    out["stream"] = stream
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise BadRequest("tools must be an array of objects", param="tools")
        if tools:
            out["tools"] = tools
            prompt_tokens += estimate_text_tokens(repr(tools))
    _common(body, out, policy, generates=True)
    return ModelCall(
        upstream_path="/api/chat",
        payload=out,
        model=model,
        stream=stream,
        reserve_tokens=prompt_tokens + out["options"]["num_predict"],
        prompt_log=messages,
    )


def prepare_generate(body: dict[str, Any], policy: CallPolicy) -> ModelCall:
    check_field_names(body, GENERATE_FIELDS, "request")
    model = _model(body)
    out: dict[str, Any] = {"model": model}
    prompt_tokens = 8
    for name in ("prompt", "suffix", "system", "template"):
        value = _str(body, name)
        if value is not None:
            out[name] = value
            prompt_tokens += estimate_text_tokens(value)
    if body.get("raw") and any(body.get(k) for k in ("template", "system", "context")):
        raise BadRequest("raw mode does not support template, system, or context", param="raw")
    if body.get("context") is not None:
        ctx = body["context"]
        if not isinstance(ctx, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in ctx
        ):
            raise BadRequest("context must be an array of integers", param="context")
        out["context"] = ctx
        prompt_tokens += len(ctx)
    if body.get("images") is not None:
        out["images"] = _images(body["images"], "images")
        prompt_tokens += 768 * len(out["images"])
    stream = _stream(body)
    out["stream"] = stream
    _common(body, out, policy, generates=True)
    return ModelCall(
        upstream_path="/api/generate",
        payload=out,
        model=model,
        stream=stream,
        reserve_tokens=prompt_tokens + out["options"]["num_predict"],
        prompt_log=out.get("prompt", ""),
    )


def prepare_embed(body: dict[str, Any], policy: CallPolicy) -> ModelCall:
    check_field_names(body, EMBED_FIELDS, "request")
    model = _model(body)
    value = body.get("input")
    if isinstance(value, str):
        inputs = [value]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        inputs = list(value)
    elif value is None:
        inputs = []
    else:
        raise BadRequest("input must be a string or an array of strings", param="input")
    out: dict[str, Any] = {"model": model, "input": value if value is not None else inputs}
    if body.get("dimensions") is not None:
        dims = body["dimensions"]
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise BadRequest("dimensions must be a positive integer", param="dimensions")
        out["dimensions"] = dims
    _common(body, out, policy, generates=False)
    reserve = sum(estimate_text_tokens(s) + 2 for s in inputs) or 1
    return ModelCall("/api/embed", out, model, False, reserve, prompt_log=inputs)


def prepare_embeddings(body: dict[str, Any], policy: CallPolicy) -> ModelCall:
    check_field_names(body, EMBEDDINGS_FIELDS, "request")
    model = _model(body)
    prompt = _str(body, "prompt") or ""
    out: dict[str, Any] = {"model": model, "prompt": prompt}
    _common(body, out, policy, generates=False)
    reserve = estimate_text_tokens(prompt) + 2
    return ModelCall("/api/embeddings", out, model, False, reserve, prompt_log=prompt)


def model_name_key(name: str) -> str:
    """Ollama treats ``llama3.2`` and ``llama3.2:latest`` as one model."""
    name = name.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"
