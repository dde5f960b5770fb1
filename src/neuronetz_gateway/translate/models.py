"""Ollama ``/api/tags`` entries → OpenAI model objects (reference §3.6).

Unlike Ollama's layer, an empty list is ``"data": []`` (never ``null``), and a missing
or zero ``modified_at`` gives ``created: 0`` rather than a negative year-1 timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict


class ModelObject(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(TypedDict):
    object: Literal["list"]
    data: list[ModelObject]


def _model_id(tag: Mapping[str, Any]) -> str | None:
    for key in ("model", "name"):
        value = tag.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def created_from_rfc3339(value: object) -> int:
    """Unix seconds of an RFC 3339 timestamp (nanoseconds allowed); 0 if unusable."""
    if not isinstance(value, str):
        return 0
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int(moment.timestamp()))


def owner_of(name: str) -> str:
    """The namespace of ``[host/][namespace/]model[:tag][@digest]``, else ``library``."""
    name = name.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name = name[:colon]
    parts = name.split("/")
    return parts[-2] if len(parts) >= 2 and parts[-2] else "library"


def model_from_tag(tag_entry: Mapping[str, Any]) -> ModelObject:
    """One ``/api/tags`` entry as ``GET /v1/models/{model}`` returns it.

    Raises ``ValueError`` if the entry has neither ``model`` nor ``name``.
    """
    model_id = _model_id(tag_entry)
    if model_id is None:
        raise ValueError("tag entry has no model name")
    return {
        "id": model_id,
        "object": "model",
        "created": created_from_rfc3339(tag_entry.get("modified_at")),
        "owned_by": owner_of(model_id),
    }


def models_list_from_tags(models: Iterable[Mapping[str, Any]]) -> ModelList:
    """``GET /v1/models`` from ``/api/tags`` entries; entries without a name are skipped."""
    return {
        "object": "list",
        "data": [model_from_tag(tag) for tag in models if _model_id(tag) is not None],
    }
