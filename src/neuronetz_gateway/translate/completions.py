"""``POST /v1/completions`` → ``POST /api/generate`` request translation (reference §3.4).

=================  ======================================================================
Field              Treatment
=================  ======================================================================
model              **mapped**; required, a non-empty string
prompt             **mapped**: a string, or an array of exactly one string. Token arrays
                   and several prompts are **refused** (one completion per request;
                   Ollama takes text only)
suffix             **mapped** (needs a model with the ``insert`` capability)
max_tokens         **mapped** to ``options.num_predict`` (1..cap); absent → the cap
temperature,       as for chat: default 1.0, ranges 0..2 / 0..1. Ollama turns ``top_p: 0``
top_p              into 1.0 and always sends zero penalties (Go zero values); we treat
                   both endpoints alike and honour the value given
seed, penalties    **mapped** to options when given
stop               **mapped**; a non-string item is refused, as Ollama does
logprobs           **mapped**: an int n in 0..20 asks for token logprobs with n
                   alternatives, and they are returned (Ollama requests them but drops them)
stream,            as for chat; no all-zero ``usage`` on every chunk as Ollama sends, only
stream_options     the final usage chunk
n, best_of         1 accepted; > 1 **refused**
echo               **refused** when true: the prompt is not echoed
logit_bias         **refused** unless empty
user               ignored: the gateway identifies the caller by API key
any other field    ignored
=================  ======================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.translate.fields import read_bool, read_int, read_model, read_str
from neuronetz_gateway.translate.generation import (
    NativeRequest,
    read_num_predict,
    read_stream,
    refuse_logit_bias,
    refuse_multiple_choices,
    sampling_options,
)
from neuronetz_gateway.translate.native import NativeGenerateBody


def completion_request_to_native(
    body: Mapping[str, Any], *, max_num_predict: int
) -> NativeRequest[NativeGenerateBody]:
    """Translate a ``/v1/completions`` body; raises ``BadRequest`` naming the field."""
    model = read_model(body)
    refuse_multiple_choices(body)
    refuse_logit_bias(body)
    best_of = read_int(body, "best_of", minimum=1)
    if best_of is not None and best_of > 1:
        raise BadRequest("'best_of' > 1 is not supported", param="best_of")
    if read_bool(body, "echo"):
        raise BadRequest("'echo' is not supported", param="echo")
    num_predict = read_num_predict(body, ("max_tokens",), max_num_predict=max_num_predict)
    stream, include_usage = read_stream(body)
    native: NativeGenerateBody = {
        "model": model,
        "prompt": _prompt(body.get("prompt")),
        "stream": stream,
        "options": sampling_options(body, num_predict=num_predict),
    }
    suffix = read_str(body, "suffix")
    if suffix:
        native["suffix"] = suffix
    logprobs = read_int(body, "logprobs", minimum=0, maximum=20)
    if logprobs is not None:
        native["logprobs"] = True
        native["top_logprobs"] = logprobs
    return NativeRequest(native, model, stream, include_usage, num_predict)


def _prompt(prompt: object) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if isinstance(prompt, list) and prompt and all(isinstance(item, str) for item in prompt):
        raise BadRequest("'prompt' must be a single prompt; send one per request", param="prompt")
    raise BadRequest("'prompt' must be a string (token arrays are not supported)", param="prompt")
