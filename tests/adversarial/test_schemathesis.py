"""Schemathesis against the gateway's own ``/openapi.json``, with and without a key.

The document declares request bodies, bearer security and every error status
(``api/openapi.py``). Positive and negative examples per operation; zero 5xx other than
the documented 502/503/504 may occur, and every response must conform to the document:
status, content type, schema."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.gateway import RunningGateway

EXAMPLES = 20


def _run(
    gw: RunningGateway, document: dict[str, Any], headers: dict[str, str], *, conformance: bool
) -> tuple[Counter[int], list[str]]:
    schema = schemathesis.openapi.from_dict(document)
    seen: Counter[int] = Counter()
    problems: list[str] = []
    checks: list[Any] = [not_a_server_error]
    if conformance:
        checks += [status_code_conformance, content_type_conformance,
                   response_schema_conformance]  # fmt: skip
    for result in schema.get_all_operations():
        operation: Any = result.ok()  # type: ignore[union-attr]
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=strategy)
        def probe(case: Any) -> None:
            response = case.call(base_url=gw.url, headers=headers, timeout=20)
            seen[response.status_code] += 1
            if response.status_code >= 500 and response.status_code not in (502, 503, 504):
                problems.append(f"{case.operation.label}: {response.status_code}")
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except (Exception, BaseExceptionGroup) as exc:  # collected; the test fails at the end
                problems.append(f"{case.operation.label}: {type(exc).__name__}: {str(exc)[:300]}")

        probe()
    return seen, problems


@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no key"])
def test_schemathesis_finds_no_server_error(served: RunningGateway, with_key: bool) -> None:
    key = served.admin.tenant_and_key("acme")
    headers = {"Authorization": f"Bearer {key}"} if with_key else {}
    document = httpx.get(served.url + "/openapi.json").json()
    described, problems = _run(served, document, headers, conformance=True)
    print(
        f"[adversarial] schemathesis ({'key' if with_key else 'no key'}): "
        f"{sum(described.values())} calls {dict(described)}; problems={len(problems)}"
    )
    assert problems == [], "\n".join(problems[:20])
