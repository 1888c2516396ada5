"""Feed contracts (docs/architecture.md, "Feed contracts"): the columns, types and row rules every landing file
must meet.

The contracts are plain data. The loader compiles them to DuckDB SQL (one pass over the file,
no Python loop over rows); the generator writes files that meet them; dbt sources mirror them.

Column types and the DuckDB type of the raw column:
    string    -> VARCHAR
    timestamp -> TIMESTAMPTZ  (ISO-8601 with offset, or naive local time in the configured zone)
    date      -> DATE
    month     -> DATE         (text 'YYYY-MM', stored as the first day of the month)
    int       -> BIGINT
    decimal   -> DOUBLE
    bool      -> BOOLEAN      (true/false, 1/0, y/n, yes/no, t/f)
    enum      -> VARCHAR      (one of `values`)
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field

RAW_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "date": "DATE",
    "month": "DATE",
    "int": "BIGINT",
    "decimal": "DOUBLE",
    "bool": "BOOLEAN",
    "enum": "VARCHAR",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    required: bool = False
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    not_in_future: bool = False
    # legitimately in the future (a warranty end, a planned session, a due date, a scheduled leave or team move):
    # the plausible window's upper bound is the far one (PlausibleWindow.far_until), not the run time
    future: bool = False

    @property
    def raw_type(self) -> str:
        return RAW_TYPES[self.type]

    @property
    def is_temporal(self) -> bool:
        return self.type in ("timestamp", "date", "month")


# The plausible window of every parsed timestamp, date and month, ONE setting: from PLAUSIBLE_FROM to the run time
# plus PLAUSIBLE_TOLERANCE (columns marked `future`: to PLAUSIBLE_FAR_UNTIL). A value outside is rejected with rule
# plausible:<column> (future:<column> for a not_in_future column past the upper bound), never loaded: 'epoch',
# '-infinity', '0001-01-01' or a year 9999 are placeholders, not times. Override all three with
# SERVICESCORE_PLAUSIBLE_WINDOW="FROM/TOLERANCE/FAR_UNTIL", e.g. "1985-01-01/1 day/2100-01-01".
PLAUSIBLE_FROM = "1990-01-01"
PLAUSIBLE_TOLERANCE = "1 day"
PLAUSIBLE_FAR_UNTIL = "2100-01-01"
PLAUSIBLE_WINDOW_ENV = "SERVICESCORE_PLAUSIBLE_WINDOW"
_TOLERANCE = re.compile(r"\d{1,4} (day|days|hour|hours)")


@dataclass(frozen=True)
class PlausibleWindow:
    since: str  # YYYY-MM-DD, inclusive
    tolerance: str  # an interval after the run time, e.g. '1 day'
    far_until: str  # YYYY-MM-DD, exclusive: the upper bound of columns marked `future`


def plausible_window() -> PlausibleWindow:
    raw = os.environ.get(PLAUSIBLE_WINDOW_ENV, "").strip()
    parts = [p.strip() for p in raw.split("/")] if raw else [PLAUSIBLE_FROM, PLAUSIBLE_TOLERANCE, PLAUSIBLE_FAR_UNTIL]
    try:
        since, tolerance, far = parts
        dt.date.fromisoformat(since)
        dt.date.fromisoformat(far)
        if not _TOLERANCE.fullmatch(tolerance):
            raise ValueError(tolerance)
    except ValueError as exc:
        raise ValueError(
            f"{PLAUSIBLE_WINDOW_ENV}={raw!r}: expected FROM/TOLERANCE/FAR_UNTIL such as "
            f"'1990-01-01/1 day/2100-01-01' ({exc})"
        ) from exc
    return PlausibleWindow(since, tolerance, far)


@dataclass(frozen=True)
class RowRule:
    """A rule across columns, as a SQL predicate over the typed columns (true or NULL passes).

    The predicate is written here in the code, never taken from input files or settings.
    """

    name: str
    predicate: str
    message: str


@dataclass(frozen=True)
class Reference:
    """A column that must name a row of another feed already loaded (else the row is rejected)."""

    column: str
    feed: str
    feed_column: str


@dataclass(frozen=True)
class Feed:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    rules: tuple[RowRule, ...] = ()
    references: tuple[Reference, ...] = ()
    # column that orders versions of one record (newest wins); None: the later load wins
    version_column: str | None = "updated_at"
    description: str = ""
    depends_on: tuple[str, ...] = field(default=())
    # columns whose month a record counts for: new rows there make those months rebuild and republish
    period_columns: tuple[str, ...] = ()
    # (period column, what the indicators attributed to that column's month read: columns, or SQL expressions over
    # the raw columns written here in the code): a new version of a record touches the column's month (old and
    # new) only if the column itself or one of these changed. A period column not listed here: any change
    # touches its month. Mirrors dbt_project/macros/kpi.sql and the fct_* models (durations, flags and the
    # technician's team at the event); the loader's months_touched compares them.
    period_inputs: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def period_input_columns(self, period_column: str) -> tuple[str, ...]:
        """The period column and what its indicators read (columns or SQL expressions); every column when
        not declared."""
        for name, inputs in self.period_inputs:
            if name == period_column:
                return tuple(dict.fromkeys((name, *inputs)))
        return self.column_names

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


TICKET_STATUSES = ("open", "in_progress", "resolved", "closed", "cancelled")
SERVICE_TYPES = ("repair", "maintenance", "technical_support", "installation")
PRIORITIES = ("P1", "P2", "P3", "P4")
CHANNELS = ("phone", "web", "app", "wechat", "walk_in", "email")
COMPLAINT_CATEGORIES = ("attitude", "quality", "timeliness", "price", "other")
COMPLAINT_SEVERITIES = ("low", "medium", "high")
COMPLAINT_STATUSES = ("received", "accepted", "resolved", "closed", "withdrawn")
TRAINING_TOPICS = ("technical", "service", "management")
SESSION_STATUSES = ("planned", "held", "cancelled")

technicians = Feed(
    name="technicians",
    key=("technician_id", "valid_from"),
    version_column="updated_at",
    description="Staff roster 人员; a team move arrives as a new row with a later valid_from.",
    columns=(
        Column("technician_id", required=True),
        Column("name", required=True),
        Column("team_id", required=True),
        Column("team_name"),
        Column("region"),
        Column("level", "enum", values=("junior", "intermediate", "senior", "expert")),
        Column("hire_date", "date", required=True, future=True),
        Column("leave_date", "date", future=True),
        Column("manager_id"),
        Column("valid_from", "date", required=True, future=True),
        Column("updated_at", "timestamp"),
    ),
    rules=(
        RowRule("leave_after_hire", "leave_date is null or leave_date >= hire_date", "leave_date is before hire_date"),
    ),
)

customers = Feed(
    name="customers",
    key=("customer_id",),
    description="Customer archive 客户档案; name and phone are personal data and stay in raw.",
    columns=(
        Column("customer_id", required=True),
        Column("name"),
        Column("phone"),
        Column("city"),
        Column("segment", "enum", values=("consumer", "business", "government")),
        Column("created_at", "timestamp"),
        Column("updated_at", "timestamp"),
    ),
)

products = Feed(
    name="products",
    key=("product_id",),
    description="Product catalogue.",
    columns=(
        Column("product_id", required=True),
        Column("category", required=True),
        Column("model"),
        Column("complexity", "int", required=True, min=1, max=3),
        Column("updated_at", "timestamp"),
    ),
)

purchases = Feed(
    name="purchases",
    key=("purchase_id",),
    description="Purchase records 购买记录 with warranty end.",
    columns=(
        Column("purchase_id", required=True),
        Column("customer_id", required=True),
        Column("product_id", required=True),
        Column("purchased_at", "timestamp", required=True, not_in_future=True),
        Column("warranty_until", "date", future=True),
        Column("amount", "decimal", min=0),
        Column("updated_at", "timestamp"),
    ),
    rules=(
        RowRule(
            "warranty_after_purchase",
            "warranty_until is null or warranty_until >= cast(purchased_at as date)",
            "warranty_until is before purchased_at",
        ),
    ),
)

tickets = Feed(
    name="tickets",
    key=("ticket_id",),
    description="Service tickets 工单; the same ticket_id with a newer updated_at is a newer version.",
    depends_on=("technicians",),
    period_columns=("created_at", "resolved_at"),
    period_inputs=(
        # first_response_time (by created date): response hours, technician and team at creation
        ("created_at", ("first_response_at", "technician_id")),
        # resolution indicators (by resolved date): is_resolved, handling hours (from created_at), SLA by
        # priority, repairs, first-time fix, reopens; the team is the technician's at creation
        # (resolved -> closed changes no indicator)
        (
            "resolved_at",
            (
                "status in ('resolved', 'closed')",
                "created_at",
                "service_type",
                "priority",
                "first_time_fix",
                "onsite_visits",
                "reopened_count",
                "technician_id",
                "sla_due_at",
            ),
        ),
    ),
    columns=(
        Column("ticket_id", required=True),
        Column("created_at", "timestamp", required=True, not_in_future=True),
        Column("first_response_at", "timestamp"),
        Column("resolved_at", "timestamp"),
        Column("closed_at", "timestamp"),
        Column("updated_at", "timestamp", required=True),
        Column("status", "enum", required=True, values=TICKET_STATUSES),
        Column("service_type", "enum", required=True, values=SERVICE_TYPES),
        Column("priority", "enum", required=True, values=PRIORITIES),
        Column("channel", "enum", values=CHANNELS),
        Column("technician_id", required=True),
        Column("customer_id"),
        Column("product_id"),
        Column("onsite_visits", "int", min=0, max=100),
        Column("first_time_fix", "bool"),
        Column("reopened_count", "int", min=0, max=100),
        # the source's own SLA deadline for this ticket (a due date per record); NULL: the priority table applies
        Column("sla_due_at", "timestamp", future=True),
    ),
    rules=(
        RowRule(
            "response_after_created",
            "first_response_at is null or first_response_at >= created_at",
            "first_response_at is before created_at",
        ),
        RowRule(
            "resolved_after_created",
            "resolved_at is null or resolved_at >= created_at",
            "resolved_at is before created_at",
        ),
        RowRule(
            "closed_after_resolved",
            "closed_at is null or resolved_at is null or closed_at >= resolved_at",
            "closed_at is before resolved_at",
        ),
        RowRule(
            "due_after_created", "sla_due_at is null or sla_due_at >= created_at", "sla_due_at is before created_at"
        ),
        RowRule(
            "resolved_has_time",
            "status not in ('resolved', 'closed') or resolved_at is not null",
            "status is resolved/closed but resolved_at is empty",
        ),
    ),
    references=(Reference("technician_id", "technicians", "technician_id"),),
)

complaints = Feed(
    name="complaints",
    key=("complaint_id",),
    description="Complaints 投诉: received, accepted (受理), resolved.",
    depends_on=("technicians",),
    period_columns=("received_at",),
    period_inputs=(
        # acceptance hours, problem resolved (resolved_at or status, confirmed), complaint rate; team at receipt
        (
            "received_at",
            ("accepted_at", "resolved_at", "status in ('resolved', 'closed')", "resolution_confirmed", "technician_id"),
        ),
    ),
    columns=(
        Column("complaint_id", required=True),
        Column("received_at", "timestamp", required=True, not_in_future=True),
        Column("accepted_at", "timestamp"),
        Column("resolved_at", "timestamp"),
        Column("updated_at", "timestamp", required=True),
        Column("ticket_id"),
        Column("customer_id"),
        Column("technician_id", required=True),
        Column("category", "enum", required=True, values=COMPLAINT_CATEGORIES),
        Column("severity", "enum", values=COMPLAINT_SEVERITIES),
        Column("status", "enum", required=True, values=COMPLAINT_STATUSES),
        Column("resolution_confirmed", "bool"),
    ),
    rules=(
        RowRule(
            "accepted_after_received",
            "accepted_at is null or accepted_at >= received_at",
            "accepted_at is before received_at",
        ),
        RowRule(
            "resolved_after_received",
            "resolved_at is null or resolved_at >= received_at",
            "resolved_at is before received_at",
        ),
    ),
    references=(Reference("technician_id", "technicians", "technician_id"),),
)

surveys = Feed(
    name="surveys",
    key=("response_id",),
    version_column=None,
    description="Satisfaction survey responses 满意度调查 (scores 1-5, NPS 0-10).",
    depends_on=("technicians",),
    period_columns=("responded_at",),
    period_inputs=(("responded_at", ("overall_score", "attitude_score", "technical_score", "nps", "technician_id")),),
    columns=(
        Column("response_id", required=True),
        Column("ticket_id", required=True),
        Column("technician_id", required=True),
        Column("customer_id"),
        Column("sent_at", "timestamp"),
        Column("responded_at", "timestamp", required=True, not_in_future=True),
        Column("overall_score", "int", required=True, min=1, max=5),
        Column("attitude_score", "int", min=1, max=5),
        Column("technical_score", "int", min=1, max=5),
        Column("timeliness_score", "int", min=1, max=5),
        Column("nps", "int", min=0, max=10),
        Column("comment"),
    ),
    rules=(
        RowRule("responded_after_sent", "sent_at is null or responded_at >= sent_at", "responded_at is before sent_at"),
    ),
    references=(Reference("technician_id", "technicians", "technician_id"),),
)

supervisor_reviews = Feed(
    name="supervisor_reviews",
    key=("review_id",),
    version_column=None,
    description="Supervisor reviews 主管评价: the qualitative input, one score 1-5 per technician and month.",
    depends_on=("technicians",),
    period_columns=("period",),
    period_inputs=(("period", ("score", "technician_id")),),
    columns=(
        Column("review_id", required=True),
        Column("technician_id", required=True),
        Column("period", "month", required=True),
        Column("reviewer_id", required=True),
        Column("score", "decimal", required=True, min=1, max=5),
        Column("comment"),
        Column("reviewed_at", "timestamp"),
    ),
    references=(Reference("technician_id", "technicians", "technician_id"),),
)

training_courses = Feed(
    name="training_courses",
    key=("course_id",),
    version_column=None,
    description="Training courses: topic, hours and the indicators (codes, ';'-separated) it improves.",
    columns=(
        Column("course_id", required=True),
        Column("title", required=True),
        Column("topic", "enum", required=True, values=TRAINING_TOPICS),
        Column("hours", "decimal", required=True, min=0, max=1000),
        Column("indicators"),
        Column("is_onboarding", "bool"),
    ),
)

training_sessions = Feed(
    name="training_sessions",
    key=("session_id",),
    version_column="updated_at",
    description="Scheduled or held training sessions of a course.",
    depends_on=("training_courses",),
    columns=(
        Column("session_id", required=True),
        Column("course_id", required=True),
        Column("starts_at", "timestamp", required=True, future=True),
        Column("ends_at", "timestamp", required=True, future=True),
        Column("trainer"),
        Column("capacity", "int", min=1, max=10000),
        Column("status", "enum", required=True, values=SESSION_STATUSES),
        Column("updated_at", "timestamp"),
    ),
    rules=(RowRule("ends_after_starts", "ends_at >= starts_at", "ends_at is before starts_at"),),
    references=(Reference("course_id", "training_courses", "course_id"),),
)

training_attendance = Feed(
    name="training_attendance",
    key=("session_id", "technician_id"),
    version_column=None,
    description="Enrolment and attendance: attended, pre/post test (0-100), passed, feedback 1-5.",
    depends_on=("training_sessions", "technicians"),
    columns=(
        Column("session_id", required=True),
        Column("technician_id", required=True),
        Column("attended", "bool", required=True),
        Column("pre_score", "decimal", min=0, max=100),
        Column("post_score", "decimal", min=0, max=100),
        Column("passed", "bool"),
        Column("feedback_score", "int", min=1, max=5),
    ),
    references=(
        Reference("technician_id", "technicians", "technician_id"),
        Reference("session_id", "training_sessions", "session_id"),
    ),
)

FEEDS: dict[str, Feed] = {
    f.name: f
    for f in (
        technicians,
        customers,
        products,
        purchases,
        tickets,
        complaints,
        surveys,
        supervisor_reviews,
        training_courses,
        training_sessions,
        training_attendance,
    )
}

# columns added by the loader to every raw table
LOAD_METADATA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_file", "VARCHAR"),
    ("_file_hash", "VARCHAR"),
    ("_row_number", "BIGINT"),
    ("_loaded_at", "TIMESTAMPTZ"),
    ("_run_id", "VARCHAR"),
)

PERSONAL_DATA_COLUMNS: dict[str, tuple[str, ...]] = {"customers": ("name", "phone")}
