"""Authentication: one answer for every failure, cached verification, fast revocation."""

import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from neuronetz_gateway.auth.keys import generate_key
from neuronetz_gateway.db.models import RequestRecord
from tests.fixtures.gateway import RunningGateway

ROUTES = [("GET", "/api/tags"), ("POST", "/api/chat"), ("POST", "/api/generate"),
          ("POST", "/api/embed"), ("POST", "/api/embeddings"), ("POST", "/api/show"),
          ("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"),
          ("POST", "/v1/embeddings"), ("GET", "/v1/models/llama3.2")]  # fmt: skip


def _body_without_id(resp: httpx.Response) -> object:
    data = resp.json()
    data.pop("request_id")
    return data


def test_every_failure_gets_the_same_401(gateway: RunningGateway) -> None:
    admin = gateway.admin
    good = admin.tenant_and_key("acme")
    revoked = admin.key("acme", "revoked")
    admin.revoke(revoked[:12])
    expired = admin.key("acme", "expired", expires_in=timedelta(seconds=1))
    admin.tenant("off")
    disabled = admin.key("off", "k")
    admin.set_enabled("off", False)
    time.sleep(1.1)
    from neuronetz_gateway.db.models import ApiKey

    stored_hash = admin.query(
        lambda s: s.scalar(select(ApiKey.key_hash).where(ApiKey.prefix == good[:12]))
    )
    wrong_secret = good[:12] + ("A" if good[12] != "A" else "B") + good[13:]
    candidates = {
        "missing": None,
        "empty": "",
        "not bearer": f"Basic {good}",
        "malformed": "Bearer nz_short",
        "unknown": f"Bearer {generate_key()}",
        "wrong secret": f"Bearer {wrong_secret}",
        "revoked": f"Bearer {revoked}",
        "expired": f"Bearer {expired}",
        "disabled tenant": f"Bearer {disabled}",
        "hash as key": f"Bearer {stored_hash}",
        "prefix only": f"Bearer {good[:12]}",
        "huge": "Bearer nz_" + "a" * 10_000,
    }
    bodies = set()
    for name, header in candidates.items():
        for method, path in ROUTES:
            headers = {} if header is None else {"Authorization": header}
            resp = httpx.request(method, gateway.url + path, headers=headers, json={"model": "x"})
            assert resp.status_code == 401, (name, path)
            bodies.add((resp.headers["content-type"], repr(_body_without_id(resp))))
    assert len(bodies) == 2  # one native body, one OpenAI body
    ok = httpx.get(gateway.url + "/api/tags", headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200


def test_revocation_by_cli_reaches_running_gateway_within_a_second(
    gateway: RunningGateway,
) -> None:
    key = gateway.admin.tenant_and_key("acme")
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(gateway.url + "/api/tags", headers=headers).status_code == 200  # cached now
    gateway.admin.revoke(key[:12])
    deadline = time.monotonic() + 1.0
    while httpx.get(gateway.url + "/api/tags", headers=headers).status_code == 200:
        assert time.monotonic() < deadline, "revoked key still accepted after 1 s"
        time.sleep(0.05)


def count_verifications(gw: RunningGateway, *, delay_s: float = 0.0) -> list[int]:
    """Count the gateway's Argon2 verifications from now on: ``[count]``, kept current;
    each one takes ``delay_s`` longer."""
    hasher = gw.state.auth._hasher
    original = hasher.verify_sync
    calls = [0]

    def counting(key_hash: str, candidate: str) -> bool:
        calls[0] += 1
        time.sleep(delay_s)
        return original(key_hash, candidate)

    hasher.verify_sync = counting  # type: ignore[method-assign]
    return calls


def test_verified_keys_are_cached(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    headers = {"Authorization": f"Bearer {key}"}
    calls = count_verifications(gateway)
    time.sleep(0.7)  # let the revision watcher see the key's creation first
    for _ in range(20):
        assert httpx.get(gateway.url + "/api/tags", headers=headers).status_code == 200
    assert calls == [1]


def test_auth_failures_are_throttled_per_ip(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw: RunningGateway = make_gateway(auth_failure_rate_limit_per_ip_per_min=5)
    key = gw.admin.tenant_and_key("acme")
    statuses = [
        httpx.get(
            gw.url + "/api/tags", headers={"Authorization": f"Bearer {generate_key()}"}
        ).status_code
        for _ in range(8)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3
    throttled = httpx.get(gw.url + "/api/tags", headers={"Authorization": "Bearer bad"})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    # The real key still works only if it was cached before; a fresh one is throttled too.
    assert (
        httpx.get(gw.url + "/api/tags", headers={"Authorization": f"Bearer {key}"}).status_code
        == 429
    )


@pytest.mark.parametrize(
    "headers",
    [{"Host": "evil.example"}, {"X-Forwarded-Host": "evil"}, {"X-Original-URL": "/api/pull"},
     {"X-Rewrite-URL": "/api/pull"}, {"X-Forwarded-For": "127.0.0.1"}],
)  # fmt: skip
def test_header_tricks_change_nothing(gateway: RunningGateway, headers: dict[str, str]) -> None:
    key = gateway.admin.tenant_and_key("acme")
    resp = httpx.get(gateway.url + "/api/tags", headers={**headers, "Authorization": "Bearer x"})
    assert resp.status_code == 401
    resp = httpx.get(
        gateway.url + "/api/tags", headers={**headers, "Authorization": f"Bearer {key}"}
    )
    assert resp.status_code == 200
    assert httpx.get(gateway.url + "/metrics", headers=headers).status_code in (200, 404)


def test_concurrent_first_requests_verify_once(gateway: RunningGateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = gateway.admin.tenant_and_key("acme")
    hasher = gateway.state.auth._hasher
    calls = 0
    original = hasher.verify_sync

    def slow_counting(key_hash: str, candidate: str) -> bool:
        nonlocal calls
        calls += 1
        time.sleep(0.3)  # a production-cost verification
        return original(key_hash, candidate)

    hasher.verify_sync = slow_counting  # type: ignore[method-assign]
    time.sleep(0.7)  # the revision watcher has seen the key's creation
    headers = {"Authorization": f"Bearer {key}"}
    with ThreadPoolExecutor(16) as pool:
        statuses = list(
            pool.map(lambda _: httpx.get(gateway.url + "/api/tags", headers=headers).status_code,
                     range(16))
        )  # fmt: skip
    assert statuses == [200] * 16
    assert calls == 1  # one Argon2 run for sixteen concurrent misses


def test_a_burst_of_bad_keys_cannot_outrun_the_throttle(
    make_gateway,  # type: ignore[no-untyped-def]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    gw: RunningGateway = make_gateway(auth_failure_rate_limit_per_ip_per_min=5)
    # Hashing takes time: the burst arrives while it runs.
    calls = count_verifications(gw, delay_s=0.05)

    def bad(_: int) -> int:
        headers = {"Authorization": f"Bearer {generate_key()}"}
        return httpx.get(gw.url + "/api/tags", headers=headers).status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(bad, range(64)))
    # Verifications in progress count against the allowance: at most 5 Argon2 runs.
    assert statuses.count(401) <= 5
    assert statuses.count(429) >= 59
    assert calls[0] <= 5


def test_a_throttled_address_is_refused_at_the_edge_but_verified_keys_pass(
    make_gateway,  # type: ignore[no-untyped-def]
) -> None:
    gw: RunningGateway = make_gateway(auth_failure_rate_limit_per_ip_per_min=3)
    key = gw.admin.tenant_and_key("acme")
    good = {"Authorization": f"Bearer {key}"}
    assert httpx.get(gw.url + "/api/tags", headers=good).status_code == 200  # now cached
    bad = {"Authorization": f"Bearer {generate_key()}"}
    assert [httpx.get(gw.url + "/api/tags", headers=bad).status_code for _ in range(4)] == [
        401,
        401,
        401,
        429,
    ]
    checks = 0
    limits = gw.state.limits
    original = limits.check_auth_throttle

    async def counted(*args: object, **kwargs: object) -> float | None:
        nonlocal checks
        checks += 1
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    limits.check_auth_throttle = counted  # type: ignore[method-assign]
    for surface, path in (("native", "/api/chat"), ("openai", "/v1/chat/completions")):
        refused = httpx.post(gw.url + path, json={}, headers=bad)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        body = refused.json()
        if surface == "openai":
            assert body["error"]["message"] == "too many failed authentications"
        else:
            assert body["error"] == "too many failed authentications"
    assert checks == 0  # refused from the edge's copy: no store call, no body read
    # The key verified before the throttle still works from the same address.
    assert httpx.get(gw.url + "/api/tags", headers=good).status_code == 200
    gw.wait_audit_flushed()

    async def refused_rows(session: AsyncSession) -> list[str | None]:
        result = await session.scalars(
            select(RequestRecord.error_class).where(RequestRecord.status == 429)
        )
        return list(result.all())

    assert gw.admin.query(refused_rows) == ["auth_throttle"] * 3


def test_an_expired_cache_entry_is_revalidated_without_argon2(
    make_gateway,  # type: ignore[no-untyped-def]
) -> None:
    gw: RunningGateway = make_gateway(redis_key_cache_ttl_s=0.2)
    key = gw.admin.tenant_and_key("acme")
    headers = {"Authorization": f"Bearer {key}"}
    calls = count_verifications(gw)
    time.sleep(0.7)  # let the revision watcher see the key's creation first
    for _ in range(3):
        assert httpx.get(gw.url + "/api/tags", headers=headers).status_code == 200
        time.sleep(0.3)  # past the cache's TTL: the row is read again
    assert calls == [1]  # one Argon2 run: the proof holds while the stored hash is the same
    gw.admin.revoke(key[:12])
    time.sleep(0.7)
    assert httpx.get(gw.url + "/api/tags", headers=headers).status_code == 401
    # Another key of the same shape is still verified in full.
    other = f"{key[:12]}{'A' * (len(key) - 12)}"
    assert (
        httpx.get(gw.url + "/api/tags", headers={"Authorization": f"Bearer {other}"}).status_code
        == 401
    )
    assert calls == [2]
