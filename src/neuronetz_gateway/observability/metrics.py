"""Prometheus metrics, on a registry of the app's own (no global state).

Labels are bounded sets only: surfaces, route templates, statuses, refusal reasons,
configured backends, tenant names and discovered model names — never key material,
never client input.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from neuronetz_gateway.upstream.router import UpstreamObserver
from neuronetz_gateway.upstream.scheduler import SchedulerObserver, WaitOutcome

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
)


class Metrics(UpstreamObserver, SchedulerObserver):
    def __init__(self) -> None:
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._refusal_children: dict[str, Any] = {}
        self._token_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._upstream_children: dict[tuple[str, str], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "nz_requests_total",
            "Requests by surface, route and status",
            ["surface", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "nz_request_duration_seconds",
            "Time to the last byte",
            ["surface", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "nz_time_to_first_byte_seconds",
            "Time to the first body byte",
            ["surface", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "nz_tokens_total",
            "Tokens by tenant, model and direction",
            ["tenant", "model", "direction"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "nz_upstream_attempt_seconds",
            "Upstream attempts until the response was ready",
            ["backend", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "nz_upstream_errors_total",
            "Failed upstream attempts",
            ["backend", "reason"],
            registry=r,
        )
        self.refusals = Counter(
            "nz_refusals_total", "Refused requests by reason", ["reason"], registry=r
        )
        self.audit_queue = Gauge(
            "nz_audit_queue_depth", "Audit rows waiting to be written", registry=r
        )
        self.discovery_age = Gauge(
            "nz_discovery_age_seconds", "Seconds since the last successful discovery", registry=r
        )
        self.breaker_state = Gauge(
            "nz_backend_breaker_open",
            "1 when a backend's circuit breaker is open",
            ["backend"],
            registry=r,
        )
        self.breaker_states = Gauge(
            "nz_backend_breaker_state",
            "1 for the current state of a backend's circuit breaker (closed, open, half_open)",
            ["backend", "state"],
            registry=r,
        )
        self.backend_in_flight = Gauge(
            "nz_backend_in_flight", "Requests in flight per backend", ["backend"], registry=r
        )
        # Scheduling (upstream.scheduler). In scale-out mode each gateway reports its own
        # share; sum over instances for the global picture.
        self.backend_slots_in_use = Gauge(
            "nz_backend_slots_in_use",
            "Backend slots held through this gateway",
            ["backend"],
            registry=r,
        )
        self.backend_capacity = Gauge(
            "nz_backend_capacity", "Concurrent requests a backend accepts", ["backend"], registry=r
        )
        self.queue_depth_gauge = Gauge(
            "nz_queue_depth", "Requests waiting for a backend slot", ["tenant"], registry=r
        )
        self.queue_wait_seconds = Histogram(
            "nz_queue_wait_seconds",
            "Time spent waiting for a backend slot, by how the wait ended",
            ["tenant", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def observe_request(
        self, surface: str, route: str, status: int, latency_s: float, ttfb_s: float | None
    ) -> None:
        """One finished request. The labelled children are cached: looking them up in
        prometheus_client takes a lock and builds tuples on every call."""
        key = (surface, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(surface, route, str(status)),
                self.latency.labels(surface, route),
                self.ttfb.labels(surface, route),
            )
            if len(self._request_children) < 10_000:  # bounded: routes x statuses
                self._request_children[key] = children
        counter, latency, ttfb = children
        counter.inc()
        latency.observe(latency_s)
        if ttfb_s is not None:
            ttfb.observe(ttfb_s)

    def refused(self, reason: str) -> None:
        child = self._refusal_children.get(reason)
        if child is None:
            child = self.refusals.labels(reason)
            if len(self._refusal_children) < 1_000:  # reasons are a fixed set of labels
                self._refusal_children[reason] = child
        child.inc()

    def count_tokens(self, tenant: str, model: str, tokens_in: int, tokens_out: int) -> None:
        key = (tenant, model)
        children = self._token_children.get(key)
        if children is None:
            children = (
                self.tokens.labels(tenant, model, "in"),
                self.tokens.labels(tenant, model, "out"),
            )
            if len(self._token_children) < 10_000:  # bounded: tenants x models
                self._token_children[key] = children
        children[0].inc(tokens_in)
        children[1].inc(tokens_out)

    def upstream_result(self, backend: str, outcome: str, seconds: float) -> None:
        key = (backend, "ok" if outcome == "ok" else "error")
        child = self._upstream_children.get(key)
        if child is None:
            child = self.upstream_latency.labels(*key)
            if len(self._upstream_children) < 1_000:  # backends x two outcomes
                self._upstream_children[key] = child
        child.observe(seconds)
        if outcome != "ok":
            self.upstream_errors.labels(backend, outcome).inc()

    def queue_depth(self, tenant: str, depth: int) -> None:
        self.queue_depth_gauge.labels(tenant).set(depth)

    def queue_wait(self, tenant: str, seconds: float, outcome: WaitOutcome) -> None:
        self.queue_wait_seconds.labels(tenant, outcome).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
