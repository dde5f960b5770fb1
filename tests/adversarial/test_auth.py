"""Auth beyond ``tests/integration/native/test_auth.py``: a timing oracle between an
unknown prefix and a wrong secret, and header shapes only a raw socket can send."""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable

import httpx

from neuronetz_gateway.auth.hashing import Argon2Params, KeyHasher
from neuronetz_gateway.auth.keys import generate_key
from tests.adversarial.conftest import MakeServed
from tests.adversarial.support import raw_exchange, statuses
from tests.fixtures.gateway import RunningGateway

# The production defaults (3 passes, 64 MiB, 4 lanes) scaled down in memory only, so one
# verification still costs several milliseconds, far above the noise of a loopback call.
TIMING_ARGON2 = Argon2Params(time_cost=3, memory_cost_kib=8192, parallelism=4)
SAMPLES = 30


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation with tie
    correction): how likely samples this far apart are if both come from one distribution."""
    pooled = sorted((v, i) for i, v in enumerate(a + b))
    ranks = [0.0] * len(pooled)
    i = 0
    ties = 0.0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[pooled[k][1]] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    n1, n2 = len(a), len(b)
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    if sigma == 0:
        return 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / sigma
    return math.erfc(max(z, 0.0) / math.sqrt(2))


def test_mann_whitney_sanity() -> None:
    rng = random.Random(7)
    same = [rng.gauss(10, 1) for _ in range(30)], [rng.gauss(10, 1) for _ in range(30)]
    shifted = [rng.gauss(10, 1) for _ in range(30)], [rng.gauss(12, 1) for _ in range(30)]
    assert mann_whitney_p(*same) > 0.05
    assert mann_whitney_p(*shifted) < 1e-6


def _sample(gw: RunningGateway, headers: dict[str, Callable[[], str]]) -> dict[str, list[float]]:
    """Interleave the kinds in a shuffled order, so load from elsewhere hits all alike."""
    order = [name for name in headers for _ in range(SAMPLES)]
    random.Random(1).shuffle(order)
    out: dict[str, list[float]] = {name: [] for name in headers}
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        client.get("/healthz")  # connection up before the clock starts
        for name in order:
            value = headers[name]()
            started = time.perf_counter()
            resp = client.get("/api/tags", headers={"Authorization": value})
            out[name].append(time.perf_counter() - started)
            assert resp.status_code == 401
    return out


def test_unknown_prefix_and_wrong_secret_take_the_same_time(make_served: MakeServed) -> None:
    gw = make_served(
        argon2_time_cost=TIMING_ARGON2.time_cost,
        argon2_memory_cost_kib=TIMING_ARGON2.memory_cost_kib,
        argon2_parallelism=TIMING_ARGON2.parallelism,
    )
    gw.admin.hasher = KeyHasher(TIMING_ARGON2, max_parallel=2)  # keys hashed as the gateway would
    gw.admin.tenant("acme")
    key = gw.admin.key("acme")

    def wrong_secret() -> str:
        return f"Bearer {key[:12]}{generate_key()[12:]}"

    times = _sample(
        gw,
        {
            "unknown prefix": lambda: f"Bearer {generate_key()}",
            "wrong secret": wrong_secret,
            "malformed": lambda: "Bearer nz_" + "x" * 8,  # control: no Argon2 at all
        },
    )
    unknown, wrong, malformed = times["unknown prefix"], times["wrong secret"], times["malformed"]
    p_same = mann_whitney_p(unknown, wrong)
    p_control = mann_whitney_p(unknown, malformed)
    med_u, med_w, med_m = (statistics.median(t) * 1000 for t in (unknown, wrong, malformed))
    print(
        f"[adversarial] auth/timing: {SAMPLES} samples each; median unknown={med_u:.2f} ms "
        f"wrong={med_w:.2f} ms (p={p_same:.3f}); control malformed={med_m:.2f} ms "
        f"(p={p_control:.1e})"
    )
    # The test can see a difference: a malformed key skips Argon2 and is told apart.
    assert p_control < 1e-3 and med_u > med_m + 2
    # ...and sees none between the two failures that would reveal a prefix's existence.
    assert p_same > 1e-3
    assert abs(med_u - med_w) < max(0.15 * med_u, 1.0)


def _raw_get(gw: RunningGateway, header_block: bytes) -> list[int]:
    payload = b"GET /api/tags HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header_block + b"\r\n"
    return statuses(raw_exchange(gw.url, payload))


def test_header_shapes_only_a_raw_socket_can_send(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme").encode()
    shapes = {
        b"NUL inside": b"Authorization: Bearer " + key[:20] + b"\x00" + key[20:] + b"\r\n",
        b"NUL after": b"Authorization: Bearer " + key + b"\x00\r\n",
        b"bare CR": b"Authorization: Bearer " + key + b"\rX: y\r\n",
        b"obs-fold": b"Authorization: Bearer\r\n " + key + b"\r\n",
        b"latin-1 byte": b"Authorization: Bearer " + key + b"\xe9\r\n",
        b"10 KB key": b"Authorization: Bearer " + key + b"a" * 10_000 + b"\r\n",
        b"key in a second header": b"Authorization: Bearer\r\nX-Api-Key: " + key + b"\r\n",
        b"key as basic auth": b"Authorization: Basic " + key + b"\r\n",
        b"key as cookie": b"Cookie: token=" + key + b"\r\n",
        b"key in proxy auth": b"Proxy-Authorization: Bearer " + key + b"\r\n",
        b"tab separator": b"Authorization: Bearer\t" + key + b"\r\n",
        b"key, comma, key": b"Authorization: Bearer " + key + b", Bearer " + key + b"\r\n",
    }
    for name, block in shapes.items():
        assert _raw_get(gateway, block) in ([400], [401]), name
    ok = b"Authorization: Bearer " + key + b"\r\n"
    assert _raw_get(gateway, ok) == [200]
    assert _raw_get(gateway, ok.replace(b"Bearer", b"bearer")) == [200]  # schemes ignore case
    print(f"[adversarial] auth/raw header shapes: cases={len(shapes)} all 400/401")


def test_two_authorization_headers_are_refused(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme").encode()
    good = b"Authorization: Bearer " + key + b"\r\n"
    junk = b"Authorization: Bearer nz_junk\r\n"
    assert _raw_get(gateway, junk + good) == [401]
    assert _raw_get(gateway, good + good) == [401]
    assert _raw_get(gateway, good + junk) == [401]
