"""Configuration, read from the environment (and a `.env` file) by the composition roots only.

Every field maps to the environment variable of the same name in upper case
(``gateway_bind_port`` ↔ ``GATEWAY_BIND_PORT``). ``load_settings`` turns a validation
failure into one ``ConfigError`` whose message names each offending variable.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

DEFAULT_SQLITE_PATH = "./neuronetz.db"
_BACKEND_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """Invalid configuration: the process must not start."""


class BackendSpec(BaseModel):
    """One Ollama backend, as written in ``OLLAMA_BACKENDS``."""

    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(description="Unique name, used in logs, metrics and the CLI.")
    url: AnyHttpUrl = Field(description="Base URL of the Ollama server.")
    token: SecretStr | None = Field(default=None, description="Sent as `<scheme> <token>`.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra upstream headers.")
    scheme: str = Field(default="Bearer", description="Authorization scheme for `token`.")
    parallel: int | None = Field(
        default=None, ge=1, le=1024, description="Concurrent requests this backend accepts."
    )

    def __repr_args__(self) -> Any:
        # Header values can be credentials too: never show them (nor the token).
        yield "name", self.name
        yield "url", str(self.url)
        yield "token", "***" if self.token is not None else None
        yield "headers", {k: "***" for k in self.headers}
        yield "scheme", self.scheme
        yield "parallel", self.parallel

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _BACKEND_NAME.match(value):
            raise ValueError("backend names use letters, digits, '.', '_' and '-' (max 63)")
        return value

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if not key or any(c in key + val for c in "\r\n\0"):
                raise ValueError("header names and values must not contain CR, LF or NUL")
            if any(c in key for c in ": \t"):
                raise ValueError(f"header name {key!r} must not contain ':' or whitespace")
            if key.lower() in {"host", "content-length", "transfer-encoding", "connection"}:
                raise ValueError(f"header {key!r} is managed by the gateway")
        return value

    @property
    def base_url(self) -> str:
        return str(self.url).rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """The headers the gateway sends to this backend (token unwrapped here only)."""
        out = dict(self.headers)
        if self.token is not None and self.token.get_secret_value():
            out["Authorization"] = f"{self.scheme} {self.token.get_secret_value()}".strip()
        return out


class Settings(BaseSettings):
    """All of the gateway's configuration. Defaults suit a local, embedded-mode run."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # --- service -------------------------------------------------------------------------
    gateway_bind_host: str = Field("127.0.0.1", description="Address the server listens on.")
    gateway_bind_port: int = Field(8080, ge=1, le=65535, description="Port the server listens on.")
    gateway_workers: int = Field(
        1, ge=1, le=64, description="Worker processes; more than one requires REDIS_URL."
    )
    gateway_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Minimum level of log lines."
    )
    gateway_log_format: Literal["json", "console"] = Field(
        "console", description="`json` for production log shipping, `console` for people."
    )
    gateway_request_id_header: str = Field(
        "X-Request-ID", description="Response header carrying the request id."
    )
    gateway_trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(
        default_factory=lambda: [ipaddress.ip_network("127.0.0.1/32")],
        description=(
            "Comma-separated IPs or CIDRs whose `X-Forwarded-For` is believed "
            "(empty: trust nobody)."
        ),
    )

    # --- upstream ------------------------------------------------------------------------
    ollama_base_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:11434"),
        description="The single backend used when OLLAMA_BACKENDS is empty.",
    )
    ollama_auth_token: SecretStr | None = Field(
        None, description="Bearer token sent to OLLAMA_BASE_URL (never logged)."
    )
    ollama_backends: list[BackendSpec] = Field(
        default_factory=list,
        description="JSON list of backends `{name, url, token?, headers?, scheme?, parallel?}`.",
    )
    ollama_connect_timeout_s: float = Field(5.0, gt=0, le=120, description="Upstream connect.")
    ollama_read_timeout_s: float = Field(
        600.0, gt=0, le=86400, description="Longest pause between upstream bytes."
    )
    ollama_max_connections: int = Field(
        64, ge=1, le=4096, description="Connection pool size per backend."
    )
    ollama_default_parallel: int = Field(
        4, ge=1, le=1024, description="Default capacity of a backend (concurrent requests)."
    )
    breaker_failure_threshold: int = Field(
        5, ge=1, le=1000, description="Consecutive failures that open a backend's breaker."
    )
    breaker_cooldown_s: float = Field(
        10.0, gt=0, le=3600, description="Seconds an open breaker waits before a probe."
    )
    routing_policy: Literal["priority", "warm"] = Field(
        "priority", description="How a backend is chosen among those hosting the model."
    )

    # --- model discovery -----------------------------------------------------------------
    model_discovery_refresh_s: float = Field(
        60.0, ge=0.2, le=86400, description="How often each backend's `/api/tags` is polled."
    )
    model_discovery_cache_ttl_s: float = Field(
        120.0,
        ge=0.2,
        le=86400,
        description="How long a backend's model list is trusted without a successful poll.",
    )

    # --- database ------------------------------------------------------------------------
    database_url: str = Field(
        f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy URL: `sqlite+aiosqlite:///path` or `postgresql+asyncpg://…`.",
    )
    database_pool_size: int = Field(10, ge=1, le=1000, description="PostgreSQL pool size.")
    database_pool_overflow: int = Field(20, ge=0, le=1000, description="PostgreSQL overflow.")

    # --- redis ---------------------------------------------------------------------------
    redis_url: str | None = Field(
        None, description="Redis for shared counters (scale-out mode); empty: in-process."
    )
    redis_key_cache_ttl_s: float = Field(
        60.0, ge=0, le=86400, description="How long a verified key is trusted without Argon2."
    )
    redis_timeout_s: float = Field(
        0.5,
        gt=0,
        le=30,
        description="Per-command Redis timeout; past it the gateway fails closed.",
    )

    # --- limits --------------------------------------------------------------------------
    default_rpm: int | None = Field(60, ge=0, description="Requests per minute (empty: none).")
    default_tpm: int | None = Field(100_000, ge=0, description="Tokens per minute.")
    default_concurrent: int | None = Field(8, ge=0, description="Requests in flight.")
    default_daily_budget: int | None = Field(None, ge=0, description="Tokens per UTC day.")
    default_monthly_budget: int | None = Field(None, ge=0, description="Tokens per UTC month.")
    default_total_budget: int | None = Field(None, ge=0, description="Tokens, all time.")
    max_request_body_bytes: int = Field(
        262_144, ge=1024, le=64 * 1024 * 1024, description="Largest accepted request body."
    )
    max_num_predict: int = Field(
        4096, ge=1, le=1_000_000, description="Cap on completion tokens per request."
    )
    keep_alive_min_s: int = Field(
        0, ge=0, description="Lowest `keep_alive` a tenant may ask for (seconds)."
    )
    keep_alive_max_s: int = Field(
        1800, ge=0, description="Highest `keep_alive` a tenant may ask for (seconds)."
    )
    queue_wait_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="How long a request may wait for a backend slot."
    )
    queue_max_depth_per_tenant: int = Field(
        100,
        ge=0,
        le=100_000,
        description="Requests a tenant may have waiting for a backend slot; more get 429.",
    )
    scheduling_policy: Literal["fair", "fifo"] = Field(
        "fair",
        description=(
            "Order in which waiting requests get backend slots: `fair` (weighted round "
            "robin over tenants) or `fifo` (arrival order, as Ollama itself queues)."
        ),
    )

    # --- security ------------------------------------------------------------------------
    argon2_time_cost: int = Field(3, ge=1, le=100, description="Argon2id iterations.")
    argon2_memory_cost_kib: int = Field(
        65_536, ge=8, le=4 * 1024 * 1024, description="Argon2id memory (KiB)."
    )
    argon2_parallelism: int = Field(4, ge=1, le=64, description="Argon2id lanes.")
    auth_failure_rate_limit_per_ip_per_min: int = Field(
        20, ge=1, description="Failed authentications per client IP per minute before 429."
    )

    # --- audit ---------------------------------------------------------------------------
    audit_buffer_size: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description=(
            "Audit rows queued before requests get 503 (10,000 is a few seconds of peak "
            "traffic, about 10 MB)."
        ),
    )
    prompt_log_default_retention_days: int = Field(
        30, ge=1, le=3650, description="Prompt-log retention when a key sets none."
    )
    audit_log_default_retention_days: int = Field(
        365,
        ge=32,
        le=36500,
        description="Days audit rows are kept (at least 32: monthly budgets rebuild from them).",
    )

    # --- features ------------------------------------------------------------------------
    playground_enabled: bool = Field(False, description="Serve the browser playground.")

    @field_validator("gateway_trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
            try:
                return [ipaddress.ip_network(v, strict=False) for v in items]
            except ValueError as exc:
                raise ValueError(f"not an IP address or CIDR: {exc}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///PATH or postgresql+asyncpg://…")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use redis://, rediss:// or unix://")
        return value

    @field_validator(
        "default_rpm",
        "default_tpm",
        "default_concurrent",
        "default_daily_budget",
        "default_monthly_budget",
        "default_total_budget",
        "ollama_auth_token",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        names = [b.name for b in self.ollama_backends]
        if len(names) != len(set(names)):
            raise ValueError("OLLAMA_BACKENDS: backend names must be unique")
        if self.keep_alive_min_s > self.keep_alive_max_s:
            raise ValueError("KEEP_ALIVE_MIN_S must not exceed KEEP_ALIVE_MAX_S")
        if self.gateway_workers > 1 and not self.redis_url:
            raise ValueError(
                "GATEWAY_WORKERS: more than one worker needs REDIS_URL "
                "(in-process limits would multiply)"
            )
        return self

    @property
    def scale_out(self) -> bool:
        return self.redis_url is not None

    def effective_backends(self) -> list[BackendSpec]:
        """The configured backends, or one named `default` from the single-backend fields."""
        if self.ollama_backends:
            return list(self.ollama_backends)
        return [BackendSpec(name="default", url=self.ollama_base_url, token=self.ollama_auth_token)]


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        name = str(loc[0]).upper() if loc else "configuration"
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        lines.append(f"{name}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; raise ``ConfigError`` naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except SettingsError as exc:
        match = re.search(r'field "(\w+)"', str(exc))
        name = match.group(1).upper() if match else "configuration"
        raise ConfigError(f"invalid configuration:\n  {name}: not valid JSON") from None
