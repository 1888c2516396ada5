"""The demo world behind the generator: technicians, customers, tickets, complaints, surveys, training.

Everything is drawn with numpy, column by column (loops run per day, per month, per training session,
never per row). Times are int64 seconds of naive local (Asia/Shanghai) wall time counted from
1970-01-01 00:00:00; -1 marks "no value".

The latent truth that makes rankings meaningful:
    skill     per technician, N(0, 1): drives durations, first-time fix, reopen, technical score,
              supervisor score, complaint risk;
    attitude  per technician, 0.6 * skill + 0.8 * N(0, 1): drives attitude / overall scores, NPS, complaints;
    boosts    training effect: an attended, passed session raises skill / attitude / speed for the
              course's indicators from the day after the session ends (for ~75 % of attendees).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DAY = 86_400
HOUR = 3_600
NULL = -1

REGIONS = ("华东", "华北", "华南", "西南", "华中")
CITIES = {
    "华东": ("上海", "杭州", "南京", "苏州", "宁波"),
    "华北": ("北京", "天津", "石家庄", "太原"),
    "华南": ("广州", "深圳", "厦门", "南宁"),
    "西南": ("成都", "重庆", "昆明", "贵阳"),
    "华中": ("武汉", "长沙", "郑州", "南昌"),
}
SURNAMES = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪"
)
GIVEN = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国文红志海斌鹏飞辉波宁俊晨浩宇欣怡婷雪梅林峰鑫亮成龙东丹琳萍晶颖博凯佳嘉思雨新"
)
CN_DIGITS = "零一二三四五六七八九十"
PRODUCT_CATEGORIES = (
    ("空调", "KFR"),
    ("冰箱", "BCD"),
    ("洗衣机", "XQG"),
    ("热水器", "JSQ"),
    ("电视", "LED"),
    ("净水器", "JSJ"),
    ("油烟机", "CXW"),
    ("燃气灶", "JZT"),
)
SERVICE_P = {"repair": 0.5, "maintenance": 0.2, "technical_support": 0.2, "installation": 0.1}
SERVICE_BASE_HOURS = np.array([20.0, 10.0, 3.0, 8.0])  # median resolution hours, same order as SERVICE_P
PRIORITY_P = {"P1": 0.1, "P2": 0.25, "P3": 0.4, "P4": 0.25}
PRIORITY_FACTOR = np.array([0.25, 0.5, 1.0, 1.6])
RESPONSE_BASE_HOURS = np.array([0.3, 0.75, 1.5, 3.0])
CHANNEL_P = {"phone": 0.35, "web": 0.1, "app": 0.2, "wechat": 0.25, "walk_in": 0.05, "email": 0.05}
SURVEY_COMMENTS = (
    ("非常不满意，问题没有解决", "师傅迟到很久", "态度很差", "来了两次还没修好"),
    ("不太满意，等了太久", "维修质量一般", "沟通不顺畅", "收费不透明"),
    ("一般", "还行，速度可以再快点", "问题解决了但过程较慢", "服务中规中矩"),
    ("满意，师傅很专业", "响应及时", "服务不错", "修好了，谢谢"),
    ("非常满意，师傅专业又耐心", "上门准时，讲解清楚", "五星好评", "一次就修好了，点赞"),
)
REVIEW_COMMENTS = (
    "需要改进，客户投诉较多",
    "基本合格，技术需加强",
    "表现稳定",
    "表现良好，客户评价高",
    "表现优秀，可作为标杆",
)

# training courses (constant catalogue): id, title, topic, hours, indicators, is_onboarding
COURSES = (
    (
        "TC01",
        "新员工入职培训",
        "service",
        16.0,
        "service_attitude;first_response_time;sla_attainment;complaint_rate",
        True,
    ),
    (
        "TC02",
        "空调故障诊断与维修",
        "technical",
        24.0,
        "mttr;avg_handling_time;first_time_fix_rate;technical_level",
        False,
    ),
    ("TC03", "一次修复率提升工作坊", "technical", 8.0, "first_time_fix_rate;reopen_rate;technical_level", False),
    ("TC04", "客户沟通与服务礼仪", "service", 8.0, "csat;customer_rating;service_attitude;nps", False),
    (
        "TC05",
        "投诉处理与情绪管理",
        "service",
        12.0,
        "complaint_acceptance_time;problem_resolution_rate;complaint_rate;csat",
        False,
    ),
    ("TC06", "SLA与工单时效管理", "management", 6.0, "sla_attainment;first_response_time;avg_handling_time", False),
    ("TC07", "班组长管理能力提升", "management", 16.0, "supervisor_review;problem_resolution_rate", False),
    ("TC08", "新品安装与调试", "technical", 12.0, "avg_handling_time;first_time_fix_rate;technical_level", False),
)
TRAINERS = ("周明", "李慧", "王建华", "陈思远", "赵敏")
# which latent aspect an indicator code improves: 0 skill, 1 attitude, 2 speed
INDICATOR_ASPECT = {
    "mttr": 0,
    "avg_handling_time": 0,
    "first_time_fix_rate": 0,
    "technical_level": 0,
    "reopen_rate": 0,
    "problem_resolution_rate": 0,
    "supervisor_review": 0,
    "csat": 1,
    "customer_rating": 1,
    "service_attitude": 1,
    "nps": 1,
    "complaint_rate": 1,
    "complaint_acceptance_time": 1,
    "first_response_time": 2,
    "sla_attainment": 2,
}


@dataclass(frozen=True)
class Tier:
    name: str
    technicians: int
    teams: int
    tickets_per_year: int
    customers: int
    products: int
    purchases: int
    event_format: str  # csv | parquet


TIERS: dict[str, Tier] = {
    "S": Tier("S", 40, 5, 40_000, 5_000, 60, 8_000, "csv"),
    "M": Tier("M", 500, 50, 1_000_000, 100_000, 200, 160_000, "parquet"),
    "L": Tier("L", 5_000, 500, 10_000_000, 1_000_000, 1_000, 1_600_000, "parquet"),
}


def epoch_seconds(d: date) -> int:
    return (d - date(1970, 1, 1)).days * DAY


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, 1)


def ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """'T0001'-style identifiers from integers, built in Arrow (no Python loop)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers.astype(np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def ts(seconds: np.ndarray) -> pa.Array:
    """Naive local timestamps (seconds), -1 -> null."""
    return pa.array(seconds.astype(np.int64), type=pa.timestamp("s"), mask=seconds < 0)


def dates(days_since_epoch: np.ndarray) -> pa.Array:
    return pa.array(days_since_epoch.astype(np.int32), type=pa.date32(), mask=days_since_epoch < 0)


def pick(rng: np.random.Generator, options: dict[str, float] | tuple, n: int) -> np.ndarray:
    p = np.array(list(options.values())) if isinstance(options, dict) else None
    k = len(options)
    return rng.choice(k, size=n, p=p)


def take(values: tuple | list | pa.Array, idx: np.ndarray) -> pa.Array:
    arr = values if isinstance(values, pa.Array) else pa.array(list(values), type=pa.string())
    return arr.take(pa.array(idx.astype(np.int64)))


def chinese_names(rng: np.random.Generator, n: int) -> pa.Array:
    s = take(SURNAMES, rng.integers(len(SURNAMES), size=n))
    g1 = take(GIVEN, rng.integers(len(GIVEN), size=n))
    g2 = take(GIVEN, rng.integers(len(GIVEN), size=n))
    two = pc.binary_join_element_wise(s, g1, g2, "")
    one = pc.binary_join_element_wise(s, g1, "")
    return pc.if_else(pa.array(rng.random(n) < 0.35), one, two)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def cn_number(k: int) -> str:
    if k <= 10:
        return CN_DIGITS[k]
    if k < 20:
        return "十" + CN_DIGITS[k - 10]
    if k < 100:
        return CN_DIGITS[k // 10] + "十" + (CN_DIGITS[k % 10] if k % 10 else "")
    return str(k)


@dataclass
class Window:
    start: date
    months: int

    @property
    def end(self) -> date:  # exclusive
        return add_months(self.start, self.months)

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days

    @property
    def t0(self) -> int:
        return epoch_seconds(self.start)

    @property
    def t_end(self) -> int:  # last second inside the window
        return epoch_seconds(self.end) - 1

    @property
    def day0(self) -> int:  # days since epoch of start
        return self.t0 // DAY


@dataclass
class Staff:
    """Technicians and their latent traits; days are relative to the window start."""

    n: int
    tech_id: pa.Array
    name: pa.Array
    team: np.ndarray
    skill: np.ndarray
    attitude: np.ndarray
    hire_day: np.ndarray
    leave_day: np.ndarray  # n_days + 10_000 when not leaving
    level: np.ndarray
    new_hire: np.ndarray
    mover: int
    move_day: int
    new_team: int
    leaver: int
    weight: np.ndarray
    n_teams: int
    team_id: pa.Array = field(repr=False, default=None)
    team_name: pa.Array = field(repr=False, default=None)
    team_region: np.ndarray = field(repr=False, default=None)
    manager_id: pa.Array = field(repr=False, default=None)

    def active_on(self, day: int) -> np.ndarray:
        return (self.hire_day <= day) & (self.leave_day > day)


def make_staff(rng: np.random.Generator, tier: Tier, w: Window) -> Staff:
    n, nd = tier.technicians, w.n_days
    skill = rng.normal(0.0, 1.0, n)
    attitude = 0.6 * skill + 0.8 * rng.normal(0.0, 1.0, n)
    n_new = max(3, round(0.08 * n))
    new_hire = np.zeros(n, dtype=bool)
    new_hire[n - n_new :] = True
    hire_day = -rng.integers(60, 3650, size=n)
    hire_day[new_hire] = np.sort(rng.integers(7, max(8, nd - 40), size=n_new))
    skill[new_hire] -= 0.6
    tenure_years = (nd - hire_day) / 365.0
    level_score = 0.7 * skill + 0.25 * np.log1p(tenure_years) + 0.3 * rng.normal(0, 1, n)
    level = np.searchsorted(np.quantile(level_score, [0.3, 0.65, 0.9]), level_score)
    team = rng.permutation(n) % tier.teams
    existing = np.flatnonzero(~new_hire)
    leaver, mover = (int(x) for x in rng.choice(existing, size=2, replace=False))
    leave_day = np.full(n, nd + 10_000)
    leave_day[leaver] = int(rng.integers(int(nd * 0.4), int(nd * 0.6)))
    move_day = int(rng.integers(int(nd * 0.45), int(nd * 0.6)))
    new_team = int((team[mover] + 1) % tier.teams)
    weight = rng.lognormal(0.0, 0.25, n)
    st = Staff(
        n,
        ids("T", np.arange(1, n + 1), 4),
        chinese_names(rng, n),
        team,
        skill,
        attitude,
        hire_day,
        leave_day,
        level,
        new_hire,
        mover,
        move_day,
        new_team,
        leaver,
        weight,
        tier.teams,
    )
    k = np.arange(tier.teams)
    st.team_id = ids("TM", k + 1, 3)
    st.team_region = k % len(REGIONS)
    st.team_name = pa.array([f"{REGIONS[i % len(REGIONS)]}维修{cn_number(i // len(REGIONS) + 1)}组" for i in k])
    st.manager_id = ids("M", k + 1, 3)
    return st


def technician_table(st: Staff, w: Window) -> pa.Table:
    """Roster as known on the first day (the leaver without leave_date, the move not yet known)."""
    n = st.n
    hire = dates(w.day0 + st.hire_day)
    upd = np.full(n, w.t0 - DAY + 9 * HOUR)
    return pa.table(
        {
            "technician_id": st.tech_id,
            "name": st.name,
            "team_id": take(st.team_id, st.team),
            "team_name": take(st.team_name, st.team),
            "region": take(REGIONS, st.team_region[st.team]),
            "level": take(("junior", "intermediate", "senior", "expert"), st.level),
            "hire_date": hire,
            "leave_date": dates(np.full(n, -1)),
            "manager_id": take(st.manager_id, st.team),
            "valid_from": hire,
            "updated_at": ts(upd),
        }
    )


def technician_change(st: Staff, w: Window, who: int, kind: str) -> pa.Table:
    """One roster change row: 'move' (new row, later valid_from, new team) or 'leave' (leave_date set)."""
    base = technician_table(st, w).take([who])
    if kind == "move":
        day = st.move_day
        team = st.new_team
        cols = {
            "team_id": take(st.team_id, np.array([team])),
            "team_name": take(st.team_name, np.array([team])),
            "region": take(REGIONS, st.team_region[[team]]),
            "manager_id": take(st.manager_id, np.array([team])),
            "valid_from": dates(np.array([w.day0 + day])),
        }
    else:
        day = int(st.leave_day[who])
        cols = {"leave_date": dates(np.array([w.day0 + day]))}
    cols["updated_at"] = ts(np.array([w.t0 + day * DAY + 10 * HOUR]))
    for name, arr in cols.items():
        base = base.set_column(base.schema.get_field_index(name), name, arr)
    return base


@dataclass
class Catalogue:
    customers: pa.Table
    products: pa.Table
    purchases: pa.Table
    complexity: np.ndarray
    purchase_customer: np.ndarray
    purchase_product: np.ndarray


def make_catalogue(rng: np.random.Generator, tier: Tier, w: Window) -> Catalogue:
    nc, npr, npu = tier.customers, tier.products, tier.purchases
    region = rng.integers(len(REGIONS), size=nc)
    city_idx = rng.integers(4, size=nc)
    city_flat = [c for r in REGIONS for c in CITIES[r][:4]]
    cust_created = w.t0 - rng.integers(30 * DAY, 1825 * DAY, size=nc)
    prefixes = np.array([130, 131, 132, 135, 136, 137, 138, 139, 150, 151, 152, 158, 159, 186, 187, 188, 189])
    phone = prefixes[rng.integers(len(prefixes), size=nc)] * 100_000_000 + rng.integers(0, 100_000_000, size=nc)
    customers = pa.table(
        {
            "customer_id": ids("C", np.arange(1, nc + 1), 7),
            "name": chinese_names(rng, nc),
            "phone": pc.cast(pa.array(phone), pa.string()),
            "city": take(city_flat, region * 4 + city_idx),
            "segment": take(("consumer", "business", "government"), rng.choice(3, size=nc, p=[0.8, 0.17, 0.03])),
            "created_at": ts(cust_created),
            "updated_at": ts(cust_created),
        }
    )
    cat = rng.integers(len(PRODUCT_CATEGORIES), size=npr)
    complexity = rng.choice(3, size=npr, p=[0.35, 0.4, 0.25]) + 1
    model_no = pc.cast(pa.array(rng.integers(20, 99, size=npr) * 10 + complexity), pa.string())
    suffix = take(("A", "B", "C", "D", "E", "F"), rng.integers(6, size=npr))
    products = pa.table(
        {
            "product_id": ids("P", np.arange(1, npr + 1), 4),
            "category": take([c for c, _ in PRODUCT_CATEGORIES], cat),
            "model": pc.binary_join_element_wise(take([p for _, p in PRODUCT_CATEGORIES], cat), model_no, suffix, "-"),
            "complexity": pa.array(complexity.astype(np.int64)),
            "updated_at": ts(np.full(npr, w.t0 - 30 * DAY + 9 * HOUR)),
        }
    )
    pcust = rng.integers(nc, size=npu)
    pprod = rng.integers(npr, size=npu)
    created = cust_created[pcust]
    bought = created + (rng.random(npu) * (w.t0 - DAY - created)).astype(np.int64)
    years = rng.choice([1, 2, 3], size=npu, p=[0.5, 0.3, 0.2])
    amount = np.round(rng.lognormal(np.log(3500), 0.6, size=npu), 2)
    purchases = pa.table(
        {
            "purchase_id": ids("PU", np.arange(1, npu + 1), 7),
            "customer_id": take(customers.column("customer_id").combine_chunks(), pcust),
            "product_id": take(products.column("product_id").combine_chunks(), pprod),
            "purchased_at": ts(bought),
            "warranty_until": dates(bought // DAY + 365 * years),
            "amount": pa.array(amount),
            "updated_at": ts(bought),
        }
    )
    return Catalogue(customers, products, purchases, complexity, pcust, pprod)


@dataclass
class Training:
    courses: pa.Table
    sessions: pa.Table
    attendance: pa.Table
    boosts: np.ndarray  # (3 aspects, technicians, n_days + 1): cumulative boost per day
    onboarded: np.ndarray  # bool per technician
    skipped_onboarding: int  # a new hire deliberately never enrolled in onboarding
    behind_schedule: str
    cancelled: str


def make_training(rng: np.random.Generator, tier: Tier, st: Staff, w: Window) -> Training:
    nd = w.n_days
    courses = pa.table(
        {
            "course_id": pa.array([c[0] for c in COURSES]),
            "title": pa.array([c[1] for c in COURSES]),
            "topic": pa.array([c[2] for c in COURSES]),
            "hours": pa.array([c[3] for c in COURSES]),
            "indicators": pa.array([c[4] for c in COURSES]),
            "is_onboarding": pa.array([c[5] for c in COURSES]),
        }
    )
    capacity = 20 if st.n < 200 else 30
    # sessions: (course index, start day, status); onboarding once a month mid-month, others spread
    s_course: list[np.ndarray] = []
    s_day: list[np.ndarray] = []
    onboarding_days = np.array([(add_months(w.start, m) - w.start).days + 14 for m in range(w.months)])
    s_course.append(np.zeros(len(onboarding_days), dtype=np.int64))
    s_day.append(onboarding_days)
    per_course = max(2, int(np.ceil(st.n * 0.2 / capacity)))
    for ci in range(1, len(COURSES)):
        s_course.append(np.full(per_course, ci))
        s_day.append(np.sort(rng.integers(5, nd - 5, size=per_course)))
    course = np.concatenate(s_course)
    day = np.concatenate(s_day)
    status = np.where(day + 3 < nd, 0, 1)  # 0 held, 1 planned, 2 cancelled
    past_other = np.flatnonzero((course > 0) & (status == 0))
    behind, cancelled = rng.choice(past_other, size=2, replace=False)
    status[behind] = 1  # planned, date passed, not held: behind schedule
    status[cancelled] = 2
    fut_courses = rng.choice(np.arange(1, len(COURSES)), size=3, replace=False)
    course = np.concatenate([course, fut_courses])
    day = np.concatenate([day, nd + 35 + 14 * np.arange(3)])
    status = np.concatenate([status, np.ones(3, dtype=np.int64)])
    order = np.lexsort((course, day))
    course, day, status = course[order], day[order], status[order]
    behind_i, cancelled_i = int(np.flatnonzero(order == behind)[0]), int(np.flatnonzero(order == cancelled)[0])
    ns = len(course)
    # weekends -> next Monday
    dow = (w.day0 + day + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    day = day + np.where(dow >= 5, 7 - dow, 0)
    hours = np.array([c[3] for c in COURSES])[course]
    span_days = np.ceil(hours / 8).astype(np.int64) - 1
    starts = w.t0 + day * DAY + 9 * HOUR
    ends = w.t0 + (day + span_days) * DAY + 17 * HOUR
    session_id = ids("TS", np.arange(1, ns + 1), 4)
    sessions = pa.table(
        {
            "session_id": session_id,
            "course_id": take([c[0] for c in COURSES], course),
            "starts_at": ts(starts),
            "ends_at": ts(ends),
            "trainer": take(TRAINERS, rng.integers(len(TRAINERS), size=ns)),
            "capacity": pa.array(np.full(ns, capacity, dtype=np.int64)),
            "status": take(("held", "planned", "cancelled"), status),
            "updated_at": ts(np.where(status == 0, ends + HOUR, w.t0 - DAY + 9 * HOUR)),
        }
    )
    # attendance for held sessions (loop per session)
    boosts_delta = np.zeros((3, st.n, nd + 2), dtype=np.float32)
    onboarded = np.zeros(st.n, dtype=bool)
    new_ids = np.flatnonzero(st.new_hire)
    skipped = int(new_ids[0])
    a_sess, a_tech = [], []
    for s in np.flatnonzero(status == 0):
        d = int(day[s])
        active = st.active_on(d)
        if course[s] == 0:
            cand = np.flatnonzero(active & st.new_hire & ~onboarded)
            cand = cand[cand != skipped][:capacity]
            onboarded[cand] = True
        else:
            cand = np.flatnonzero(active)
            p = np.exp(-0.5 * st.skill[cand])
            k = min(len(cand), int(capacity * 0.8))
            cand = np.sort(rng.choice(cand, size=k, replace=False, p=p / p.sum()))
        a_sess.append(np.full(len(cand), s))
        a_tech.append(cand)
    a_s = np.concatenate(a_sess)
    a_t = np.concatenate(a_tech)
    na = len(a_s)
    attended = rng.random(na) < 0.92
    pre = np.clip(np.round(rng.normal(58 + 5 * st.skill[a_t], 12), 1), 0, 100)
    post = np.clip(np.round(pre + rng.normal(14, 8, na), 1), 0, 100)
    passed = post >= 70
    feedback = np.clip(np.round(rng.normal(4.1, 0.7, na)), 1, 5).astype(np.int64)
    attendance = pa.table(
        {
            "session_id": session_id.take(pa.array(a_s)),
            "technician_id": st.tech_id.take(pa.array(a_t)),
            "attended": pa.array(attended),
            "pre_score": pa.array(pre, mask=~attended),
            "post_score": pa.array(post, mask=~attended),
            "passed": pa.array(passed, mask=~attended),
            "feedback_score": pa.array(feedback, mask=~attended),
        }
    )
    # training effect: attended + passed, 75 % of them improve on the course's indicators
    effect = attended & passed & (rng.random(na) < 0.75)
    size = rng.uniform(0.25, 0.6, na).astype(np.float32)
    aspects = np.zeros((len(COURSES), 3), dtype=bool)
    for ci, c in enumerate(COURSES):
        for code in c[4].split(";"):
            aspects[ci, INDICATOR_ASPECT[code]] = True
    eff_day = np.minimum(day[a_s] + span_days[a_s] + 1, nd + 1)
    for a in range(3):
        m = effect & aspects[course[a_s], a]
        np.add.at(boosts_delta[a], (a_t[m], eff_day[m]), size[m])
    boosts = np.cumsum(boosts_delta, axis=2)
    return Training(
        courses,
        sessions,
        attendance,
        boosts,
        onboarded,
        skipped,
        str(session_id[behind_i]),
        str(session_id[cancelled_i]),
    )


@dataclass
class TicketDraw:
    """Latent outcome of tickets, in hours after created_at."""

    resp_h: np.ndarray
    res_h: np.ndarray
    close_h: np.ndarray  # hours after resolved; inf = never closed
    cancel_h: np.ndarray  # inf = not cancelled
    ftf: np.ndarray
    visits: np.ndarray
    reopened: np.ndarray


def draw_ticket_outcomes(
    rng: np.random.Generator,
    sk: np.ndarray,
    sp: np.ndarray,
    service: np.ndarray,
    priority: np.ndarray,
    complexity: np.ndarray,
) -> TicketDraw:
    n = len(sk)
    cx = complexity - 2.0
    mu = np.log(SERVICE_BASE_HOURS[service] * PRIORITY_FACTOR[priority]) + 0.25 * cx - 0.35 * sk - 0.1 * sp
    res_h = np.exp(mu + rng.normal(0, 0.7, n))
    stuck = rng.random(n) < 0.02  # waiting for parts: stays open
    res_h = np.where(stuck, res_h + 24 * rng.uniform(200, 400, n), res_h)
    resp_h = np.exp(np.log(RESPONSE_BASE_HOURS[priority]) - 0.25 * sp + rng.normal(0, 0.6, n))
    resp_h = np.minimum(resp_h, 0.8 * res_h)
    resp_h = np.where(stuck & (rng.random(n) < 0.4), 0.9 * res_h, resp_h)  # never dispatched: stays open
    close_h = np.where(rng.random(n) < 0.9, rng.lognormal(np.log(30), 0.6, n), np.inf)
    cancel_h = np.where(rng.random(n) < 0.03, rng.lognormal(np.log(6), 1.0, n), np.inf)
    p_ftf = sigmoid(1.0 + 0.7 * sk - 0.5 * cx + np.where(service == 0, 0.0, 1.0))
    ftf = rng.random(n) < p_ftf
    visits = np.where(service == 2, (rng.random(n) < 0.1).astype(np.int64), np.where(ftf, 1, 2 + (rng.random(n) < 0.3)))
    reopen = rng.random(n) < sigmoid(-2.6 - 0.6 * sk + 0.3 * cx)
    reopened = reopen * (1 + (rng.random(n) < 0.15))
    return TicketDraw(resp_h, res_h, close_h, cancel_h, ftf, visits.astype(np.int64), reopened.astype(np.int64))


def ticket_state(created: np.ndarray, d: TicketDraw, cutoff: np.ndarray | int) -> dict[str, np.ndarray]:
    """The ticket as its source system shows it at `cutoff` (seconds); times -1 when not reached."""
    resp = created + (d.resp_h * HOUR).astype(np.int64)
    res = created + (d.res_h * HOUR).astype(np.int64)
    close = np.where(
        np.isfinite(d.close_h),
        res + (np.nan_to_num(d.close_h, posinf=0) * HOUR).astype(np.int64),
        np.iinfo(np.int64).max,
    )
    cancel = np.where(
        np.isfinite(d.cancel_h),
        created + (np.nan_to_num(d.cancel_h, posinf=0) * HOUR).astype(np.int64),
        np.iinfo(np.int64).max,
    )
    is_cancel = cancel <= cutoff
    # a cancelled ticket never resolves; it was cancelled before resolution
    is_cancel_path = np.isfinite(d.cancel_h)
    closed = ~is_cancel_path & (close <= cutoff)
    resolved = ~is_cancel_path & (res <= cutoff)
    responded = resp <= np.where(is_cancel_path, np.minimum(cancel, cutoff), cutoff)
    status = np.select([is_cancel, closed, resolved, responded], [4, 3, 2, 1], 0)  # 0 open
    updated = np.select([is_cancel, closed, resolved, responded], [cancel, close, res, resp], created)
    fin = resolved
    return {
        "first_response_at": np.where(responded, resp, NULL),
        "resolved_at": np.where(resolved, res, NULL),
        "closed_at": np.where(closed, close, NULL),
        "updated_at": updated,
        "status": status,
        "onsite_visits": np.where(fin, d.visits, np.where(responded & ~is_cancel, np.minimum(d.visits, 1), 0)),
        "first_time_fix": fin & d.ftf,
        "has_fix": fin,
        "reopened_count": np.where(fin, d.reopened, 0),
    }
