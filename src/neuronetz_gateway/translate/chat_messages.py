"""OpenAI chat ``messages`` → Ollama ``/api/chat`` messages (reference §3.2).

Like Ollama's own layer, each part of a content array becomes a separate native message
with the same role, so prompts render identically through either door. Where Ollama
drops information we keep it: a tool result whose content is an array keeps its
``tool_call_id``/``tool_name``, and a tool result's name is looked up only among the
calls made before it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.translate.fields import read_list, read_object, read_str
from neuronetz_gateway.translate.native import NativeMessage, NativeToolCall

NativeRole = Literal["system", "user", "assistant", "tool"]

# "developer" is OpenAI's newer name for the system role.
_ROLES: dict[str, NativeRole] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}

# The data-URL prefixes Ollama accepts; a blank media type means "bare base64".
_IMAGE_PREFIXES = (
    "data:image/jpeg;base64,",
    "data:image/jpg;base64,",
    "data:image/png;base64,",
    "data:image/webp;base64,",
    "data:;base64,",
)


def messages_to_native(raw: object) -> list[NativeMessage]:
    if not isinstance(raw, list):
        raise BadRequest("'messages' must be an array", param="messages")
    if not raw:
        raise BadRequest("'messages' must contain at least one message", param="messages")
    tool_names: dict[str, str] = {}
    native: list[NativeMessage] = []
    for index, message in enumerate(raw):
        native.extend(_message_to_native(message, f"messages[{index}]", tool_names))
    return native


def _message_to_native(
    message: object, param: str, tool_names: dict[str, str]
) -> list[NativeMessage]:
    if not isinstance(message, dict):
        raise BadRequest(f"'{param}' must be an object", param=param)
    role_name = read_str(message, "role", param=f"{param}.role")
    role = _ROLES.get(role_name or "")
    if role is None:
        raise BadRequest(
            f"'{param}.role' must be one of {', '.join(_ROLES)}", param=f"{param}.role"
        )

    tool_calls: list[NativeToolCall] = []
    thinking = None
    if role == "assistant":
        tool_calls = _tool_calls_to_native(message, param)
        thinking = read_str(message, "reasoning", param=f"{param}.reasoning")
        for call in tool_calls:
            if "id" in call:
                tool_names[call["id"]] = call["function"]["name"]
    elif message.get("tool_calls") is not None:
        raise BadRequest(
            f"'{param}.tool_calls' is only allowed on assistant messages",
            param=f"{param}.tool_calls",
        )

    messages = _content_to_native(
        role, message.get("content"), param, has_tool_calls=bool(tool_calls)
    )
    last = messages[-1]
    if tool_calls:
        last["tool_calls"] = tool_calls
    if thinking:
        last["thinking"] = thinking
    if role == "tool":
        call_id = read_str(message, "tool_call_id", param=f"{param}.tool_call_id")
        name = read_str(message, "name", param=f"{param}.name")
        if call_id:
            last["tool_call_id"] = call_id
            name = name or tool_names.get(call_id)
        if name:
            last["tool_name"] = name
    return messages


def _content_to_native(
    role: NativeRole, content: object, param: str, *, has_tool_calls: bool
) -> list[NativeMessage]:
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if content is None:
        if has_tool_calls:
            return [{"role": role, "content": ""}]
        raise BadRequest(
            f"'{param}.content' is required unless the message has tool_calls",
            param=f"{param}.content",
        )
    if not isinstance(content, list):
        raise BadRequest(
            f"'{param}.content' must be a string or an array of content parts",
            param=f"{param}.content",
        )
    if not content:
        return [{"role": role, "content": ""}]
    return [
        _part_to_native(role, part, f"{param}.content[{index}]")
        for index, part in enumerate(content)
    ]


def _part_to_native(role: NativeRole, part: object, param: str) -> NativeMessage:
    if not isinstance(part, dict):
        raise BadRequest(f"'{param}' must be an object", param=param)
    kind = part.get("type")
    if kind in ("text", "refusal"):
        text = part.get(kind)
        if not isinstance(text, str):
            raise BadRequest(f"'{param}.{kind}' must be a string", param=f"{param}.{kind}")
        return {"role": role, "content": text}
    if kind == "image_url":
        return {"role": role, "content": "", "images": [_image_data(part, param)]}
    if kind == "input_audio":
        # Ollama hands audio to audio-capable models through the images field.
        audio = read_object(part, "input_audio", param=f"{param}.input_audio") or {}
        data = read_str(audio, "data", param=f"{param}.input_audio.data")
        return {
            "role": role,
            "content": "",
            "images": [_checked_base64(data or "", f"{param}.input_audio.data")],
        }
    raise BadRequest(
        f"'{param}.type' must be one of text, image_url, input_audio", param=f"{param}.type"
    )


def _image_data(part: Mapping[str, Any], param: str) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    url_param = f"{param}.image_url.url" if isinstance(image, dict) else f"{param}.image_url"
    if not isinstance(url, str):
        raise BadRequest(f"'{url_param}' must be a string", param=url_param)
    if url.startswith(("http://", "https://")):
        raise BadRequest(
            "image URLs are not supported; send the image as a base64 data URL "
            "(data:image/png;base64,...)",
            param=url_param,
        )
    prefix = next((p for p in _IMAGE_PREFIXES if url.startswith(p)), None)
    if prefix is None:
        raise BadRequest(
            f"'{url_param}' must be a base64 data URL of a jpeg, png or webp image",
            param=url_param,
        )
    return _checked_base64(url[len(prefix) :], url_param)


def _checked_base64(data: str, param: str) -> str:
    # Go's decoder skips line breaks; Ollama rejects anything else that is not strict
    # standard base64, and so do we, before spending a backend request on it.
    data = data.replace("\r", "").replace("\n", "")
    try:
        valid = bool(data) and bool(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise BadRequest(f"'{param}' is not valid base64 data", param=param)
    return data


def _tool_calls_to_native(message: Mapping[str, Any], param: str) -> list[NativeToolCall]:
    raw_calls = read_list(message, "tool_calls", param=f"{param}.tool_calls") or []
    calls: list[NativeToolCall] = []
    for index, raw in enumerate(raw_calls):
        call_param = f"{param}.tool_calls[{index}]"
        if not isinstance(raw, dict):
            raise BadRequest(f"'{call_param}' must be an object", param=call_param)
        if raw.get("type", "function") != "function":
            raise BadRequest(f"'{call_param}.type' must be 'function'", param=f"{call_param}.type")
        function = read_object(raw, "function", param=f"{call_param}.function")
        if function is None:
            raise BadRequest(f"'{call_param}.function' is required", param=f"{call_param}.function")
        name = read_str(function, "name", param=f"{call_param}.function.name")
        if not name:
            raise BadRequest(
                f"'{call_param}.function.name' is required",
                param=f"{call_param}.function.name",
            )
        call: NativeToolCall = {
            "function": {
                "index": index,
                "name": name,
                "arguments": _arguments(function.get("arguments"), f"{call_param}.function"),
            }
        }
        call_id = read_str(raw, "id", param=f"{call_param}.id")
        if call_id:
            call["id"] = call_id
        calls.append(call)
    return calls


def _arguments(raw: object, param: str) -> dict[str, Any]:
    """Tool-call arguments: a JSON object encoded as a string, as OpenAI sends them.

    An empty string (some clients send it for argument-less tools) is ``{}``; an object
    already decoded is accepted as is.
    """
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    raise BadRequest(
        f"'{param}.arguments' must be a JSON object encoded as a string",
        param=f"{param}.arguments",
    )
