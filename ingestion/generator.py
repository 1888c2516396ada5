"""Seeded, deterministic demo data generator: writes landing files for every feed of ingestion.contracts.

    python -m ingestion.generator --tier S --landing data/landing --seed 42 [--no-bad-rows]
    python -m ingestion.generator --tier S --landing data/landing --day 2026-11-01   # one extra day

Layout (DESIGN §3): landing/<feed>/<YYYY-MM-DD>[_suffix].<ext>
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

import shutil
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingestion.contracts import FEEDS
from ingestion.generator_events import (
    Events,
    make_complaints,
    make_reviews,
    make_surveys,
    make_tickets,
)
from ingestion.generator_model import (
    TIERS,
    Window,
    add_months,
    make_catalogue,
    make_staff,
    make_training,
    technician_change,
    technician_table,
)

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
    cols = []
    for f, col in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(f.type):
            cols.append(pc.strftime(col, format=ts_format))
        else:
            cols.append(pc.cast(col, pa.string()))
    return pa.table(cols, names=table.column_names)


class _Writer:
    def __init__(self, landing: Path, summary: GenerationSummary) -> None:
        self.landing = landing
        self.summary = summary
        self.con = duckdb.connect()

    def rel(self, feed: str, day: date, suffix: str, ext: str) -> str:
        return f"{feed}/{day.isoformat()}{suffix}.{ext}"

    def csv(self, feed: str, day: date, table: pa.Table, suffix: str = "", encoding: str = "utf-8",
            ts_format: str = NAIVE_FMT, text: pa.Table | None = None) -> str:
        assert tuple(table.column_names) == FEEDS[feed].column_names, feed
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
        assert tuple(table.column_names) == FEEDS[feed].column_names, feed
        rel = self.rel(feed, day, suffix, "parquet")
        path = self.landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd", row_group_size=1_000_000)
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

def generate(landing_dir: Path, tier: str = "S", seed: int = 42, start: date = date(2026, 5, 1), months: int = 6,
             with_bad_rows: bool = True) -> GenerationSummary:
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
    out.csv("technicians", day(staff.leave_day[staff.leaver]), technician_change(staff, w, staff.leaver, "leave"),
            suffix="_leave")
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
        _write_events(out, feed, ev, w, t.event_format, plant, plan_days, counter,
                      offset_days=(m0, m1) if feed == "complaints" else None)

    summary.records = {
        "technicians": staff.n, "customers": t.customers, "products": t.products, "purchases": t.purchases,
        "tickets": tickets.records, "complaints": complaints.records, "surveys": surveys.records,
        "supervisor_reviews": sum(tb.num_rows for _, tb in reviews), "training_courses": tr.courses.num_rows,
        "training_sessions": tr.sessions.num_rows, "training_attendance": tr.attendance.num_rows,
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


def _write_events(out: _Writer, feed: str, ev: Events, w: Window, fmt: str, plant: bool, plan_days: dict,
                  counter: list[int], offset_days: tuple[int, int] | None) -> None:
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
