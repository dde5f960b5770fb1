"""OpenAI ⇄ Ollama translation: pure functions and small stream translators, no I/O.

Request side (untrusted JSON dict in, native body out, ``BadRequest`` naming the field):
``chat`` (with the field-by-field table), ``chat_messages``, ``completions``,
``embeddings``. Response side (native dicts in, OpenAI shapes out): ``chat_response``,
``completions_response``, ``embeddings``, ``models``; ``sse`` frames the streams and
``error_body`` shapes errors for the ``openai`` SDK.
"""

from neuronetz_gateway.translate.chat import chat_request_to_native
from neuronetz_gateway.translate.chat_response import (
    ChatStreamTranslator,
    chat_response_from_native,
)
from neuronetz_gateway.translate.completions import completion_request_to_native
from neuronetz_gateway.translate.completions_response import (
    CompletionStreamTranslator,
    completion_response_from_native,
)
from neuronetz_gateway.translate.embeddings import (
    embeddings_request_to_native,
    embeddings_response_from_native,
)
from neuronetz_gateway.translate.error_body import openai_error_body
from neuronetz_gateway.translate.generation import NativeRequest
from neuronetz_gateway.translate.models import model_from_tag, models_list_from_tags
from neuronetz_gateway.translate.usage import TokenUsage

__all__ = [
    "ChatStreamTranslator",
    "CompletionStreamTranslator",
    "NativeRequest",
    "TokenUsage",
    "chat_request_to_native",
    "chat_response_from_native",
    "completion_request_to_native",
    "completion_response_from_native",
    "embeddings_request_to_native",
    "embeddings_response_from_native",
    "model_from_tag",
    "models_list_from_tags",
    "openai_error_body",
]
