"""Pull a feed from a ticket system's REST API into the landing area (issue 7).

A REST source is declared in YAML: base URL, the name of the environment variable holding the
token, endpoint, record path, pagination (a cursor field, a next-page URL, or page numbers), an
incremental start time kept between runs in a state file under the data folder, and a feed
mapping (the format of ingestion.export_mapping, over the JSON records) to our contract:

    name: zendesk_tickets
    base_url: https://example.zendesk.com
    token_env: ZENDESK_TOKEN                 # the token itself never sits in a file
    endpoint: /api/v2/incremental/tickets/cursor.json
    params: {per_page: 100}
    record_path: tickets                     # dotted path to the list of records in a page
    pagination: {type: cursor, cursor_param: cursor, cursor_field: after_cursor,
                 end_field: end_of_stream}
    incremental: {start_param: start_time, start: 0, format: unix, field: updated_at}
    retry: {max_attempts: 5, backoff_seconds: 1, max_wait_seconds: 60}
    output: jsonl                            # or parquet
    mapping: {feeds: {tickets: {columns: {ticket_id: {column: id}, ...}}}}

Each run: resume from the saved cursor (cursor pagination) or from the saved start time (the
newest `incremental.field` seen so far), fetch every page, keep the pages as JSON files in the
work folder, map them in DuckDB, write landing/<feed>/<date>_<name>_<HHMMSS>.<jsonl|parquet>,
and only then save the new state (so a failed run is simply repeated).

Why httpx and a small client rather than dlt's REST API source: httpx is already a dependency
(one small pure-Python package plus its few helpers) and the client needed here is ~100 lines
(bounded retries on 429/5xx honouring Retry-After, a clear 401). dlt would pull in a large
dependency tree (its own pipeline runtime, state store, schema engine, normalisers and
destinations) that overlaps what Dagster, DuckDB and our contracts already do, and would make
dlt, not our landing folder and contracts, the owner of state and schema.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingestion.export_mapping.engine import MappingResult, run_mapping
from ingestion.export_mapping.outputs import write_outputs
from ingestion.export_mapping.spec import SOURCE_NAME, MappingError, parse_mapping
from ingestion.paths import DataDir


class RestSourceError(RuntimeError):
    """The API could not be read (after retries), or its answer has an unexpected shape."""


class RestAuthError(RestSourceError):
    """401: the token was refused (or is missing)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pagination(_Model):
    type: Literal["cursor", "next_url", "page"] = "cursor"
    cursor_param: str = "cursor"  # query parameter that sends the cursor
    cursor_field: str = "after_cursor"  # dotted path of the next cursor in a page
    end_field: str | None = "end_of_stream"  # dotted path of a "no more pages" flag
    next_url_field: str = "next_page"  # dotted path of the next page's URL (next_url)
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = None
    page_size: int | None = None
    max_pages: int = Field(default=10_000, ge=1)


class Incremental(_Model):
    start_param: str = "start_time"
    start: str | int = 0  # the start of the first run
    format: Literal["unix", "iso"] = "unix"
    field: str | None = "updated_at"  # record field whose newest value is the next start time


class Retry(_Model):
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_seconds: float = Field(default=1.0, ge=0)
    max_wait_seconds: float = Field(default=60.0, ge=0)


class RestSourceConfig(_Model):
    name: str
    base_url: str
    token_env: str | None = None
    auth: Literal["bearer", "none"] = "bearer"
    endpoint: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    record_path: str
    pagination: Pagination = Field(default_factory=Pagination)
    incremental: Incremental | None = None
    retry: Retry = Field(default_factory=Retry)
    timeout_seconds: float = 30.0
    output: Literal["jsonl", "parquet"] = "jsonl"
    mapping: dict[str, Any]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SOURCE_NAME.match(v):
            raise ValueError(f"name {v!r} must match {SOURCE_NAME.pattern}")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (or http:// for a local test server)")
        return v.rstrip("/")


def load_config(path: str | Path) -> RestSourceConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        config = RestSourceConfig.model_validate(data)
    except (OSError, yaml.YAMLError) as e:
        raise MappingError(f"{path}: cannot read REST source config: {e}") from e
    except ValidationError as e:
        raise MappingError(
            "\n".join(
                f"{path}: {'.'.join(str(x) for x in err['loc'])}: "
                + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, "))
                for err in e.errors()
            )
        ) from None
    return config


# ---------------------------------------------------------------------------------------------
# the HTTP client


class RestClient:
    """httpx with bounded retries on 429/5xx/transport errors, honouring Retry-After, and a clear 401."""

    def __init__(self, config: RestSourceConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.sleep = sleep
        headers = {"Accept": "application/json", "User-Agent": "servicescore-rest-source"}
        if config.auth == "bearer":
            env = config.token_env
            token = os.environ.get(env) if env else None
            if not token:
                raise RestAuthError(
                    f"REST source {config.name}: no token: set environment variable {env or '(token_env missing)'}"
                )
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=config.base_url, headers=headers, timeout=config.timeout_seconds)

    def close(self) -> None:
        self.http.close()

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        r = self.config.retry
        wait = r.backoff_seconds * (2 ** (attempt - 1))
        header = response.headers.get("Retry-After") if response is not None else None
        if header:
            if header.strip().isdigit():
                wait = float(header.strip())
            else:
                try:
                    when = email.utils.parsedate_to_datetime(header)
                    wait = max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
                except (TypeError, ValueError):
                    pass
        return min(wait, r.max_wait_seconds)

    def get(self, url: str, params: dict[str, Any] | None = None) -> Any:
        attempts = self.config.retry.max_attempts
        last = ""
        for attempt in range(1, attempts + 1):
            response: httpx.Response | None = None
            try:
                response = self.http.get(url, params=params)
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                status = response.status_code
                if status == 401:
                    raise RestAuthError(
                        f"REST source {self.config.name}: 401 Unauthorized from {response.request.url}: the token "
                        f"in environment variable {self.config.token_env} was refused (expired or wrong?)"
                    )
                if status == 429 or status >= 500:
                    last = f"HTTP {status}"
                elif status >= 400:
                    raise RestSourceError(
                        f"REST source {self.config.name}: HTTP {status} from {response.request.url}: "
                        f"{response.text[:300]}"
                    )
                else:
                    try:
                        return response.json()
                    except ValueError as e:
                        raise RestSourceError(
                            f"REST source {self.config.name}: {response.request.url} did not answer JSON"
                        ) from e
            if attempt < attempts:
                self.sleep(self._wait(attempt, response))
        raise RestSourceError(
            f"REST source {self.config.name}: gave up on {url} after {attempts} attempts (last: {last})"
        )


# ---------------------------------------------------------------------------------------------
# pulling


def _dig(document: Any, dotted: str) -> Any:
    value = document
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


@dataclass
class PullResult:
    name: str
    pages: int
    records: int
    state: dict[str, Any]
    state_path: Path
    mapping: MappingResult | None  # None when no new records arrived


def state_path(config: RestSourceConfig, data: DataDir) -> Path:
    return data.root / "state" / "rest" / f"{config.name}.json"


def _read_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def pull(
    config: RestSourceConfig | str | Path,
    data: DataDir | None = None,
    *,
    now: dt.datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PullResult:
    """Fetch the new records of a REST source and land them as the mapped feed(s)."""
    if not isinstance(config, RestSourceConfig):
        config = load_config(config)
    data = (data or DataDir.from_env()).ensure()
    now = now or dt.datetime.now(dt.UTC)
    mapping_doc = {"name": config.name, **config.mapping}
    mapping_doc.setdefault("source", {})
    mapping_doc["source"] = {**mapping_doc["source"], "format": "jsonl"}
    mapping = parse_mapping(mapping_doc, f"REST source {config.name}: mapping")
    spath = state_path(config, data)
    state = _read_state(spath)
    pag = config.pagination
    params: dict[str, Any] = dict(config.params)
    inc = config.incremental
    if pag.type == "cursor" and state.get("cursor"):
        params[pag.cursor_param] = state["cursor"]
    elif inc is not None:
        params[inc.start_param] = state.get("start", inc.start)
    if pag.type == "page":
        params[pag.page_param] = pag.first_page
        if pag.size_param and pag.page_size:
            params[pag.size_param] = pag.page_size

    work = data.work / "rest" / f"{config.name}_{now.strftime('%Y%m%dT%H%M%S')}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    client = RestClient(config, sleep=sleep)
    pages, total, cursor = 0, 0, state.get("cursor")
    url: str | None = config.endpoint
    try:
        while url is not None and pages < pag.max_pages:
            page = client.get(url, params=params)
            records = _dig(page, config.record_path)
            if not isinstance(records, list):
                raise RestSourceError(
                    f"REST source {config.name}: page {pages + 1} has no list at record_path {config.record_path!r}"
                )
            pages += 1
            if records:
                (work / f"page_{pages:05d}.json").write_text(json.dumps(records), encoding="utf-8")
                total += len(records)
            url, params = _next(config, page, records, url, params)
            if pag.type == "cursor":
                cursor = _dig(page, pag.cursor_field) or cursor
    finally:
        client.close()

    new_state = {**state, "last_run_at": now.isoformat(), "last_records": total}
    if pag.type == "cursor" and cursor:
        new_state["cursor"] = cursor
    result_mapping = None
    if total:
        con = duckdb.connect()
        raw = work / "records.jsonl"
        con.execute(
            f"copy (select * from read_json($pages, format = 'array', union_by_name = true)) to "
            f"'{_sql_path(raw)}' (format json)",
            {"pages": sorted(str(p) for p in work.glob("page_*.json"))},
        )
        if inc is not None and inc.field:
            newest = _newest(con, raw, inc.field, inc.format)
            if newest is not None:
                new_state["start"] = newest
        con.close()
        run = run_mapping(mapping, raw, work_dir=work)
        try:
            result_mapping = write_outputs(
                run,
                data.landing,
                data.root / "mapping_rejected",
                now.date(),
                output_format=config.output,
                stem=f"{now.date().isoformat()}_{config.name}_{now.strftime('%H%M%S')}",
            )
        finally:
            run.con.close()
    _write_state(spath, new_state)
    shutil.rmtree(work, ignore_errors=True)
    return PullResult(config.name, pages, total, new_state, spath, result_mapping)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _newest(con: duckdb.DuckDBPyConnection, raw: Path, field: str, fmt: str) -> int | str | None:
    """The newest value of the incremental field among the pulled records (unix seconds or ISO text)."""
    cols = [r[0] for r in con.execute(f"describe select * from read_json('{_sql_path(raw)}')").fetchall()]
    if field not in cols:
        raise RestSourceError(f"incremental.field {field!r} is not a field of the records ({', '.join(cols)})")
    ident = '"' + field.replace('"', '""') + '"'
    value = con.execute(
        f"select max(coalesce(try_cast({ident}::varchar as double), "
        f"epoch(try_cast({ident}::varchar as timestamptz)))) from read_json('{_sql_path(raw)}')"
    ).fetchone()[0]
    if value is None:
        return None
    if fmt == "unix":
        return int(value)
    return dt.datetime.fromtimestamp(value, dt.UTC).isoformat().replace("+00:00", "Z")


def _next(
    config: RestSourceConfig, page: Any, records: list[Any], url: str, params: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    pag = config.pagination
    if pag.type == "cursor":
        cursor = _dig(page, pag.cursor_field)
        end = bool(_dig(page, pag.end_field)) if pag.end_field else False
        if end or not cursor or not records:
            return None, params
        fixed = {
            k: v for k, v in params.items() if k != (config.incremental.start_param if config.incremental else None)
        }
        return url, {**fixed, pag.cursor_param: cursor}
    if pag.type == "next_url":
        nxt = _dig(page, pag.next_url_field)
        if not nxt or not records:
            return None, params
        if not str(nxt).startswith(config.base_url):
            raise RestSourceError(f"REST source {config.name}: next page URL {nxt} leaves {config.base_url}")
        return str(nxt), {}
    if not records or (pag.page_size and len(records) < pag.page_size):
        return None, params
    return url, {**params, pag.page_param: int(params[pag.page_param]) + 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingestion.rest_source", description="pull a REST source into the landing folder"
    )
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    try:
        result = pull(args.config)
    except (MappingError, RestSourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{result.name}: {result.pages} pages, {result.records} records; state -> {result.state_path}")
    if result.mapping is not None:
        for feed, res in result.mapping.feeds.items():
            print(f"  {feed}: {res.mapped} rows -> {res.path}; rejected {res.rejected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
