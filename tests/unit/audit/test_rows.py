"""The SQLite form of an audit row: every column in order, in SQLAlchemy's stored forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from neuronetz_gateway.audit.writer import _RECORD_FIELDS, AuditRow, _sqlite_params, _sqlite_row


def _row(**changes: object) -> AuditRow:
    values: dict[str, object] = {
        "request_id": "rid",
        "started_at": datetime(2026, 11, 26, 15, 0, 0, 0, tzinfo=UTC),
        "finished_at": datetime(2026, 11, 26, 16, 30, 0, 5, tzinfo=timezone(timedelta(hours=1))),
        "tenant_id": 3,
        "key_id": 4,
        "key_prefix": "nz_abc",
        "client_ip": "10.0.0.1",
        "surface": "native",
        "method": "POST",
        "path": "/api/chat",
        "model": "m",
        "backend": "b",
        "status": 200,
        "tokens_in": 11,
        "tokens_out": 12,
        "latency_ms": 1.5,
        "ttfb_ms": None,
        "error_class": "e",
        "attempts": 2,
        "streamed": True,
    }
    values.update(changes)
    return AuditRow(**values)  # type: ignore[arg-type]


def test_values_follow_the_column_order() -> None:
    row = _row()
    expected = dict(row.record())
    expected["started_at"] = "2026-11-26 15:00:00.000000"  # microseconds always written
    expected["finished_at"] = "2026-11-26 15:30:00.000005"  # converted to UTC
    expected["streamed"] = 1
    assert _sqlite_row(row) == tuple(expected[name] for name in _RECORD_FIELDS)


def test_params_of_a_batch_are_the_rows_one_after_another() -> None:
    rows = [_row(request_id="a", streamed=False), _row(request_id="b")]
    params = _sqlite_params(rows)
    assert len(params) == 2 * len(_RECORD_FIELDS)
    assert params[0] == "a" and params[len(_RECORD_FIELDS)] == "b"
    assert params[len(_RECORD_FIELDS) - 1] == 0
