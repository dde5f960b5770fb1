from __future__ import annotations

import openai
import orjson
import pytest

from neuronetz_gateway.translate.error_body import openai_error_body

from .openai_sdk import sdk_client


@pytest.mark.parametrize(
    ("status", "type_", "code", "sdk_error"),
    [
        (400, "invalid_request_error", None, openai.BadRequestError),
        (401, "authentication_error", None, openai.AuthenticationError),
        (403, "permission_error", None, openai.PermissionDeniedError),
        (404, "not_found_error", None, openai.NotFoundError),
        (405, "invalid_request_error", None, openai.APIStatusError),
        (413, "invalid_request_error", "request_too_large", openai.APIStatusError),
        (429, "rate_limit_error", "rate_limit_exceeded", openai.RateLimitError),
        (500, "api_error", None, openai.InternalServerError),
        (502, "api_error", None, openai.InternalServerError),
        (503, "api_error", None, openai.InternalServerError),
        (504, "api_error", None, openai.InternalServerError),
    ],
)
def test_status_maps_to_type_and_sdk_exception(
    status: int, type_: str, code: str | None, sdk_error: type[openai.APIStatusError]
) -> None:
    body = openai_error_body(status, "nope", request_id="req-1")
    assert body == {
        "error": {"message": "nope", "type": type_, "param": None, "code": code},
        "request_id": "req-1",
    }
    client = sdk_client(status, orjson.dumps(body))
    with pytest.raises(sdk_error) as caught:
        client.models.list()
    assert type(caught.value) is sdk_error
    assert caught.value.status_code == status
    assert caught.value.body == body["error"]
    assert caught.value.type == type_
    assert caught.value.code == code


def test_overrides_and_param() -> None:
    body = openai_error_body(
        400, "'temperature' must be a number", param="temperature", code="invalid_type"
    )
    assert body["error"] == {
        "message": "'temperature' must be a number",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_type",
    }
    assert body["request_id"] is None
    client = sdk_client(400, orjson.dumps(body))
    with pytest.raises(openai.BadRequestError) as caught:
        client.models.list()
    assert caught.value.param == "temperature"


def test_type_override() -> None:
    assert openai_error_body(403, "x", type_="insufficient_quota")["error"]["type"] == (
        "insufficient_quota"
    )
