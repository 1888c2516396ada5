"""Seeded, deterministic demo data generator: writes landing files for every feed of ingestion.contracts.

    python -m demo.generator --tier S --landing data/landing --seed 42 [--no-bad-rows]
    python -m demo.generator --tier S --landing data/landing --day 2026-11-01   # one extra day

Layout (docs/architecture.md, "Feed contracts"): landing/<feed>/<YYYY-MM-DD>[_suffix].<ext>
  * tickets, complaints, surveys: one file per day with the records created or updated that day
    (change-data-capture: ~30 % of tickets appear twice, first open/in_progress, then final);
    CSV for tier S, Parquet (typed columns, naive local timestamps) for tiers M and L;
  * technicians, customers, products, purchases, training_*: one CSV dated the first day, plus two
    technicians change files (<move day>_move.csv: the team move; <leave day>_leave.csv: the leaver);
  * supervisor_reviews: one CSV per month, dated the last day of the month.
CSV: UTF-8; technicians/<first day>.csv is GB18030, customers/<first day>.csv is UTF-8 with BOM;
timestamps 'YYYY-MM-DD HH:MM:SS' naive Asia/Shanghai time, except complaints files of the second month
of the window, written 'YYYY-MM-DDTHH:MM:SS+08:00'. See docs/demo_data.md.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from demo.generator_events import (
    Events,
    make_complaints,
    make_reviews,
    make_surveys,
    make_tickets,
    survey_table,
    ticket_columns,
)
from demo.generator_model import (
    CHANNEL_P,
    DAY,
    HOUR,
    PRIORITY_P,
    SERVICE_P,
    TIERS,
    Window,
    add_months,
    draw_ticket_outcomes,
    epoch_seconds,
    ids,
    make_catalogue,
    make_staff,
    make_training,
    pick,
    take,
    technician_change,
    technician_table,
    ticket_state,
    ts,
)
from ingestion.contracts import FEEDS, PRIORITIES, SERVICE_TYPES

NAIVE_FMT = "%Y-%m-%d %H:%M:%S"
OFFSET_FMT = "%Y-%m-%dT%H:%M:%S+08:00"
EVENT_FEEDS = ("tickets", "complaints", "surveys")
BAD_TIMESTAMP = "2026-13-45 25:61"
UNKNOWN_TECHNICIAN = "T9999"


@dataclass(frozen=True)
class BadRow:
    """A planted row: `rejected` False means it is valid and must be loaded (the newer version wins)."""

    feed: str
    file: str  # relative to the landing folder, e.g. 'tickets/2026-05-10.csv'
    row_number: int  # 1-based data row, header excluded
    key: str
    column: str
    value: str
    rule: str | None  # loader rule expected to reject it, e.g. 'type:created_at'
    rejected: bool = True


@dataclass
class GenerationSummary:
    tier: str
    seed: int
    start: date
    end: date  # exclusive
    rows: dict[str, int] = field(default_factory=dict)  # data rows written per feed (all versions)
    records: dict[str, int] = field(default_factory=dict)  # distinct records per feed
    files: dict[str, list[str]] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)
    skills: dict[str, float] = field(default_factory=dict)  # latent technician skill (ground truth)
    mover: str = ""
    move_date: date | None = None
    leaver: str = ""
    leave_date: date | None = None
    new_hires: list[str] = field(default_factory=list)
    new_hire_without_onboarding: str = ""
    behind_schedule_session: str = ""
    cancelled_session: str = ""
    gb18030_files: list[str] = field(default_factory=list)
    bom_files: list[str] = field(default_factory=list)
    offset_timestamp_files: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _as_text(table: pa.Table, ts_format: str = NAIVE_FMT) -> pa.Table:
    """Every column as CSV text; timestamps 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DDTHH:MM:SS+08:00'."""
    cols = []
    for f, col in zip(table.schema, table.columns, strict=True):
        text = pc.cast(col, pa.string())  # timestamp[s] casts to 'YYYY-MM-DD HH:MM:SS' (much faster than strftime)
        if pa.types.is_timestamp(f.type) and ts_format == OFFSET_FMT:
            text = pc.binary_join_element_wise(pc.replace_substring(text, " ", "T"), "+08:00", "")
        cols.append(text)
    return pa.table(cols, names=table.column_names)


# optional contract columns the demo data does not carry (its tickets follow the priority table's SLA)
NOT_GENERATED = {"tickets": ("sla_due_at",)}


def demo_columns(feed: str) -> tuple[str, ...]:
    return tuple(c for c in FEEDS[feed].column_names if c not in NOT_GENERATED.get(feed, ()))


DICTIONARY_COLUMNS = ["status", "service_type", "priority", "channel", "technician_id", "category", "severity"]


class _Writer:
    def __init__(self, landing: Path, summary: GenerationSummary) -> None:
        self.landing = landing
        self.summary = summary
        self.con = duckdb.connect()

    def rel(self, feed: str, day: date, suffix: str, ext: str) -> str:
        return f"{feed}/{day.isoformat()}{suffix}.{ext}"

    def csv(
        self,
        feed: str,
        day: date,
        table: pa.Table,
        suffix: str = "",
        encoding: str = "utf-8",
        ts_format: str = NAIVE_FMT,
        text: pa.Table | None = None,
    ) -> str:
        assert tuple(table.column_names) == demo_columns(feed), feed
        rel = self.rel(feed, day, suffix, "csv")
        path = self.landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = text if text is not None else _as_text(table, ts_format)
        self.con.register("_t", text)
        self.con.execute(f"copy (select * from _t) to '{path}' (format csv, header true)")
        self.con.unregister("_t")
        if encoding != "utf-8":
            raw = path.read_bytes()
            if encoding == "utf-8-sig":
                data = b"\xef\xbb\xbf" + raw
                self.summary.bom_files.append(rel)
            else:
                data = raw.decode("utf-8").encode(encoding)
                self.summary.gb18030_files.append(rel)
            path.write_bytes(data)
        if ts_format != NAIVE_FMT:
            self.summary.offset_timestamp_files.append(rel)
        self._count(feed, rel, text.num_rows)
        return rel

    def parquet(self, feed: str, day: date, table: pa.Table, suffix: str = "") -> str:
        assert tuple(table.column_names) == demo_columns(feed), feed
        rel = self.rel(feed, day, suffix, "parquet")
        path = self.landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table,
            path,
            compression="snappy",
            row_group_size=1_000_000,
            use_dictionary=[c for c in DICTIONARY_COLUMNS if c in table.column_names],
        )
        self._count(feed, rel, table.num_rows)
        return rel

    def _count(self, feed: str, rel: str, n: int) -> None:
        self.summary.rows[feed] = self.summary.rows.get(feed, 0) + n
        self.summary.files.setdefault(feed, []).append(rel)


# ---------------------------------------------------------------- planted bad rows (tier S only)


def _shift(text: str, hours: float) -> str:
    return (datetime.strptime(text, NAIVE_FMT) + timedelta(hours=hours)).strftime(NAIVE_FMT)


def _row(text: pa.Table, base: int, changes: dict[str, str]) -> pa.Table:
    row = text.slice(base, 1)
    for name, value in changes.items():
        row = row.set_column(row.schema.get_field_index(name), name, pa.array([value], pa.string()))
    return row


def _insert_all(text: pa.Table, rows: list[tuple[int, pa.Table]]) -> pa.Table:
    """Insert rows so that each lands at its given 0-based index of the result."""
    for at, row in sorted(rows, key=lambda r: r[0]):
        text = pa.concat_tables([text.slice(0, at), row, text.slice(at)])
    return text


def _plant_tickets(text: pa.Table, kind: str, counter: list[int]) -> tuple[pa.Table, list[tuple]]:
    """Insert planted rows into one day's ticket text table; returns (table, [(row, key, col, value, rule, rej)])."""
    status = text.column("status").to_numpy(zero_copy_only=False)
    upd = text.column("updated_at").to_numpy(zero_copy_only=False)
    done = np.flatnonzero(np.isin(status, ["resolved", "closed"]))
    rows: list[tuple[int, pa.Table]] = []
    planted: list[tuple] = []

    def plant(at: int, base: int, changes: dict[str, str], col: str, rule: str | None) -> None:
        if rule is not None:  # a rejected copy under a new key, so the good data stays whole
            counter[0] += 1
            changes = {"ticket_id": f"TKX{counter[0]:07d}", **changes}
        key = changes.get("ticket_id", text.column("ticket_id")[base].as_py())
        rows.append((at, _row(text, base, changes)))
        planted.append((at + 1, key, col, changes[col], rule, rule is not None))

    if kind == "A":
        plant(3, int(done[0]), {"created_at": BAD_TIMESTAMP}, "created_at", "type:created_at")
        created = text.column("created_at")[int(done[1])].as_py()
        plant(8, int(done[1]), {"resolved_at": _shift(created, -2)}, "resolved_at", "rule:resolved_after_created")
    elif kind == "C":
        plant(4, int(done[2]), {"technician_id": UNKNOWN_TECHNICIAN}, "technician_id", "reference:technician_id")
        # a closed ticket (final version) corrected later the same day: valid, the newer version wins
        hour = pc.utf8_slice_codeunits(text.column("updated_at"), 11, 13).to_numpy(zero_copy_only=False)
        base = int(np.flatnonzero((status == "closed") & (hour < "20"))[0])
        visits = str(int(text.column("onsite_visits")[base].as_py()) + 1)
        newer = {"updated_at": _shift(upd[base], 1), "onsite_visits": visits}
        plant(max(base + 3, 12), base, newer, "updated_at", None)
    elif kind == "D":
        plant(5, int(done[3]), {"service_type": ""}, "service_type", "required:service_type")
        plant(14, int(done[4]), {"priority": "P9"}, "priority", "enum:priority")
    return _insert_all(text, rows), planted


def _plant_survey(text: pa.Table) -> tuple[pa.Table, list[tuple]]:
    key = "SVX0000001"
    text = _insert_all(text, [(1, _row(text, 0, {"response_id": key, "overall_score": "7"}))])
    return text, [(2, key, "overall_score", "7", "range:overall_score", True)]


# ---------------------------------------------------------------- the whole window


def generate(
    landing_dir: Path,
    tier: str = "S",
    seed: int = 42,
    start: date = date(2026, 5, 1),
    months: int = 6,
    with_bad_rows: bool = True,
) -> GenerationSummary:
    """Write every feed's landing files for `months` months from `start`; same arguments, same bytes."""
    t_begin = time.perf_counter()
    t = TIERS[tier]
    w = Window(start, months)
    landing = Path(landing_dir)
    for feed in FEEDS:
        if (landing / feed).exists():
            shutil.rmtree(landing / feed)
    summary = GenerationSummary(tier, seed, start, w.end)
    out = _Writer(landing, summary)
    plant = with_bad_rows and tier == "S"

    staff = make_staff(_rng(seed, 1), t, w)
    cat = make_catalogue(_rng(seed, 2), t, w)
    tr = make_training(_rng(seed, 3), t, staff, w)
    tickets, facts = make_tickets(_rng(seed, 4), t, staff, cat, tr, w)
    complaints = make_complaints(_rng(seed, 5), facts, staff, w)
    surveys = make_surveys(_rng(seed, 6), facts, staff, w)
    reviews = make_reviews(_rng(seed, 7), staff, tr, w)

    day = lambda d: start + timedelta(days=int(d))  # noqa: E731
    # reference feeds
    out.csv("technicians", start, technician_table(staff, w), encoding="gb18030")
    out.csv("technicians", day(staff.move_day), technician_change(staff, w, staff.mover, "move"), suffix="_move")
    out.csv(
        "technicians",
        day(staff.leave_day[staff.leaver]),
        technician_change(staff, w, staff.leaver, "leave"),
        suffix="_leave",
    )
    out.csv("customers", start, cat.customers, encoding="utf-8-sig")
    out.csv("products", start, cat.products)
    out.csv("purchases", start, cat.purchases)
    out.csv("training_courses", start, tr.courses)
    out.csv("training_sessions", start, tr.sessions)
    out.csv("training_attendance", start, tr.attendance)
    for d, table in reviews:
        out.csv("supervisor_reviews", day(d), table)

    # event feeds, one file per day
    offset_month = min(1, months - 1)
    m0 = (add_months(start, offset_month) - start).days
    m1 = (add_months(start, offset_month + 1) - start).days
    plan_days = {min(9, w.n_days - 1): "A", min(30, w.n_days - 1): "C", min(45, w.n_days - 1): "D"}
    counter = [0]
    for feed, ev in (("tickets", tickets), ("complaints", complaints), ("surveys", surveys)):
        _write_events(
            out,
            feed,
            ev,
            w,
            t.event_format,
            plant,
            plan_days,
            counter,
            offset_days=(m0, m1) if feed == "complaints" else None,
        )

    summary.records = {
        "technicians": staff.n,
        "customers": t.customers,
        "products": t.products,
        "purchases": t.purchases,
        "tickets": tickets.records,
        "complaints": complaints.records,
        "surveys": surveys.records,
        "supervisor_reviews": sum(tb.num_rows for _, tb in reviews),
        "training_courses": tr.courses.num_rows,
        "training_sessions": tr.sessions.num_rows,
        "training_attendance": tr.attendance.num_rows,
    }
    ids_ = staff.tech_id.to_pylist()
    summary.skills = dict(zip(ids_, staff.skill.round(4).tolist(), strict=True))
    summary.mover, summary.move_date = ids_[staff.mover], day(staff.move_day)
    summary.leaver, summary.leave_date = ids_[staff.leaver], day(staff.leave_day[staff.leaver])
    summary.new_hires = [ids_[i] for i in np.flatnonzero(staff.new_hire)]
    summary.new_hire_without_onboarding = ids_[tr.skipped_onboarding]
    summary.behind_schedule_session, summary.cancelled_session = tr.behind_schedule, tr.cancelled
    summary.seconds = round(time.perf_counter() - t_begin, 2)
    return summary


def _write_events(
    out: _Writer,
    feed: str,
    ev: Events,
    w: Window,
    fmt: str,
    plant: bool,
    plan_days: dict,
    counter: list[int],
    offset_days: tuple[int, int] | None,
) -> None:
    bounds = np.searchsorted(ev.file_day, np.arange(w.n_days + 1))
    text_all = _as_text(ev.table) if fmt == "csv" else None
    for d in range(w.n_days):
        lo, hi = int(bounds[d]), int(bounds[d + 1])
        if hi == lo:
            continue
        day = w.start + timedelta(days=d)
        part = ev.table.slice(lo, hi - lo)
        if fmt == "parquet":
            out.parquet(feed, day, part)
            continue
        offset = offset_days is not None and offset_days[0] <= d < offset_days[1]
        text = _as_text(part, OFFSET_FMT) if offset else text_all.slice(lo, hi - lo)
        planted: list[tuple] = []
        if plant and feed == "tickets" and d in plan_days:
            text, planted = _plant_tickets(text, plan_days[d], counter)
        elif plant and feed == "surveys" and d == min(20, w.n_days - 1):
            text, planted = _plant_survey(text)
        rel = out.csv(feed, day, part, ts_format=OFFSET_FMT if offset else NAIVE_FMT, text=text)
        for row, key, col, value, rule, rejected in planted:
            out.summary.bad_rows.append(BadRow(feed, rel, row, key, col, value, rule, rejected))


# ---------------------------------------------------------------- one more day after the window

LEVEL_SKILL = {"junior": -0.9, "intermediate": -0.2, "senior": 0.5, "expert": 1.2}


def _files(landing: Path, feed: str, ext: str) -> list[str]:
    return sorted(str(p) for p in (landing / feed).glob(f"*.{ext}"))


def _event_sql(landing: Path, feed: str, columns: tuple[str, ...] | None = None, since: date | None = None) -> str:
    """All versions of an event feed (the given columns, as text), from CSV and Parquet files alike.

    `since`: only files dated that day or later.
    """
    cols = columns or demo_columns(feed)
    parts = []
    keep = (lambda p: Path(p).name[:10] >= since.isoformat()) if since else (lambda p: True)
    csvs = [p for p in _files(landing, feed, "csv") if keep(p)]
    pqs = [p for p in _files(landing, feed, "parquet") if keep(p)]
    if csvs:
        sel = ", ".join(f'"{c}"' for c in cols)
        parts.append(f"select {sel} from read_csv({csvs!r}, all_varchar = true, header = true)")
    if pqs:
        sel = ", ".join(f'cast("{c}" as varchar) as "{c}"' for c in cols)
        parts.append(f"select {sel} from read_parquet({pqs!r})")
    if not parts:
        raise FileNotFoundError(f"no {feed} files under {landing}: run generate() first")
    return " union all ".join(parts)


def _roster(landing: Path) -> pa.Table:
    """Technician rows from every roster file (GB18030, BOM or UTF-8), all columns as text."""
    cols = FEEDS["technicians"].column_names
    tables = []
    for name in _files(landing, "technicians", "csv"):
        raw = Path(name).read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gb18030")
        opts = pcsv.ConvertOptions(column_types=dict.fromkeys(cols, pa.string()), strings_can_be_null=True)
        tables.append(pcsv.read_csv(pa.BufferReader(text.encode("utf-8")), convert_options=opts))
    return pa.concat_tables(tables)


def _max_number(con: duckdb.DuckDBPyConnection, sql: str, column: str, prefix: str) -> int:
    row = con.sql(
        f"select coalesce(max(cast(substr({column}, {len(prefix) + 1}) as bigint)), 0) from ({sql}) "
        f"where regexp_full_match({column}, '{prefix}[0-9]+')"
    ).fetchall()[0]
    return int(row[0])


def _codes(col: pa.ChunkedArray, values: tuple[str, ...], default: int) -> np.ndarray:
    idx = pc.index_in(col, value_set=pa.array(values))
    return pc.fill_null(idx, default).to_numpy(zero_copy_only=False).astype(np.int64)


def _seconds(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = pc.cast(col, pa.timestamp("s")).cast(pa.int64())
    return arr.to_numpy(zero_copy_only=False) if arr.null_count == 0 else pc.fill_null(arr, -1).to_numpy()


BACKLOG_DAYS = 28  # generate_day resolves open tickets created at most this many days before the new day


def generate_day(landing_dir: Path, day: date, tier: str = "S", seed: int = 42) -> GenerationSummary:
    """Write one more day of event files after the generated window, read back from the landing folder.

    tickets/<day>: the day's new tickets (state at the end of the day), a few open tickets of the last
    BACKLOG_DAYS days now resolved, and one late ticket created and closed 35-60 days earlier;
    surveys/<day>: responses for tickets resolved that day plus one late response for the late ticket;
    complaints/<day>: complaints received that day about recent tickets.
    Deterministic for the same landing content, day, tier and seed.
    """
    t_begin = time.perf_counter()
    t = TIERS[tier]
    landing = Path(landing_dir)
    ext = "csv" if t.event_format == "csv" else "parquet"
    for feed in EVENT_FEEDS:
        if (landing / feed / f"{day.isoformat()}.{ext}").exists():
            raise FileExistsError(f"{feed}/{day.isoformat()}.{ext} already exists; pick a day after the window")
    rng = _rng(seed, 100, day.toordinal())
    con = duckdb.connect()
    t0 = epoch_seconds(day)
    eod = t0 + DAY - 1
    summary = GenerationSummary(tier, seed, day, day + timedelta(days=1))
    out = _Writer(landing, summary)

    # who works today, and what they sell
    con.register("roster", _roster(landing))
    staff = con.sql(
        """
        select technician_id, level
        from roster
        qualify row_number() over (
            partition by technician_id order by valid_from desc, updated_at desc) = 1
            and cast(hire_date as date) <= ? and (leave_date is null or cast(leave_date as date) > ?)
        order by technician_id
        """,
        params=[day, day],
    ).to_arrow_table()
    skill_of = np.array([LEVEL_SKILL.get(v, 0.0) for v in staff.column("level").to_pylist()])  # per technician
    tech_ids = staff.column("technician_id").combine_chunks()
    purchases = con.sql(
        f"""
        select pu.customer_id, pu.product_id, cast(pr.complexity as bigint) as complexity
        from read_csv({_files(landing, "purchases", "csv")!r}, all_varchar = true) as pu
        join read_csv({_files(landing, "products", "csv")!r}, all_varchar = true) as pr using (product_id)
        order by pu.purchase_id
        """
    ).to_arrow_table()

    # the newest version of every ticket: status and dates only (one pass over all versions)
    ticket_sql = _event_sql(landing, "tickets", ("ticket_id", "status", "created_at", "updated_at"))
    con.sql(f"""
        create temp table latest as
        select ticket_id, arg_max(status, try_cast(updated_at as timestamp)) as status,
            min(try_cast(created_at as timestamp)) as created_ts,
            max(try_cast(updated_at as timestamp)) as updated_ts
        from ({ticket_sql})
        group by ticket_id
    """)
    next_ticket = _max_number(con, "select ticket_id from latest", "ticket_id", "TK") + 1

    # new tickets of the day
    n_new = max(1, round(t.tickets_per_year / 365 * (0.7 if day.weekday() >= 5 else 1.1)))
    pick_tech = rng.integers(len(tech_ids), size=n_new + 1)
    sec = np.sort(rng.integers(7 * HOUR, 21 * HOUR, size=n_new))
    created = np.concatenate([t0 + sec, [t0 - int(rng.integers(35, 60)) * DAY + 10 * HOUR]])  # last: the late one
    service = pick(rng, SERVICE_P, n_new + 1)
    priority = pick(rng, PRIORITY_P, n_new + 1)
    channel = pick(rng, CHANNEL_P, n_new + 1)
    purchase = rng.integers(purchases.num_rows, size=n_new + 1)
    complexity = purchases.column("complexity").to_numpy()[purchase]
    sk = skill_of[pick_tech] + rng.normal(0, 0.3, n_new + 1)
    draw = draw_ticket_outcomes(rng, sk, 0.5 * sk, service, priority, complexity)
    cutoff = np.full(n_new + 1, eod)
    cutoff[-1] = eod - 30 * DAY  # the late ticket was finished long ago; it only reaches us today
    draw.res_h[-1], draw.close_h[-1], draw.cancel_h[-1] = min(draw.res_h[-1], 48.0), 24.0, np.inf
    draw.resp_h[-1] = min(draw.resp_h[-1], 0.8 * draw.res_h[-1])
    state = ticket_state(created, draw, cutoff)
    tid_new = ids("TK", np.arange(next_ticket, next_ticket + n_new + 1), 8)
    new = ticket_columns(
        tid_new,
        created,
        state,
        service,
        priority,
        channel,
        tech_ids.take(pa.array(pick_tech)),
        purchases.column("customer_id").combine_chunks().take(pa.array(purchase)),
        purchases.column("product_id").combine_chunks().take(pa.array(purchase)),
    )

    # a few of the last four weeks' open tickets resolved today (the backlog a service desk works off; tickets
    # left open for months are abandoned, not resolved in bulk on one day). The late ticket above still
    # reaches back 35-60 days, so a nightly run touches the current and the two previous months.
    midnight = datetime.combine(day, datetime.min.time())
    open_ids = (
        con.sql(
            "select ticket_id from latest where status in ('open', 'in_progress') and created_ts < ? "
            "and created_ts >= ? order by ticket_id",
            params=[midnight, midnight - timedelta(days=BACKLOG_DAYS)],
        )
        .to_arrow_table()
        .column("ticket_id")
    )
    k = min(len(open_ids), max(3, len(open_ids) // 20))
    chosen = open_ids.take(np.sort(rng.choice(len(open_ids), size=k, replace=False))) if k else open_ids.slice(0, 0)
    con.register("chosen", pa.table({"ticket_id": chosen}))
    open_ = con.sql(f"""
        select *, try_cast(created_at as timestamp) as created_ts,
            try_cast(first_response_at as timestamp) as response_ts
        from ({_event_sql(landing, "tickets")}) as v
        semi join chosen using (ticket_id)
        qualify row_number() over (partition by ticket_id order by try_cast(updated_at as timestamp) desc) = 1
        order by ticket_id
    """).to_arrow_table()
    upd = open_
    u_created = _seconds(upd.column("created_ts"))
    u_resp = _seconds(upd.column("response_ts"))
    resolved = t0 + np.sort(rng.integers(8 * HOUR, 20 * HOUR, size=k))
    resp = np.where(u_resp >= 0, u_resp, np.maximum(u_created, resolved - 2 * HOUR))
    ftf = rng.random(k) < 0.6
    svc = _codes(upd.column("service_type"), SERVICE_TYPES, 0)
    prio = _codes(upd.column("priority"), PRIORITIES, 2)
    chan = _codes(upd.column("channel"), tuple(CHANNEL_P), 0)
    updated = ticket_columns(
        upd.column("ticket_id").combine_chunks(),
        u_created,
        {
            "first_response_at": resp,
            "resolved_at": resolved,
            "closed_at": np.full(k, -1),
            "updated_at": resolved,
            "status": np.full(k, 2),
            "onsite_visits": np.where(ftf, 1, 2),
            "first_time_fix": ftf,
            "has_fix": np.ones(k, dtype=bool),
            "reopened_count": np.zeros(k, dtype=np.int64),
        },
        svc,
        prio,
        chan,
        upd.column("technician_id").combine_chunks(),
        upd.column("customer_id").combine_chunks(),
        upd.column("product_id").combine_chunks(),
    )
    tickets = pa.concat_tables([new.slice(0, n_new), updated, new.slice(n_new)])
    write = out.csv if ext == "csv" else out.parquet
    write("tickets", day, tickets)

    # surveys: tickets resolved today (40 %) and one late response for the late ticket
    res_all = _seconds(tickets.column("resolved_at"))
    is_late = np.zeros(tickets.num_rows, dtype=bool)
    is_late[-1] = True
    j = np.flatnonzero(((res_all >= t0) & (rng.random(tickets.num_rows) < 0.4)) | is_late)
    sent = res_all[j] + HOUR
    responded = np.minimum(
        sent + (rng.uniform(0.5, 4, len(j)) * HOUR).astype(np.int64), np.where(is_late[j], sent + 20 * HOUR, eod)
    )
    next_survey = _max_number(con, _event_sql(landing, "surveys", ("response_id",)), "response_id", "SV") + 1
    sk_j = rng.normal(0.3, 0.8, len(j))
    surveys = survey_table(
        rng,
        np.arange(next_survey, next_survey + len(j)),
        tickets.column("ticket_id").take(j),
        tickets.column("technician_id").take(j),
        tickets.column("customer_id").take(j),
        sent,
        responded,
        sk_j,
        sk_j,
        0.5 * sk_j,
        rng.normal(0, 1, len(j)),
        np.zeros(len(j)),
    )
    write("surveys", day, surveys)

    # complaints received today about tickets of the last two weeks
    recent = con.sql(
        f"""
        select ticket_id, customer_id, technician_id
        from ({_event_sql(landing, "tickets", ("ticket_id", "customer_id", "technician_id"), day - timedelta(15))}) as v
        semi join (select ticket_id from latest where created_ts >= ? and status <> 'cancelled') using (ticket_id)
        qualify row_number() over (partition by ticket_id order by ticket_id) = 1
        order by ticket_id
    """,
        params=[datetime.combine(day - timedelta(days=14), datetime.min.time())],
    ).to_arrow_table()
    m = min(recent.num_rows, max(1, round(n_new * 0.1)))
    jc = np.sort(rng.choice(recent.num_rows, size=m, replace=False))
    received = t0 + np.sort(rng.integers(8 * HOUR, 18 * HOUR, size=m))
    accepted = received + (rng.lognormal(np.log(2), 0.6, m) * HOUR).astype(np.int64)
    acc_ok = accepted <= eod
    next_complaint = _max_number(con, _event_sql(landing, "complaints", ("complaint_id",)), "complaint_id", "CP") + 1
    complaints = pa.table(
        {
            "complaint_id": ids("CP", np.arange(next_complaint, next_complaint + m), 7),
            "received_at": ts(received),
            "accepted_at": ts(np.where(acc_ok, accepted, -1)),
            "resolved_at": ts(np.full(m, -1)),
            "updated_at": ts(np.where(acc_ok, accepted, received)),
            "ticket_id": recent.column("ticket_id").take(jc),
            "customer_id": recent.column("customer_id").take(jc),
            "technician_id": recent.column("technician_id").take(jc),
            "category": take(("attitude", "quality", "timeliness", "price", "other"), rng.integers(5, size=m)),
            "severity": take(("low", "medium", "high"), rng.integers(3, size=m)),
            "status": take(("received", "accepted"), acc_ok.astype(np.int64)),
            "resolution_confirmed": pa.nulls(m, pa.bool_()),
        }
    )
    write("complaints", day, complaints)
    summary.records = {"tickets": n_new + 1, "ticket_updates": k, "surveys": len(j), "complaints": m}
    summary.seconds = round(time.perf_counter() - t_begin, 2)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m demo.generator", description=__doc__.split("\n")[0])
    ap.add_argument("--tier", default="S", choices=sorted(TIERS))
    ap.add_argument("--landing", type=Path, default=Path("data/landing"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2026, 5, 1))
    ap.add_argument("--months", type=int, default=6)
    ap.add_argument("--no-bad-rows", action="store_true")
    ap.add_argument(
        "--day",
        type=date.fromisoformat,
        default=None,
        help="write one extra day (after the generated window) instead of the whole window",
    )
    args = ap.parse_args(argv)
    if args.day:
        s = generate_day(args.landing, args.day, args.tier, args.seed)
    else:
        s = generate(args.landing, args.tier, args.seed, args.start, args.months, not args.no_bad_rows)
    print(f"tier {s.tier} seed {s.seed} {s.start}..{s.end} (exclusive) in {s.seconds:.1f}s -> {args.landing}")
    for feed, n in sorted(s.rows.items()):
        print(
            f"  {feed:<22} {n:>10,} rows in {len(s.files.get(feed, [])):>4} files  ({s.records.get(feed, n):,} records)"
        )
    for b in s.bad_rows:
        print(f"  planted: {b.file} row {b.row_number} {b.column}={b.value!r} -> {b.rule or 'valid, newer wins'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
