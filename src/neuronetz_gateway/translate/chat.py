"""``POST /v1/chat/completions`` → ``POST /api/chat`` request translation.

Faithful to Ollama's own OpenAI layer (reference §3.2) where it is sound, stricter where
it silently drops meaning. Every field of OpenAI's request is one of:

=========================  ================================================================
Field                      Treatment
=========================  ================================================================
model                      **mapped** to ``model``; required, a non-empty string
messages                   **mapped** (see ``chat_messages``): string content, or an array
                           of text / image_url (base64 ``data:`` URLs only; http(s) URLs
                           400) / input_audio parts, each part its own native message;
                           ``developer`` → ``system``; assistant ``tool_calls`` arguments
                           parsed to objects (invalid JSON 400); assistant ``reasoning`` →
                           ``thinking``; tool ``tool_call_id`` kept and ``name`` → tool_name
                           (or looked up from earlier calls). Message ``name`` on other
                           roles, ``image_url.detail``, ``input_audio.format`` ignored:
                           Ollama has no place for them
max_completion_tokens      **mapped** to ``options.num_predict`` (Ollama ignores it; we do
max_tokens                 not). If both are set the smaller wins (both are upper bounds).
                           Each must be 1..cap, else 400. Absent → the gateway's cap, since
                           output must always be bounded
temperature, top_p         **mapped** to options; default 1.0 (OpenAI's default, and what
                           Ollama's layer sends), overriding the Modelfile. Ranges 0..2, 0..1
seed                       **mapped** to ``options.seed`` (int64)
frequency_penalty,         **mapped** to options when given (-2..2)
presence_penalty
stop                       **mapped** to ``options.stop`` (string or array of strings;
                           other items 400 — Ollama drops them silently; empty strings are
                           dropped because they would end generation at once)
response_format            **mapped**: ``text`` → none, ``json_object`` → ``format:"json"``,
                           ``json_schema`` → ``format`` = ``json_schema.schema`` (required;
                           ``name``/``strict`` ignored). Other types 400
tools                      **mapped** to ``tools`` (function tools only; ``strict`` ignored)
tool_choice                ``auto``/absent: tools as given. ``none``: **mapped** by not
                           sending the tools, so the model cannot call one. ``required`` or
                           a named tool: **refused** (cannot be enforced)
reasoning_effort,          **mapped** to ``think``: none → false, minimal → "low", low /
reasoning.effort           medium / high / max as is, xhigh / ultra → "max"; ``reasoning.effort``
                           wins. Other values 400
logprobs, top_logprobs     **mapped** (top_logprobs 0..20, needs ``logprobs: true``)
stream                     **mapped** (default false; always sent, since Ollama's default
                           is true)
stream_options             ``include_usage`` **mapped** to the final usage chunk;
                           ``include_obfuscation`` ignored (no obfuscation padding)
n                          1 accepted; > 1 **refused** (one choice per request)
logit_bias                 empty accepted; otherwise **refused** (Ollama has no logit bias)
audio, modalities          **refused** unless absent / ``["text"]``: no audio output
prediction                 **refused**: predicted outputs are not supported
functions, function_call   **refused** (deprecated; use tools) unless empty / none / auto
web_search_options         **refused**: no server-side search
moderation                 **refused**: no moderation policy to apply
parallel_tool_calls        ignored: cannot be enforced on Ollama models
user, safety_identifier    ignored: end-user identifiers; the gateway identifies the caller
                           by API key
store, metadata            ignored: completions are not stored for later retrieval
service_tier               ignored: there is one tier
prompt_cache_key,          ignored: caching hints with no effect on the output
prompt_cache_retention,
prompt_cache_options
verbosity                  ignored: a style hint with no native equivalent
any other field            ignored, like Ollama; native-only fields (``options``,
                           ``keep_alive``, ``think``, ``format``) never reach Ollama because
                           the native body is built from scratch
=========================  ================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.translate.chat_messages import messages_to_native
from neuronetz_gateway.translate.fields import (
    read_bool,
    read_int,
    read_list,
    read_model,
    read_object,
    read_str,
)
from neuronetz_gateway.translate.generation import (
    NativeRequest,
    read_num_predict,
    read_stream,
    refuse_logit_bias,
    refuse_multiple_choices,
    sampling_options,
)
from neuronetz_gateway.translate.native import NativeChatBody, NativeTool, ThinkValue

_THINK: dict[str, ThinkValue] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "max",
    "xhigh": "max",
    "ultra": "max",
}

# Fields whose mere presence asks for something Ollama cannot do.
_UNSUPPORTED = {
    "audio": "audio output is not supported",
    "prediction": "predicted outputs are not supported",
    "web_search_options": "web search is not supported",
    "moderation": "moderation is not supported",
}


def chat_request_to_native(
    body: Mapping[str, Any], *, max_num_predict: int
) -> NativeRequest[NativeChatBody]:
    """Translate a ``/v1/chat/completions`` body; raises ``BadRequest`` naming the field."""
    model = read_model(body)
    _refuse_unsupported(body)
    messages = messages_to_native(body.get("messages"))
    num_predict = read_num_predict(
        body, ("max_tokens", "max_completion_tokens"), max_num_predict=max_num_predict
    )
    stream, include_usage = read_stream(body)
    native: NativeChatBody = {
        "model": model,
        "messages": messages,
        "stream": stream,
        "options": sampling_options(body, num_predict=num_predict),
    }
    tools = _tools(body)
    if _tool_choice(body) == "auto" and tools:
        native["tools"] = tools
    response_format = _format(body)
    if response_format is not None:
        native["format"] = response_format
    think = _think(body)
    if think is not None:
        native["think"] = think
    top_logprobs = read_int(body, "top_logprobs", minimum=0, maximum=20)
    if read_bool(body, "logprobs"):
        native["logprobs"] = True
        if top_logprobs is not None:
            native["top_logprobs"] = top_logprobs
    elif top_logprobs is not None:
        raise BadRequest("'top_logprobs' requires 'logprobs': true", param="top_logprobs")
    return NativeRequest(native, model, stream, include_usage, num_predict)


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    refuse_multiple_choices(body)
    refuse_logit_bias(body)
    for field, reason in _UNSUPPORTED.items():
        if body.get(field) is not None:
            raise BadRequest(f"'{field}': {reason}", param=field)
    modalities = read_list(body, "modalities") or []
    if any(modality != "text" for modality in modalities):
        raise BadRequest("'modalities': only text output is supported", param="modalities")
    if read_list(body, "functions"):
        raise BadRequest("'functions' is not supported; use 'tools'", param="functions")
    if body.get("function_call") not in (None, "none", "auto"):
        raise BadRequest("'function_call' is not supported; use 'tools'", param="function_call")


def _tools(body: Mapping[str, Any]) -> list[NativeTool]:
    tools: list[NativeTool] = []
    for index, raw in enumerate(read_list(body, "tools") or []):
        param = f"tools[{index}]"
        if not isinstance(raw, dict):
            raise BadRequest(f"'{param}' must be an object", param=param)
        if raw.get("type") != "function":
            raise BadRequest(f"'{param}.type' must be 'function'", param=f"{param}.type")
        function = read_object(raw, "function", param=f"{param}.function") or {}
        name = read_str(function, "name", param=f"{param}.function.name")
        if not name:
            raise BadRequest(f"'{param}.function.name' is required", param=f"{param}.function.name")
        tool: NativeTool = {"type": "function", "function": {"name": name}}
        description = read_str(function, "description", param=f"{param}.function.description")
        if description is not None:
            tool["function"]["description"] = description
        parameters = read_object(function, "parameters", param=f"{param}.function.parameters")
        if parameters is not None:
            tool["function"]["parameters"] = parameters
        tools.append(tool)
    return tools


def _tool_choice(body: Mapping[str, Any]) -> str:
    choice = body.get("tool_choice")
    if choice is None or choice == "auto":
        return "auto"
    if choice == "none":
        return "none"
    raise BadRequest(
        "'tool_choice' must be 'auto' or 'none'; forcing a tool call is not supported",
        param="tool_choice",
    )


def _format(body: Mapping[str, Any]) -> str | dict[str, Any] | None:
    response_format = read_object(body, "response_format")
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        json_schema = read_object(
            response_format, "json_schema", param="response_format.json_schema"
        )
        schema = read_object(
            json_schema or {}, "schema", param="response_format.json_schema.schema"
        )
        if schema is None:
            raise BadRequest(
                "'response_format.json_schema.schema' is required",
                param="response_format.json_schema.schema",
            )
        return schema
    raise BadRequest(
        "'response_format.type' must be one of text, json_object, json_schema",
        param="response_format.type",
    )


def _think(body: Mapping[str, Any]) -> ThinkValue | None:
    reasoning = read_object(body, "reasoning") or {}
    effort = read_str(reasoning, "effort", param="reasoning.effort")
    param = "reasoning.effort"
    if not effort:
        effort = read_str(body, "reasoning_effort")
        param = "reasoning_effort"
    if not effort:
        return None
    if effort not in _THINK:
        raise BadRequest(f"'{param}' must be one of {', '.join(_THINK)}", param=param)
    return _THINK[effort]
