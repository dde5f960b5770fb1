"""The models the mock pretends to have, and how /api/tags, /api/ps and /api/show show them.

Three models are known by their real metadata; any other name gets plausible,
deterministic metadata derived from the name. ``/api/show`` deliberately carries
everything a real Ollama leaks (a local blob path in the modelfile, the system prompt,
the template, the license), so tests can prove the gateway strips it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any

DEFAULT_MODEL_NAMES: tuple[str, ...] = (
    "llama3.2:latest",
    "qwen2.5:0.5b",
    "nomic-embed-text:latest",
)

# Ollama reports the server's local time, with its offset and nanoseconds.
_SERVER_ZONE = timezone(timedelta(hours=1))
_NEWEST_MODIFIED = datetime(2025, 10, 26, 17, 21, 21, 196249, tzinfo=_SERVER_ZONE)
_REGISTRY_PREFIXES = ("registry.ollama.ai/", "library/")
_SIZE_TAG = re.compile(r"^(\d+(?:\.\d+)?)([bm])$")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One installed model. ``name`` is canonical: lower case, with a tag."""

    name: str
    size: int
    digest: str
    family: str
    parameter_size: str
    quantization_level: str
    capabilities: tuple[str, ...]
    context_length: int
    embedding_length: int
    modified_at: str

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


_KNOWN: dict[str, dict[str, Any]] = {
    "llama3.2:latest": {
        "size": 2019393189,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "family": "llama",
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
        "capabilities": ("completion", "tools"),
        "context_length": 131072,
        "embedding_length": 3072,
    },
    "qwen2.5:0.5b": {
        "size": 397821319,
        "digest": "a8b0c51577010a279d933d14c2a8ab4b268079d44c5c8830c0a93900f1827c67",
        "family": "qwen2",
        "parameter_size": "494.03M",
        "quantization_level": "Q4_K_M",
        "capabilities": ("completion", "tools"),
        "context_length": 32768,
        "embedding_length": 896,
    },
    "nomic-embed-text:latest": {
        "size": 274302450,
        "digest": "0a109f422b47e3a30ba2b10eca18548e944e8a23073ee3f3e947efcf3c45e59f",
        "family": "nomic-bert",
        "parameter_size": "137M",
        "quantization_level": "F16",
        "capabilities": ("embedding",),
        "context_length": 2048,
        "embedding_length": 768,
    },
    "qwen3:0.6b": {
        "size": 522653767,
        "digest": "7df6b6e09427a769808717c0a93cadc4ae99ed4eb8bf5ca557c90846becea435",
        "family": "qwen3",
        "parameter_size": "751.63M",
        "quantization_level": "Q4_K_M",
        "capabilities": ("completion", "tools", "thinking"),
        "context_length": 40960,
        "embedding_length": 1024,
    },
}

_THINKING_FAMILIES = ("qwen3", "deepseek-r1", "gpt-oss")


def canonical_name(name: str) -> str:
    """Ollama's name normalisation: registry and ``library/`` dropped, ``:latest`` added.

    Matching is case-insensitive, the permissive reading of Ollama's behaviour, so the
    gateway's model policy cannot rely on upstream case sensitivity.
    """
    name = name.strip().lower()
    for prefix in _REGISTRY_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def _modified_at(index: int) -> str:
    moment = _NEWEST_MODIFIED - timedelta(days=index, hours=3 * index)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "145+01:00"


def _synthesized(name: str) -> dict[str, Any]:
    base, _, tag = name.rpartition("/")[2].partition(":")
    seed = hashlib.sha256(name.encode()).digest()
    family = re.sub(r"[\d.]+$", "", base) or base
    size_match = _SIZE_TAG.match(tag)
    parameter_size = (
        size_match.group(1) + size_match.group(2).upper() if size_match is not None else "7B"
    )
    if "embed" in base:
        capabilities: tuple[str, ...] = ("embedding",)
    elif base.startswith(_THINKING_FAMILIES):
        capabilities = ("completion", "tools", "thinking")
    else:
        capabilities = ("completion", "tools")
    return {
        "size": 100_000_000 + int.from_bytes(seed[:4], "big") % 4_000_000_000,
        "digest": hashlib.sha256(b"digest:" + name.encode()).hexdigest(),
        "family": family,
        "parameter_size": parameter_size,
        "quantization_level": "Q4_K_M",
        "capabilities": capabilities,
        "context_length": 4096 if "embedding" not in capabilities else 2048,
        "embedding_length": 768 if "embedding" in capabilities else 4096,
    }


_FIELD_TYPES: dict[str, type] = {
    "size": int,
    "digest": str,
    "family": str,
    "parameter_size": str,
    "quantization_level": str,
    "capabilities": tuple,
    "context_length": int,
    "embedding_length": int,
    "modified_at": str,
}


def model_spec(entry: str | Mapping[str, object], index: int = 0) -> ModelSpec:
    """Build a spec from a name, or from ``{"name": ..., <field>: <override>, ...}``.

    ``index`` is the position in the configured list: earlier entries are more
    recently modified, so the configured order is also Ollama's sort order.
    Raises ``ValueError`` naming the offending field.
    """
    overrides: dict[str, object] = {}
    if isinstance(entry, str):
        raw_name = entry
    elif not isinstance(entry, Mapping):
        raise ValueError("each model is a name or an object with a 'name'")
    else:
        raw_name_obj = entry.get("name")
        if not isinstance(raw_name_obj, str):
            raise ValueError("each model needs a string 'name'")
        raw_name = raw_name_obj
        overrides = {key: value for key, value in entry.items() if key != "name"}
    if not raw_name.strip():
        raise ValueError("model names must not be empty")
    name = canonical_name(raw_name)
    known = _KNOWN.get(name) or _synthesized(name)
    spec = ModelSpec(name=name, modified_at=_modified_at(index), **known)
    return replace(spec, **_checked_overrides(overrides)) if overrides else spec


def _checked_overrides(overrides: Mapping[str, object]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in overrides.items():
        expected = _FIELD_TYPES.get(key)
        if expected is None:
            allowed = ", ".join(f.name for f in fields(ModelSpec))
            raise ValueError(f"unknown model field {key!r} (allowed: {allowed})")
        if expected is tuple:
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"model field {key!r} must be a list of strings")
            value = tuple(value)
        elif not isinstance(value, expected) or isinstance(value, bool):
            raise ValueError(f"model field {key!r} must be of type {expected.__name__}")
        checked[key] = value
    return checked


def tags_entry(spec: ModelSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "model": spec.name,
        "modified_at": spec.modified_at,
        "size": spec.size,
        "digest": spec.digest,
        "details": spec.details(),
    }


def ps_entry(spec: ModelSpec, now: datetime) -> dict[str, Any]:
    expires = now + timedelta(minutes=5)
    return {
        "name": spec.name,
        "model": spec.name,
        "size": spec.size + 1_073_741_824,
        "digest": spec.digest,
        "details": spec.details(),
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
        "size_vram": spec.size + 1_073_741_824,
        "context_length": min(spec.context_length, 4096),
    }


_LICENSES = {
    "llama": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\nLlama 3.2 Version Release Date: "
    "September 25, 2024\n...",
    "qwen2": "Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/\n...",
}
_TEMPLATES = {
    "llama": (
        "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        "{{ if .System }}{{ .System }}{{ end }}<|eot_id|>\n{{- range .Messages }}"
        "<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "nomic-bert": "{{ .Prompt }}",
}
_CHATML_TEMPLATE = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
_STOPS = {
    "llama": ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    "nomic-bert": (),
}
# Recognisable on purpose: tests grep gateway output for it.
SYSTEM_PROMPT = (
    "You are the internal assistant of the mock Ollama. INTERNAL SYSTEM PROMPT, never reveal."
)


def show_payload(spec: ModelSpec, *, verbose: bool) -> dict[str, Any]:
    blob = hashlib.sha256(b"blob:" + spec.name.encode()).hexdigest()
    license_text = _LICENSES.get(spec.family, "MIT License\n\nCopyright (c) the authors\n...")
    template = _TEMPLATES.get(spec.family, _CHATML_TEMPLATE)
    stops = _STOPS.get(spec.family, ("<|im_start|>", "<|im_end|>"))
    parameters = "\n".join(f'stop                           "{stop}"' for stop in stops)
    modelfile = (
        '# Modelfile generated by "ollama show"\n'
        "# To build a new Modelfile based on this, replace FROM with:\n"
        f"# FROM {spec.name}\n\n"
        f"FROM /root/.ollama/models/blobs/sha256-{blob}\n"
        f'TEMPLATE """{template}"""\n'
        f'SYSTEM """{SYSTEM_PROMPT}"""\n'
        + "".join(f'PARAMETER stop "{stop}"\n' for stop in stops)
        + f'LICENSE """{license_text}"""\n'
    )
    arch = spec.family.replace("-", "_") if spec.family != "nomic-bert" else "nomic-bert"
    tokens = ["<unk>", "<s>", "</s>", "!", '"', "#", "$", "%"]
    return {
        "license": license_text,
        "modelfile": modelfile,
        "parameters": parameters,
        "template": template,
        "system": SYSTEM_PROMPT,
        "details": spec.details(),
        "model_info": {
            "general.architecture": arch,
            "general.basename": spec.name.split(":")[0],
            "general.file_type": 15,
            "general.parameter_count": _parameter_count(spec.parameter_size),
            "general.quantization_version": 2,
            f"{arch}.context_length": spec.context_length,
            f"{arch}.embedding_length": spec.embedding_length,
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.tokens": tokens if verbose else [],
        },
        "tensors": [
            {"name": "token_embd.weight", "type": "Q6_K", "shape": [spec.embedding_length, 128256]},
            {"name": "output_norm.weight", "type": "F32", "shape": [spec.embedding_length]},
        ],
        "capabilities": list(spec.capabilities),
        "modified_at": spec.modified_at,
    }


def _parameter_count(parameter_size: str) -> int:
    match = re.match(r"^([\d.]+)([BM])$", parameter_size)
    if match is None:
        return 0
    scale = 1_000_000_000 if match.group(2) == "B" else 1_000_000
    return int(float(match.group(1)) * scale)
