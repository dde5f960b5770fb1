"""What of Ollama's `/api/show` answer may reach a tenant. Pure function.

Removed: the system prompt, the template, the modelfile (it names local blob paths),
the license text's neighbours that can carry paths, and anything else not listed here.
Kept: the facts a client needs to use the model.
"""

from __future__ import annotations

from typing import Any

_KEEP = ("details", "model_info", "capabilities", "modified_at", "parameters", "license")


def _no_paths(text: str) -> str:
    lines = [ln for ln in text.splitlines() if "/" not in ln and "\\" not in ln]
    return "\n".join(lines)


def sanitize_show(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _KEEP:
        if key in data:
            out[key] = data[key]
    if isinstance(out.get("parameters"), str):
        out["parameters"] = _no_paths(out["parameters"])
    if not isinstance(out.get("model_info"), dict):
        out["model_info"] = {}  # the ollama client requires the key
    else:
        out["model_info"] = {
            k: v for k, v in out["model_info"].items() if not (isinstance(v, str) and "/" in v)
        }
    if isinstance(out.get("details"), dict):
        out["details"] = {k: v for k, v in out["details"].items() if k != "parent_model"}
    return out
