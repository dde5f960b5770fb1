"""The wrk script writer and output reader of the benchmark harness."""

from __future__ import annotations

import pytest
from bench.processes import BenchError
from bench.wrk import MARKER, lua_script, lua_string, parse_output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", '"abc"'),
        ('{"a":"b"}', '"{\\"a\\":\\"b\\"}"'),
        ("a\\b", '"a\\\\b"'),
        ("line\n", '"line\\010"'),
        ("é", '"\\195\\169"'),
    ],
)
def test_lua_string_escapes_quotes_backslashes_and_bytes(text: str, expected: str) -> None:
    assert lua_string(text) == expected


def test_lua_script_posts_the_body_with_headers() -> None:
    script = lua_script('{"x":1}', {"Authorization": "Bearer nz_x"})
    assert 'wrk.method = "POST"' in script
    assert 'wrk.body = "{\\"x\\":1}"' in script
    assert 'wrk.headers["Authorization"] = "Bearer nz_x"' in script
    assert "delay = function" not in script
    assert "done = function" in script


def test_lua_script_paces_with_the_delay_hook() -> None:
    assert "delay = function() return 12 end" in lua_script("{}", {}, delay_ms=12)


SUMMARY = (
    MARKER + '{"requests":1000,"duration_us":2000000,"bytes":5,"connect":0,"read":1,'
    '"write":0,"status":3,"timeout":0,"p50_us":150.0,"p99_us":900.5,"mean_us":200.0,'
    '"max_us":5000.0,"first_error_status":503,"first_error_body":" error : saturated "}'
)


def test_parse_output_reads_the_summary_line() -> None:
    result = parse_output("Running 2s test\n" + SUMMARY + "\nRequests/sec: 500\n")
    assert result.requests == 1000
    assert result.rps == pytest.approx(500)
    assert result.ok_rps == pytest.approx(498.5)
    assert result.p50_ms == pytest.approx(0.15)
    assert result.p99_ms == pytest.approx(0.9005)
    assert result.error_count == 4
    assert result.first_error == "503:  error : saturated"


def test_parse_output_without_summary_is_an_error() -> None:
    with pytest.raises(BenchError, match="no summary"):
        parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")
