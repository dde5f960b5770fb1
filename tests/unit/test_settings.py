import pytest

from neuronetz_gateway.settings import ConfigError, load_settings


def test_defaults_are_embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    s = load_settings(_env_file=None)
    assert s.database_url == "sqlite+aiosqlite:///./neuronetz.db"
    assert s.redis_url is None and not s.scale_out
    assert [b.name for b in s.effective_backends()] == ["default"]


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"GATEWAY_BIND_PORT": "seventy"}, "GATEWAY_BIND_PORT"),
        ({"GATEWAY_BIND_PORT": "70000"}, "GATEWAY_BIND_PORT"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"GATEWAY_TRUSTED_PROXIES": "not-an-ip"}, "GATEWAY_TRUSTED_PROXIES"),
        ({"OLLAMA_BACKENDS": "[{]"}, "OLLAMA_BACKENDS"),
        ({"OLLAMA_BACKENDS": '[{"name":"a b","url":"http://x"}]'}, "OLLAMA_BACKENDS"),
        ({"GATEWAY_LOG_FORMAT": "xml"}, "GATEWAY_LOG_FORMAT"),
        ({"MAX_NUM_PREDICT": "0"}, "MAX_NUM_PREDICT"),
        ({"GATEWAY_WORKERS": "4"}, "GATEWAY_WORKERS"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    assert name in str(err.value)


def test_backends_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "OLLAMA_BACKENDS",
        '[{"name":"a","url":"http://a:11434","token":"sekret"},{"name":"b","url":"http://b:1"}]',
    )
    s = load_settings(_env_file=None)
    a, b = s.effective_backends()
    assert a.auth_headers() == {"Authorization": "Bearer sekret"}
    assert "sekret" not in repr(s) and "sekret" not in repr(a)
    assert b.auth_headers() == {}


def test_empty_values_mean_unlimited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_RPM", "")
    assert load_settings(_env_file=None).default_rpm is None
