"""REST pull (issue 7) against a local HTTP server on 127.0.0.1 serving pages shaped like Zendesk's
incremental ticket export (`tickets`, `after_cursor`, `end_of_stream`), with a page that fails once
(503), a rate limit (429 + Retry-After), a refused token (401), and incremental runs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from ingestion.paths import DataDir
from ingestion.rest_source import RestAuthError, RestSourceConfig, RestSourceError, pull, state_path

TOKEN = "s3cret"
ENDPOINT = "/api/v2/incremental/tickets/cursor.json"


def zendesk_ticket(
    i: int, ts: int, status: str = "open", priority: str | None = "normal", assignee: int = 1001
) -> dict[str, Any]:
    iso = f"2024-03-0{1 + (ts - 1_709_251_200) // 86_400}T{(ts % 86_400) // 3600:02d}:00:00Z"
    return {
        "id": i,
        "url": f"https://example.zendesk.com/api/v2/tickets/{i}.json",
        "created_at": iso,
        "updated_at": iso,
        "generated_timestamp": ts,
        "status": status,
        "priority": priority,
        "assignee_id": assignee,
        "requester_id": 500 + i,
        "via": {"channel": "web", "source": {"rel": None}},
        "tags": ["vip"] if i == 2 else [],
    }


class FakeZendesk:
    def __init__(self) -> None:
        self.tickets: list[dict[str, Any]] = []
        self.requests: list[dict[str, list[str]]] = []
        self.fail_once: dict[str, int] = {}  # cursor -> status to answer once
        self.always: int | None = None
        self.retry_after = "1"
        self.page_size = 2

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        url = urlparse(handler.path)
        q = parse_qs(url.query)
        self.requests.append({"path": [url.path], **q})
        if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {}, {"error": "Couldn't authenticate you"}
        if self.always is not None:
            return self.always, {"Retry-After": self.retry_after} if self.retry_after else {}, {"error": "busy"}
        if url.path == ENDPOINT:
            return self.cursor_page(q)
        if url.path == "/api/v2/search.json":
            return self.numbered_page(q)
        return 404, {}, {"error": "not found"}

    def cursor_page(self, q: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        # like Zendesk's: the cursor stands for a point in (generated_timestamp, id) order
        ordered = sorted(self.tickets, key=lambda t: (t["generated_timestamp"], t["id"]))
        if "cursor" in q:
            cursor = q["cursor"][0]
            if cursor in self.fail_once:
                status = self.fail_once.pop(cursor)
                return status, {"Retry-After": self.retry_after} if status == 429 else {}, {"error": "try again"}
            ts, i = (int(x) for x in cursor.split("."))
            after = [t for t in ordered if (t["generated_timestamp"], t["id"]) > (ts, i)]
        else:
            since = int(q["start_time"][0])
            after = [t for t in ordered if t["generated_timestamp"] >= since]
            cursor = f"{since - 1}.0"
        size = int(q.get("per_page", [self.page_size])[0])
        chunk = after[:size]
        nxt = f"{chunk[-1]['generated_timestamp']}.{chunk[-1]['id']}" if chunk else cursor
        return (
            200,
            {},
            {
                "tickets": chunk,
                "after_cursor": nxt,
                "before_cursor": cursor,
                "after_url": f"http://x{ENDPOINT}?cursor={nxt}",
                "end_of_stream": len(after) <= size,
            },
        )

    def numbered_page(self, q: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        since = q["start_time"][0]
        rows = [t for t in sorted(self.tickets, key=lambda t: t["id"]) if t["updated_at"] >= since]
        page, size = int(q["page"][0]), int(q["per_page"][0])
        return 200, {}, {"data": {"items": rows[(page - 1) * size : page * size]}, "count": len(rows)}


@pytest.fixture
def server() -> Iterator[tuple[FakeZendesk, str]]:
    fake = FakeZendesk()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, headers, body = fake.answer(self)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


MAPPING = {
    "source": {"timezone": "UTC"},
    "feeds": {
        "tickets": {
            "columns": {
                "ticket_id": {"column": "id", "prefix": "ZD-"},
                "created_at": {"column": "created_at", "formats": ["iso8601"]},
                "updated_at": {"column": "updated_at", "formats": ["iso8601"]},
                "status": {
                    "column": "status",
                    "values": {"new": "open", "open": "in_progress", "pending": "in_progress"},
                },
                "service_type": {"constant": "technical_support"},
                "priority": {
                    "column": "priority",
                    "values": {"urgent": "P1", "high": "P2", "normal": "P3", "low": "P4"},
                    "default": "P3",
                },
                "technician_id": {"column": "assignee_id"},
                "customer_id": {"column": "requester_id"},
            }
        },
        "technicians": {
            "derive_from": "tickets",
            "distinct_on": ["technician_id"],
            "columns": {
                "technician_id": {"column": "assignee_id"},
                "name": {"column": "assignee_id"},
                "team_id": {"constant": "support"},
                "hire_date": {"constant": "2024-01-01"},
                "valid_from": {"constant": "2024-01-01"},
            },
        },
    },
}

DAY1 = 1_709_251_200  # 2024-03-01T00:00:00Z


def config(base_url: str, **overrides: Any) -> RestSourceConfig:
    doc = {
        "name": "zendesk_tickets",
        "base_url": base_url,
        "token_env": "ZENDESK_TOKEN",
        "endpoint": ENDPOINT,
        "params": {"per_page": 2},
        "record_path": "tickets",
        "pagination": {
            "type": "cursor",
            "cursor_param": "cursor",
            "cursor_field": "after_cursor",
            "end_field": "end_of_stream",
        },
        "incremental": {"start_param": "start_time", "start": DAY1, "format": "unix", "field": "generated_timestamp"},
        "retry": {"max_attempts": 4, "backoff_seconds": 0.05, "max_wait_seconds": 2},
        "timeout_seconds": 5,
        "output": "jsonl",
        "mapping": MAPPING,
    }
    doc.update(overrides)
    return RestSourceConfig.model_validate(doc)


def landed(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        import time

        self.append(round(seconds, 3))
        time.sleep(seconds)


def expected_ticket(
    i: int, hour: int, day: int = 1, status: str = "in_progress", prio: str = "P3", tech: str = "1001"
) -> dict[str, Any]:
    at = f"2024-03-0{day}T{hour:02d}:00:00+00:00"
    return {
        "ticket_id": f"ZD-{i}",
        "created_at": at,
        "first_response_at": None,
        "resolved_at": None,
        "closed_at": None,
        "updated_at": at,
        "status": status,
        "service_type": "technical_support",
        "priority": prio,
        "channel": None,
        "technician_id": tech,
        "customer_id": str(500 + i),
        "product_id": None,
        "onsite_visits": None,
        "first_time_fix": None,
        "reopened_count": None,
        "sla_due_at": None,
    }


def test_incremental_cursor_pull_with_retries(server, data_dir: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, url = server
    monkeypatch.setenv("ZENDESK_TOKEN", TOKEN)
    fake.tickets = [
        zendesk_ticket(1, DAY1 + 8 * 3600),
        zendesk_ticket(2, DAY1 + 9 * 3600, status="new", priority="urgent"),
        zendesk_ticket(3, DAY1 + 10 * 3600, priority=None, assignee=1002),
        zendesk_ticket(4, DAY1 + 11 * 3600, status="pending", priority="low"),
        zendesk_ticket(5, DAY1 + 12 * 3600),
        zendesk_ticket(0, DAY1 - 3600),  # older than the configured start: never fetched
    ]
    c2, c4, c5 = f"{DAY1 + 9 * 3600}.2", f"{DAY1 + 11 * 3600}.4", f"{DAY1 + 12 * 3600}.5"
    fake.fail_once = {c2: 503, c4: 429}
    sleeps = Sleeps()
    import datetime as dt

    first = pull(config(url), data_dir, now=dt.datetime(2024, 3, 2, 1, 2, 3, tzinfo=dt.UTC), sleep=sleeps)
    # the 503 waited the backoff (0.05 s), the 429 its Retry-After (1 s)
    assert sleeps == [0.05, 1.0]
    assert (first.pages, first.records) == (3, 5)
    assert [(r.get("start_time"), r.get("cursor")) for r in fake.requests] == [
        ([str(DAY1)], None),
        (None, [c2]),
        (None, [c2]),
        (None, [c4]),
        (None, [c4]),
    ]
    tickets = first.mapping.feeds["tickets"].path
    assert tickets == data_dir.landing / "tickets" / "2024-03-02_zendesk_tickets_010203.jsonl"
    assert landed(tickets) == [
        expected_ticket(1, 8),
        expected_ticket(2, 9, status="open", prio="P1"),
        expected_ticket(3, 10, tech="1002"),
        expected_ticket(4, 11, prio="P4"),
        expected_ticket(5, 12),
    ]
    techs = landed(data_dir.landing / "technicians" / "2024-03-02_zendesk_tickets_010203.jsonl")
    assert [(t["technician_id"], t["team_id"]) for t in techs] == [("1001", "support"), ("1002", "support")]
    saved = json.loads(state_path(config(url), data_dir).read_text(encoding="utf-8"))
    assert (saved["cursor"], saved["start"], saved["last_records"]) == (c5, DAY1 + 12 * 3600, 5)

    # second run: one ticket updated, one new; only those are fetched, from the saved cursor
    fake.requests.clear()
    fake.tickets[0] = zendesk_ticket(1, DAY1 + 86_400 + 7 * 3600, status="pending")
    fake.tickets.append(zendesk_ticket(6, DAY1 + 86_400 + 8 * 3600, priority="high"))
    second = pull(config(url), data_dir, now=dt.datetime(2024, 3, 3, 1, 0, 0, tzinfo=dt.UTC), sleep=sleeps)
    assert [(r.get("start_time"), r.get("cursor")) for r in fake.requests] == [(None, [c5])]
    assert second.records == 2
    assert landed(data_dir.landing / "tickets" / "2024-03-03_zendesk_tickets_010000.jsonl") == [
        expected_ticket(1, 7, day=2),
        expected_ticket(6, 8, day=2, prio="P2"),
    ]
    assert json.loads(second.state_path.read_text(encoding="utf-8"))["cursor"] == f"{DAY1 + 86_400 + 8 * 3600}.6"
    # third run: nothing new, no file, cursor kept
    third = pull(config(url), data_dir, now=dt.datetime(2024, 3, 4, tzinfo=dt.UTC), sleep=sleeps)
    assert (third.records, third.mapping, third.state["cursor"]) == (0, None, f"{DAY1 + 86_400 + 8 * 3600}.6")
    assert not list((data_dir.landing / "tickets").glob("2024-03-04*"))


def test_401_names_the_environment_variable(server, data_dir: DataDir, monkeypatch) -> None:
    fake, url = server
    monkeypatch.setenv("ZENDESK_TOKEN", "wrong")
    with pytest.raises(RestAuthError) as e:
        pull(config(url), data_dir)
    assert "401 Unauthorized" in str(e.value)
    assert "environment variable ZENDESK_TOKEN" in str(e.value)
    assert len(fake.requests) == 1  # a 401 is not retried
    assert not state_path(config(url), data_dir).exists()
    monkeypatch.delenv("ZENDESK_TOKEN")
    with pytest.raises(RestAuthError, match="set environment variable ZENDESK_TOKEN"):
        pull(config(url), data_dir)


def test_gives_up_after_bounded_attempts_and_caps_retry_after(server, data_dir: DataDir, monkeypatch) -> None:
    fake, url = server
    monkeypatch.setenv("ZENDESK_TOKEN", TOKEN)
    fake.always, fake.retry_after = 503, ""  # no Retry-After: exponential backoff
    sleeps = Sleeps()
    with pytest.raises(RestSourceError, match=r"gave up on .* after 4 attempts \(last: HTTP 503\)"):
        pull(config(url), data_dir, sleep=sleeps)
    assert sleeps == [0.05, 0.1, 0.2]  # exponential backoff, bounded attempts
    fake.requests.clear()
    fake.always, fake.retry_after = 429, "30"
    sleeps.clear()
    with pytest.raises(RestSourceError, match="last: HTTP 429"):
        pull(
            config(url, retry={"max_attempts": 2, "backoff_seconds": 0, "max_wait_seconds": 0.2}),
            data_dir,
            sleep=sleeps,
        )
    assert sleeps == [0.2] and len(fake.requests) == 2  # Retry-After: 30 capped by max_wait_seconds
    assert not state_path(config(url), data_dir).exists()


def test_page_numbers_with_an_iso_start_time(server, data_dir: DataDir, monkeypatch) -> None:
    fake, url = server
    monkeypatch.setenv("ZENDESK_TOKEN", TOKEN)
    fake.tickets = [zendesk_ticket(i, DAY1 + (7 + i) * 3600) for i in range(1, 6)]
    cfg = config(
        url,
        endpoint="/api/v2/search.json",
        record_path="data.items",
        params={},
        pagination={"type": "page", "page_param": "page", "size_param": "per_page", "page_size": 2},
        incremental={
            "start_param": "start_time",
            "start": "2024-03-01T09:00:00Z",
            "format": "iso",
            "field": "updated_at",
        },
        output="parquet",
    )
    result = pull(cfg, data_dir)
    assert [(r["page"], r["start_time"]) for r in fake.requests] == [
        (["1"], ["2024-03-01T09:00:00Z"]),
        (["2"], ["2024-03-01T09:00:00Z"]),
        (["3"], ["2024-03-01T09:00:00Z"]),
    ]
    assert result.records == 4 and result.state["start"] == "2024-03-01T12:00:00Z"
    import duckdb

    path = result.mapping.feeds["tickets"].path
    assert path.suffix == ".parquet"
    assert duckdb.connect().execute(
        "select list(ticket_id order by ticket_id) from read_parquet($p)", {"p": str(path)}
    ).fetchone()[0] == ["ZD-2", "ZD-3", "ZD-4", "ZD-5"]
    fake.requests.clear()
    pull(cfg, data_dir)
    assert fake.requests[0]["start_time"] == ["2024-03-01T12:00:00Z"]
