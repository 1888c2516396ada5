"""Event feeds of the demo world: tickets (with change-data-capture versions), complaints, surveys and
supervisor reviews. All columns are drawn with numpy over whole arrays; loops run per day or per month.

Each builder returns the contract columns as a typed Arrow table plus `file_day`, the day (relative to
the window start) of the landing file that carries each row, sorted by file_day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo.generator_model import (
    CHANNEL_P,
    DAY,
    HOUR,
    NULL,
    PRIORITY_FACTOR,
    PRIORITY_P,
    REVIEW_COMMENTS,
    SERVICE_BASE_HOURS,
    SERVICE_P,
    SURVEY_COMMENTS,
    Catalogue,
    Staff,
    TicketDraw,
    Tier,
    Training,
    Window,
    add_months,
    draw_ticket_outcomes,
    ids,
    pick,
    sigmoid,
    take,
    ticket_state,
    ts,
)
from ingestion.contracts import (
    CHANNELS,
    COMPLAINT_CATEGORIES,
    COMPLAINT_SEVERITIES,
    COMPLAINT_STATUSES,
    PRIORITIES,
    SERVICE_TYPES,
    TICKET_STATUSES,
)

HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 15, 13, 10, 12, 14, 14, 12, 10, 8, 6, 5, 3, 2, 1], float)
INT64_MAX = np.iinfo(np.int64).max


@dataclass
class Events:
    table: pa.Table
    file_day: np.ndarray  # sorted, relative to the window start
    records: int  # distinct keys


@dataclass
class TicketFacts:
    """Per ticket (final state) facts that complaints and surveys build on."""

    created: np.ndarray
    tech: np.ndarray
    customer: np.ndarray
    sk: np.ndarray
    sv: np.ndarray
    sp: np.ndarray
    dur_z: np.ndarray
    resolved_at: np.ndarray
    status: np.ndarray
    reopened: np.ndarray
    ticket_id: pa.Array


def day_weights(w: Window) -> np.ndarray:
    days = np.arange(w.n_days)
    dow = (w.day0 + days + 3) % 7  # 0 = Monday
    p = np.where(dow == 5, 0.75, np.where(dow == 6, 0.6, 1.0))
    # summer peak (air conditioners): a smooth bump over the window
    p = p * (1.0 + 0.25 * np.sin(np.pi * (days + 0.5) / max(1, w.n_days)))
    return p / p.sum()


def ticket_columns(
    ticket_id: pa.Array,
    created: np.ndarray,
    st: dict[str, np.ndarray],
    service: np.ndarray,
    priority: np.ndarray,
    channel: np.ndarray,
    tech_id: pa.Array,
    customer_id: pa.Array,
    product_id: pa.Array,
) -> pa.Table:
    return pa.table(
        {
            "ticket_id": ticket_id,
            "created_at": ts(created),
            "first_response_at": ts(st["first_response_at"]),
            "resolved_at": ts(st["resolved_at"]),
            "closed_at": ts(st["closed_at"]),
            "updated_at": ts(st["updated_at"]),
            "status": take(TICKET_STATUSES, st["status"]),
            "service_type": take(SERVICE_TYPES, service),
            "priority": take(PRIORITIES, priority),
            "channel": take(CHANNELS, channel),
            "technician_id": tech_id,
            "customer_id": customer_id,
            "product_id": product_id,
            "onsite_visits": pa.array(st["onsite_visits"].astype(np.int64)),
            "first_time_fix": pa.array(st["first_time_fix"], mask=~st["has_fix"]),
            "reopened_count": pa.array(st["reopened_count"].astype(np.int64)),
        }
    )


def make_tickets(
    rng: np.random.Generator, tier: Tier, staff: Staff, cat: Catalogue, tr: Training, w: Window, cdc_share: float = 0.3
) -> tuple[Events, TicketFacts]:
    nd = w.n_days
    n = round(tier.tickets_per_year * nd / 365)
    counts = rng.multinomial(n, day_weights(w))
    day = np.repeat(np.arange(nd), counts)
    tech = np.empty(n, dtype=np.int64)
    pos = 0
    for d, c in enumerate(counts):  # per day: only technicians employed that day get tickets
        act = np.flatnonzero(staff.active_on(d) & (staff.leave_day > d + 2))
        wts = staff.weight[act]
        tech[pos : pos + c] = rng.choice(act, size=c, p=wts / wts.sum())
        pos += c
    sec = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum()) * HOUR + rng.integers(HOUR, size=n)
    created = w.t0 + day * DAY + sec
    order = np.argsort(created, kind="stable")
    created, tech, day = created[order], tech[order], day[order]
    service = pick(rng, SERVICE_P, n)
    priority = pick(rng, PRIORITY_P, n)
    channel = pick(rng, CHANNEL_P, n)
    purchase = rng.integers(len(cat.purchase_customer), size=n)
    product = cat.purchase_product[purchase]
    customer = cat.purchase_customer[purchase]
    complexity = cat.complexity[product]
    sk = staff.skill[tech] + tr.boosts[0, tech, day]
    sv = staff.attitude[tech] + tr.boosts[1, tech, day]
    sp = 0.5 * staff.skill[tech] + tr.boosts[2, tech, day]
    draw = draw_ticket_outcomes(rng, sk, sp, service, priority, complexity)
    final = ticket_state(created, draw, w.t_end)
    day_end = w.t0 + (day + 1) * DAY - 1
    interim = ticket_state(created, draw, day_end)
    last_day = (final["updated_at"] - w.t0) // DAY
    multi = last_day > day
    share = min(1.0, cdc_share * n / max(1, int(multi.sum())))
    cdc = np.flatnonzero(multi & (rng.random(n) < share))

    ticket_id = ids("TK", np.arange(1, n + 1), 8)
    cust_ids = cat.customers.column("customer_id").combine_chunks()
    prod_ids = cat.products.column("product_id").combine_chunks()
    rows = np.concatenate([cdc, np.arange(n)])
    versions = {k: np.concatenate([interim[k][cdc], final[k]]) for k in final}
    file_day = np.concatenate([day[cdc], last_day])
    order = np.lexsort((versions["updated_at"], file_day))
    rows, file_day = rows[order], file_day[order]
    versions = {k: v[order] for k, v in versions.items()}
    table = ticket_columns(
        ticket_id.take(pa.array(rows)),
        created[rows],
        versions,
        service[rows],
        priority[rows],
        channel[rows],
        staff.tech_id.take(pa.array(tech[rows])),
        take(cust_ids, customer[rows]),
        take(prod_ids, product[rows]),
    )
    dur_z = (np.log(draw.res_h) - np.log(SERVICE_BASE_HOURS[service] * PRIORITY_FACTOR[priority])) / 0.7
    facts = TicketFacts(
        created,
        tech,
        customer,
        sk,
        sv,
        sp,
        dur_z,
        final["resolved_at"],
        final["status"],
        final["reopened_count"],
        ticket_id,
    )
    return Events(table, file_day, n), facts


def complaint_state(
    received: np.ndarray,
    accepted: np.ndarray,
    resolved: np.ndarray,
    closed: np.ndarray,
    withdrawn: np.ndarray,
    confirmed: np.ndarray,
    cutoff: np.ndarray | int,
) -> dict[str, np.ndarray]:
    is_w = withdrawn <= cutoff
    acc = (accepted <= cutoff) & (accepted < withdrawn)
    res = (withdrawn == INT64_MAX) & (resolved <= cutoff)
    clo = res & (closed <= cutoff)
    refused = res & ~confirmed & (closed <= cutoff)  # customer did not confirm: stays resolved, confirmed false
    status = np.select([is_w, clo & confirmed, res, acc], [4, 3, 2, 1], 0)
    updated = np.select([is_w, clo, res, acc], [withdrawn, closed, resolved, accepted], received)
    conf = np.where(clo & confirmed, 1, np.where(refused, 0, -1))
    return {
        "accepted_at": np.where(acc, accepted, NULL),
        "resolved_at": np.where(res, resolved, NULL),
        "updated_at": updated,
        "status": status,
        "confirmed": conf,
    }


def make_complaints(
    rng: np.random.Generator, tk: TicketFacts, staff: Staff, w: Window, rate: float = 0.10, cdc_share: float = 0.25
) -> Events:
    eligible = tk.status != 4
    risk = np.exp(-0.7 * tk.sv - 0.3 * tk.sk + 0.3 * np.maximum(tk.dur_z, 0))
    p = np.clip(rate * risk / risk[eligible].mean(), 0, 0.9)
    j = np.flatnonzero(eligible & (rng.random(len(p)) < p))
    received = tk.created[j] + (rng.lognormal(np.log(30), 1.0, len(j)) * HOUR).astype(np.int64)
    keep = received <= w.t_end
    j, received = j[keep], received[keep]
    m = len(j)
    sv, sk = tk.sv[j], tk.sk[j]
    accepted = received + (rng.lognormal(np.log(3) - 0.25 * sv, 0.8) * HOUR).astype(np.int64)
    resolved = accepted + (rng.lognormal(np.log(40) - 0.2 * sk, 0.8) * HOUR).astype(np.int64)
    closed = resolved + (rng.lognormal(np.log(24), 0.6, m) * HOUR).astype(np.int64)
    confirmed = rng.random(m) < sigmoid(1.5 + 0.5 * sv)
    withdrawn = np.where(rng.random(m) < 0.04, received + (rng.uniform(1, 48, m) * HOUR).astype(np.int64), INT64_MAX)
    final = complaint_state(received, accepted, resolved, closed, withdrawn, confirmed, w.t_end)
    rday = (received - w.t0) // DAY
    interim = complaint_state(received, accepted, resolved, closed, withdrawn, confirmed, w.t0 + (rday + 1) * DAY - 1)
    last_day = (final["updated_at"] - w.t0) // DAY
    multi = last_day > rday
    share = min(1.0, cdc_share * m / max(1, int(multi.sum())))
    cdc = np.flatnonzero(multi & (rng.random(m) < share))

    category = pick(rng, COMPLAINT_CATEGORIES, m)
    category = np.where((sv < -0.5) & (rng.random(m) < 0.3), 0, category)  # poor attitude -> attitude complaints
    severity = rng.choice(len(COMPLAINT_SEVERITIES), size=m, p=[0.5, 0.35, 0.15])
    no_ticket = rng.random(m) < 0.05
    rows = np.concatenate([cdc, np.arange(m)])
    v = {k: np.concatenate([interim[k][cdc], final[k]]) for k in final}
    file_day = np.concatenate([rday[cdc], last_day])
    order = np.lexsort((v["updated_at"], file_day))
    rows, file_day = rows[order], file_day[order]
    v = {k: x[order] for k, x in v.items()}
    jr = j[rows]
    table = pa.table(
        {
            "complaint_id": ids("CP", rows + 1, 7),
            "received_at": ts(received[rows]),
            "accepted_at": ts(v["accepted_at"]),
            "resolved_at": ts(v["resolved_at"]),
            "updated_at": ts(v["updated_at"]),
            "ticket_id": pc.if_else(
                pa.array(no_ticket[rows]), pa.scalar(None, pa.string()), tk.ticket_id.take(pa.array(jr))
            ),
            "customer_id": ids("C", tk.customer[jr] + 1, 7),
            "technician_id": staff.tech_id.take(pa.array(tk.tech[jr])),
            "category": take(COMPLAINT_CATEGORIES, category[rows]),
            "severity": take(COMPLAINT_SEVERITIES, severity[rows]),
            "status": take(COMPLAINT_STATUSES, v["status"]),
            "resolution_confirmed": pa.array(v["confirmed"] == 1, mask=v["confirmed"] < 0),
        }
    )
    return Events(table, file_day, m)


def survey_table(
    rng: np.random.Generator,
    response_no: np.ndarray,
    ticket_id: pa.Array,
    tech_id: pa.Array,
    customer_id: pa.Array,
    sent: np.ndarray,
    responded: np.ndarray,
    sk: np.ndarray,
    sv: np.ndarray,
    sp: np.ndarray,
    dur_z: np.ndarray,
    reopened: np.ndarray,
) -> pa.Table:
    m = len(response_no)
    q = 0.55 * sv + 0.45 * sk - 0.3 * dur_z - 0.4 * (reopened > 0)
    overall = np.clip(np.round(3.9 + 0.55 * q + rng.normal(0, 0.6, m)), 1, 5).astype(np.int64)
    attitude = np.clip(np.round(4.0 + 0.6 * sv + rng.normal(0, 0.6, m)), 1, 5).astype(np.int64)
    technical = np.clip(np.round(3.9 + 0.6 * sk + rng.normal(0, 0.6, m)), 1, 5).astype(np.int64)
    timeliness = np.clip(np.round(3.9 - 0.5 * dur_z + 0.2 * sp + rng.normal(0, 0.6, m)), 1, 5).astype(np.int64)
    nps = np.clip(np.round(7.4 + 1.3 * (overall - 4) + 0.5 * q + rng.normal(0, 1.1, m)), 0, 10).astype(np.int64)
    comment = take([c for group in SURVEY_COMMENTS for c in group], (overall - 1) * 4 + rng.integers(4, size=m))
    comment = pc.if_else(pa.array(rng.random(m) < 0.5), pa.scalar(None, pa.string()), comment)
    return pa.table(
        {
            "response_id": ids("SV", response_no, 8),
            "ticket_id": ticket_id,
            "technician_id": tech_id,
            "customer_id": customer_id,
            "sent_at": ts(sent),
            "responded_at": ts(responded),
            "overall_score": pa.array(overall),
            "attitude_score": pa.array(attitude),
            "technical_score": pa.array(technical),
            "timeliness_score": pa.array(timeliness),
            "nps": pa.array(nps),
            "comment": comment,
        }
    )


def make_surveys(rng: np.random.Generator, tk: TicketFacts, staff: Staff, w: Window, rate: float = 0.42) -> Events:
    res = tk.resolved_at
    j = np.flatnonzero((res >= 0) & (rng.random(len(res)) < rate))
    sent = res[j] + (rng.uniform(1, 24, len(j)) * HOUR).astype(np.int64)
    responded = sent + (rng.lognormal(np.log(5), 1.0, len(j)) * HOUR).astype(np.int64)
    keep = responded <= w.t_end
    j, sent, responded = j[keep], sent[keep], responded[keep]
    order = np.argsort(responded, kind="stable")
    j, sent, responded = j[order], sent[order], responded[order]
    table = survey_table(
        rng,
        np.arange(1, len(j) + 1),
        tk.ticket_id.take(pa.array(j)),
        staff.tech_id.take(pa.array(tk.tech[j])),
        ids("C", tk.customer[j] + 1, 7),
        sent,
        responded,
        tk.sk[j],
        tk.sv[j],
        tk.sp[j],
        tk.dur_z[j],
        tk.reopened[j],
    )
    return Events(table, (responded - w.t0) // DAY, len(j))


def make_reviews(rng: np.random.Generator, staff: Staff, tr: Training, w: Window) -> list[tuple[int, pa.Table]]:
    """One review per technician active in the month; (file day, table) per month."""
    out = []
    for m in range(w.months):
        m_start = (add_months(w.start, m) - w.start).days
        m_end = (add_months(w.start, m + 1) - w.start).days - 1
        active = np.flatnonzero((staff.hire_day <= m_end) & (staff.leave_day > m_start))
        mid = min((m_start + m_end) // 2, w.n_days)
        skill = staff.skill[active] + tr.boosts[0, active, mid]
        score = np.clip(
            np.round(3.4 + 0.45 * skill + 0.2 * staff.attitude[active] + rng.normal(0, 0.35, len(active)), 1), 1, 5
        )
        team = np.where((active == staff.mover) & (m_end >= staff.move_day), staff.new_team, staff.team[active])
        period = add_months(w.start, m).strftime("%Y-%m")
        reviewed = w.t0 + m_end * DAY + 15 * HOUR + rng.integers(0, 2 * HOUR, len(active))
        out.append(
            (
                m_end,
                pa.table(
                    {
                        "review_id": pc.binary_join_element_wise(
                            f"RV{period.replace('-', '')}-", staff.tech_id.take(pa.array(active)), ""
                        ),
                        "technician_id": staff.tech_id.take(pa.array(active)),
                        "period": pa.array([period] * len(active), type=pa.string()),
                        "reviewer_id": staff.manager_id.take(pa.array(team)),
                        "score": pa.array(score),
                        "comment": take(REVIEW_COMMENTS, np.clip(np.floor(score).astype(np.int64) - 1, 0, 4)),
                        "reviewed_at": ts(reviewed),
                    }
                ),
            )
        )
    return out


__all__ = [
    "Events",
    "TicketFacts",
    "TicketDraw",
    "make_tickets",
    "make_complaints",
    "make_surveys",
    "make_reviews",
    "ticket_columns",
    "survey_table",
    "complaint_state",
    "day_weights",
]
