import pytest

from neuronetz_gateway.auth.client_ip import client_ip
from neuronetz_gateway.auth.keys import (
    KEY_LENGTH,
    bearer_token,
    cache_digest,
    generate_key,
    is_well_formed,
    key_prefix,
)
from neuronetz_gateway.settings import load_settings


def test_generated_keys_are_well_formed_and_unique() -> None:
    keys = {generate_key() for _ in range(500)}
    assert len(keys) == 500
    for key in keys:
        assert len(key) == KEY_LENGTH == 44 and key.startswith("nz_") and is_well_formed(key)
        assert len(key_prefix(key)) == 12


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic abc", "Bearer nz_short", "Bearer " + "nz_" + "!" * 41,
     "Bearer " + "x" * 44, "Bearer nz_" + "a" * 40 + "\x00", "Bearer " + "nz_" + "a" * 10_000],
)  # fmt: skip
def test_bearer_token_refuses_malformed(header: str | None) -> None:
    assert bearer_token(header) is None


def test_bearer_token_accepts_case_insensitive_scheme() -> None:
    key = generate_key()
    assert bearer_token(f"bearer {key}") == key
    assert bearer_token(f"Bearer {key}") == key


def test_cache_digest_is_not_the_key() -> None:
    key = generate_key()
    assert key.encode() not in cache_digest(key) and len(cache_digest(key)) == 32


TRUSTED = load_settings(gateway_trusted_proxies="10.0.0.1,192.168.0.0/16").gateway_trusted_proxies


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("1.2.3.4", "9.9.9.9", "1.2.3.4"),  # untrusted peer: header ignored
        ("10.0.0.1", "9.9.9.9", "9.9.9.9"),
        ("10.0.0.1", "5.5.5.5, 9.9.9.9", "9.9.9.9"),  # the right-most untrusted hop
        ("10.0.0.1", "9.9.9.9, 192.168.1.1", "9.9.9.9"),
        ("10.0.0.1", "garbage", "10.0.0.1"),
        ("10.0.0.1", None, "10.0.0.1"),
    ],
)
def test_client_ip(peer: str, xff: str | None, expected: str) -> None:
    assert client_ip(peer, xff, TRUSTED) == expected
