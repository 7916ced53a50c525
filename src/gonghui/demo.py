"""Demo data for ``make run``: a province federation, its cities, districts and grassroots
unions, staff accounts with printed passwords, a generated roster, and a living platform:
activities of every everyday kind running in Guangzhou, a past vote's published result,
a published notice, a BaaS app with a table, a function and its trigger, the money side
(a help-the-farmers mall sale with products on the shelf, a consumer-voucher grab, a
partner merchant with a cashier account), and a demo member who signs in on the H5 with
a printed phone number and draws within a minute."""

from __future__ import annotations

import io
import os
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gonghui.accounts.identities import WeChatIdentity, user_for_phone, user_for_wechat
from gonghui.accounts.models import Provider
from gonghui.accounts.principal import MemberInfo
from gonghui.accounts.service import create_staff_user
from gonghui.activities import service as activities
from gonghui.activities.models import Activity
from gonghui.activities.quiz import bank
from gonghui.activities.quiz.schemas import QuestionCreate
from gonghui.activities.schemas import ActivityCreate
from gonghui.activities.vote import candidates, cast, results
from gonghui.baas import apps as baas_apps
from gonghui.baas.functions import gallery
from gonghui.baas.schemas import FieldSpec
from gonghui.baas.tables import schema as baas_tables
from gonghui.baas.tables.types import FieldType
from gonghui.clock import now
from gonghui.mall import catalog as mall
from gonghui.mall.schemas import ProductCreate
from gonghui.members import service as members
from gonghui.members.models import ImportJob
from gonghui.merchants import service as merchants
from gonghui.news import service as news
from gonghui.news.models import NewsKind
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Org, OrgLevel, Role
from gonghui.settings import get_settings
from gonghui.tenancy import SYSTEM

# (code, name, region code, districts)
CITIES = [
    ("GZ", "广州市总工会", "440100", [("TH", "天河区"), ("YX", "越秀区"), ("HZ", "海珠区")]),
    ("SZ", "深圳市总工会", "440300", [("NS", "南山区"), ("FT", "福田区"), ("LG", "龙岗区")]),
    ("FS", "佛山市总工会", "440600", [("CC", "禅城区"), ("NH", "南海区")]),
    ("DG", "东莞市总工会", "441900", [("DC", "东城街道"), ("SL", "松山湖")]),
]
GRASSROOTS = ["机关工会", "科技园联合工会", "医院工会", "制造企业工会"]


@dataclass
class DemoResult:
    org_codes: list[str] = field(default_factory=list)
    accounts: list[tuple[str, str, str]] = field(default_factory=list)  # username, password, role


# The demo member: on the roster of a Guangzhou grassroots union, verified, signing in on
# the H5 by this phone (the development SMS sink shows the code on the page).
DEMO_MEMBER_NAME = "王芳"
DEMO_MEMBER_PHONE = "13800138000"
DEMO_MEMBER_ID_NUMBER = "440106199003071020"
DEMO_MEMBER_ORG = "GZ-TH-01"
DEMO_ORG = "GZ"


DEMO_APP = "职工之家"
# Every demo activity's points budget: the app's award-points function pays the 10 points
# of each member who takes part from it (points a function issues always draw on the
# activity's budget), and so do the lottery's points prizes.
DEMO_POINTS_BUDGET = 1_000_000
DEMO_NEWS = "广州市总工会开展“一月一活动”普惠服务"


@dataclass(frozen=True)
class LivingPlatform:
    activities: list[tuple[str, str]]  # title, kind
    member: tuple[str, str, str]  # name, phone, ID number
    app: str  # the BaaS app a developer opens in the console
    news: str  # the published notice members read on the H5


def is_seeded(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(Org)))


def seed_orgs_and_staff(session: Session) -> DemoResult:
    result = DemoResult()
    province = orgs.create_org(
        session,
        actor=SYSTEM,
        code="GD",
        name="广东省总工会",
        level=OrgLevel.PROVINCE,
        parent_id=None,
        region_code="440000",
    )
    result.org_codes.append(province.code)
    for code, name, region, districts in CITIES:
        city = orgs.create_org(
            session,
            actor=SYSTEM,
            code=code,
            name=name,
            level=OrgLevel.CITY,
            parent_id=province.id,
            region_code=region,
        )
        result.org_codes.append(city.code)
        for dcode, dname in districts:
            district = orgs.create_org(
                session,
                actor=SYSTEM,
                code=f"{code}-{dcode}",
                name=f"{dname}总工会",
                level=OrgLevel.DISTRICT,
                parent_id=city.id,
            )
            result.org_codes.append(district.code)
            for i, gname in enumerate(GRASSROOTS, start=1):
                leaf = orgs.create_org(
                    session,
                    actor=SYSTEM,
                    code=f"{code}-{dcode}-{i:02d}",
                    name=f"{dname}{gname}",
                    level=OrgLevel.GRASSROOTS,
                    parent_id=district.id,
                )
                result.org_codes.append(leaf.code)

    def staff(username: str, org: Org | None, role: Role | None, admin: bool = False) -> None:
        password = secrets.token_urlsafe(9)
        user = create_staff_user(
            session, username=username, password=password, is_platform_admin=admin
        )
        if org is not None and role is not None:
            orgs.grant_role(session, actor=SYSTEM, org_id=org.id, user_id=user.id, role=role)
        result.accounts.append((username, password, "platform admin" if admin else f"{role}"))

    by_code = {o.code: o for o in session.scalars(select(Org))}
    staff("admin", None, None, admin=True)
    staff("gd_admin", by_code["GD"], Role.ADMIN)
    staff("gd_auditor", by_code["GD"], Role.AUDITOR)
    staff("gz_operator", by_code["GZ"], Role.OPERATOR)
    staff("sz_operator", by_code["SZ"], Role.OPERATOR)
    staff("gd_developer", by_code["GD"], Role.DEVELOPER)
    return result


def roster_csv(count: int, org_codes: list[str], *, seed: int = 2026) -> bytes:
    """A generated roster: valid GB 11643 numbers (distinct), names, phones, spread over
    ``org_codes``. Deterministic for a seed."""
    import io
    import random

    from gonghui.members.idnumber import check_character

    rnd = random.Random(seed)
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
    given = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国志文斌辉"
    regions = ("440103", "440104", "440105", "440106", "440305", "440304", "440604", "441900")
    out = io.StringIO()
    out.write("姓名,身份证号,手机号,会员号,工会编码,入会日期\n")
    seen: set[str] = set()
    while len(seen) < count:
        first17 = (
            f"{rnd.choice(regions)}{rnd.randint(1965, 2003):04d}"
            f"{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{rnd.randint(0, 999):03d}"
        )
        if first17 in seen:
            continue
        seen.add(first17)
        i = len(seen)
        name = rnd.choice(surnames) + "".join(rnd.choices(given, k=rnd.choice((1, 2))))
        phone = f"1{rnd.choice('3578')}{rnd.randint(0, 999_999_999):09d}"
        joined = f"{rnd.randint(2000, 2025)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        code = org_codes[i % len(org_codes)]
        out.write(f"{name},{first17}{check_character(first17)},{phone},M{i:06d},{code},{joined}\n")
    return out.getvalue().encode()


def seed_roster(count: int = 10_000) -> ImportJob:
    """Seed ``count`` roster entries over the grassroots unions, through the bulk import."""
    import io

    from gonghui.db import unit_of_work
    from gonghui.members import roster_import

    with unit_of_work() as session:
        province = session.scalar(select(Org).where(Org.code == "GD"))
        assert province is not None, "seed the orgs first"
        leaves = list(
            session.scalars(
                select(Org.code).where(Org.level == OrgLevel.GRASSROOTS).order_by(Org.id)
            )
        )
        data = roster_csv(count, leaves)
        job_id = roster_import.create_job(
            session,
            actor=SYSTEM,
            org_id=province.id,
            filename="demo-roster.csv",
            bytes_total=len(data),
        ).id
    return roster_import.run_import(job_id=job_id, actor=SYSTEM, source=io.BytesIO(data))


_QUESTIONS = [
    ("single", "《中华人民共和国工会法》最早于哪一年颁布？", ["1950年", "1992年", "2001年"], [0]),
    ("true_false", "会员有权参加工会组织的各项活动。", ["对", "错"], [0]),
    ("multiple", "工会的基本职责包括哪些？", ["维护职工权益", "服务职工群众", "经营企业"], [0, 1]),
    ("single", "每年的哪一天是国际劳动节？", ["5月1日", "3月8日", "10月1日"], [0]),
    ("true_false", "工会会员可以享受工会提供的普惠服务。", ["对", "错"], [0]),
]  # fmt: skip


def _activity(
    session: Session,
    org: Org,
    title: str,
    config: dict[str, Any],
    *,
    starts_in: timedelta,
    nominees: tuple[str, ...] = ("陈师傅", "李工匠", "张护士"),
    budget_cents: int | None = None,
) -> Activity:
    start = now() + starts_in
    data = ActivityCreate.model_validate(
        {
            "org_id": org.id,
            "title": title,
            "description": f"{org.name}为会员举办的{title}。",
            "starts_at": start,
            "ends_at": start + timedelta(days=30),
            "config": config,
            "budget_cents": budget_cents,
            "budget_points": DEMO_POINTS_BUDGET,
        }
    )
    activity = activities.create_activity(session, actor=SYSTEM, data=data)
    activities.publish(session, actor=SYSTEM, activity_id=activity.id)
    if config["kind"] == "vote":
        for name in nominees:
            candidate = candidates.nominate(
                session,
                actor=SYSTEM,
                activity_id=activity.id,
                org_id=org.id,
                fields=candidates.CandidateFields(
                    name=name, profile=f"{name}扎根一线二十年，带出了一支技术过硬的队伍。"
                ),
            )
            candidates.review(
                session,
                actor=SYSTEM,
                activity_id=activity.id,
                candidate_id=candidate.id,
                approve=True,
                reason=None,
            )
    return activity


def seed_living_platform(session: Session) -> LivingPlatform:
    """Guangzhou's everyday activities (a lottery, a quiz, a quiz + lottery, a praise vote,
    one starting in three days), its question bank, and the verified demo member."""
    by_code = {o.code: o for o in session.scalars(select(Org))}
    gz = by_code[DEMO_ORG]
    for kind, text, options, answer in _QUESTIONS:
        bank.create_question(
            session,
            actor=SYSTEM,
            org_id=gz.id,
            data=QuestionCreate.model_validate(
                {"kind": kind, "text": text, "options": options, "answer": answer}
            ),
        )
    points = {"name": "100积分", "kind": "points", "weight": 3, "stock": 5000, "value": 100}
    voucher = {"name": "10元消费券", "kind": "voucher", "weight": 1, "stock": 500, "value": 1000}
    designs: list[tuple[str, dict[str, Any], timedelta]] = [
        (
            "工会暖心抽奖",
            {"kind": "lottery", "lottery": {"prizes": [points, voucher], "free_draws_per_day": 3}},
            timedelta(hours=-1),
        ),
        (
            "工会法知识竞答",
            {
                "kind": "quiz",
                "quiz": {
                    "question_count": 3,
                    "time_limit_s": 120,
                    "pass_score": 60,
                    "reward": {"type": "points", "points": 20},
                },
            },
            timedelta(hours=-1),
        ),
        (
            "学法答题抽好礼",
            {
                "kind": "quiz_lottery",
                "quiz": {
                    "question_count": 3,
                    "time_limit_s": 120,
                    "pass_score": 100,
                    "reward": {"type": "chances", "chances": 1},
                },
                "lottery": {"prizes": [voucher], "free_draws_per_day": 0},
            },
            timedelta(hours=-1),
        ),
        (
            "2026年度最美职工评选",
            {"kind": "vote", "vote": {"votes_per_day": 3, "votes_per_candidate_per_day": 1}},
            timedelta(hours=-1),
        ),
        (
            "元旦迎新抽奖",
            {"kind": "lottery", "lottery": {"prizes": [points], "free_draws_per_day": 1}},
            timedelta(days=3),
        ),
    ]
    for title, config, starts_in in designs:
        _activity(session, gz, title, config, starts_in=starts_in)

    members.add_roster_entry(
        session,
        actor=SYSTEM,
        org_id=by_code[DEMO_MEMBER_ORG].id,
        name=DEMO_MEMBER_NAME,
        id_number=DEMO_MEMBER_ID_NUMBER,
        phone=DEMO_MEMBER_PHONE,
    )
    user = user_for_phone(session, phone=DEMO_MEMBER_PHONE)
    members.verify(session, user_id=user.id, name=DEMO_MEMBER_NAME, id_number=DEMO_MEMBER_ID_NUMBER)
    seed_baas_app(session, gz)
    news.publish_demo_item(
        session,
        gz,
        DEMO_NEWS,
        "<p>为让会员在家门口享受工会服务，市总工会本月推出暖心抽奖、工会法知识竞答、"
        "学法答题抽好礼和最美职工评选四项活动，全市已认证会员均可参加。</p>"
        "<p>参加方式：打开工会会员服务，在<strong>活动</strong>页选择感兴趣的活动即可。</p>",
        kind=NewsKind.NOTICE,
        pinned=True,
    )
    return LivingPlatform(
        activities=[(title, str(config["kind"])) for title, config, _ in designs],
        member=(DEMO_MEMBER_NAME, DEMO_MEMBER_PHONE, DEMO_MEMBER_ID_NUMBER),
        app=DEMO_APP,
        news=DEMO_NEWS,
    )


# The money side, in Guangzhou: a help-the-farmers mall sale whose subsidy members spend on
# produce from the regions Guangdong helps, a consumer-voucher grab open now, and a partner
# merchant whose cashier redeems the vouchers the union's lottery gives out.
DEMO_MALL_SALE = "助农消费月"
DEMO_VOUCHER_GRAB = "岁末暖心消费券"
DEMO_MERCHANT = "天河职工之家超市"
DEMO_CASHIER = "gz_cashier"
# name, origin region, description, image colour, SKUs (name, price in cents, stock)
DEMO_PRODUCTS: list[tuple[str, str, str, tuple[int, int, int], list[tuple[str, int, int]]]] = [
    (
        "百色芒果",
        "广西壮族自治区百色市",
        "右江河谷日照充足，树上自然成熟，产地直发。",
        (245, 180, 40),
        [("5斤装", 5990, 500), ("10斤装", 9900, 300)],
    ),
    (
        "毕节高山土豆",
        "贵州省毕节市",
        "海拔一千五百米以上的高山种植，粉糯香甜。",
        (176, 132, 84),
        [("10斤装", 3990, 800)],
    ),
    (
        "甘孜牦牛肉干",
        "四川省甘孜藏族自治州",
        "高原散养牦牛，风干手撕，合作社加工。",
        (140, 52, 40),
        [("250克", 6800, 400)],
    ),
]


@dataclass(frozen=True)
class MoneySide:
    sale: str  # the mall sale's title
    products: list[str]
    grab: str  # the voucher grab's title
    merchant: str
    cashier: tuple[str, str, str]  # username, password, role (as the staff accounts)


def _product_image(colour: tuple[int, int, int]) -> bytes:
    """A plain product picture (a fruit-like disc on a light ground), PNG."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 640), (250, 246, 238))
    ImageDraw.Draw(image).ellipse((140, 140, 500, 500), fill=colour)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def seed_money_side(session: Session) -> MoneySide:
    """Guangzhou's mall sale and its products, its voucher grab (the stock is opened at
    WeChat Pay by the task queue, as every grab's is), and a merchant with a cashier. The
    demo member is linked to the mini program, as after one sign-in there, so that WeChat
    Pay can pay from them and send them coupons."""
    by_code = {o.code: o for o in session.scalars(select(Org))}
    gz = by_code[DEMO_ORG]
    _activity(
        session,
        gz,
        DEMO_MALL_SALE,
        {"kind": "mall", "mall": {"subsidy_percent": 20, "member_cap_cents_per_month": 5000}},
        starts_in=timedelta(hours=-1),
        budget_cents=2_000_000,
    )
    for name, region, description, colour, skus in DEMO_PRODUCTS:
        image = mall.save_image(actor=SYSTEM, data=_product_image(colour))
        mall.create_product(
            session,
            actor=SYSTEM,
            data=ProductCreate.model_validate(
                {
                    "org_id": gz.id,
                    "name": name,
                    "origin_region": region,
                    "description": description,
                    "images": [image],
                    "skus": [
                        {"name": sku, "price_cents": price, "stock": stock}
                        for sku, price, stock in skus
                    ],
                    "on_shelf": True,
                }
            ),
        )
    stock = {
        "name": "满100减20",
        "coupon_amount_cents": 2000,
        "threshold_cents": 10000,
        "max_coupons": 1000,
        "max_per_member": 1,
    }
    _activity(
        session,
        gz,
        DEMO_VOUCHER_GRAB,
        {"kind": "voucher_grab", "voucher_grab": {"stocks": [stock]}},
        starts_in=timedelta(hours=-1),
    )
    merchant = merchants.create_merchant(
        session, actor=SYSTEM, org_id=gz.id, name=DEMO_MERCHANT, address="广州市天河区天河路100号"
    )
    password = secrets.token_urlsafe(9)
    merchants.add_cashier(
        session,
        actor=SYSTEM,
        merchant_id=merchant.id,
        username=DEMO_CASHIER,
        password=password,
        name="收银员小李",
    )
    user_for_wechat(
        session,
        who=WeChatIdentity(
            provider=Provider.WECHAT_MINI,
            app_id=get_settings().wechat_mp_appid,
            openid=f"o-demo-{secrets.token_hex(8)}",
            unionid=None,
            channel="mini",
            phone=DEMO_MEMBER_PHONE,
        ),
    )
    return MoneySide(
        sale=DEMO_MALL_SALE,
        products=[name for name, *_ in DEMO_PRODUCTS],
        grab=DEMO_VOUCHER_GRAB,
        merchant=DEMO_MERCHANT,
        cashier=(DEMO_CASHIER, password, f"cashier of {DEMO_MERCHANT}"),
    )


# A praise vote that has run, ended and had its result frozen and published: what the
# hub's 结果公示 and the public result page (with its verifiable vote log) show on a new
# installation. Its voters are roster members of Guangzhou's unions, generated like the
# roster (another seed) and verified; each casts the votes ``_votes_of`` gives it.
DEMO_RESULT_VOTE = "2025年度工会之星评选"
DEMO_RESULT_NOMINEES = ("刘班长", "周技师", "吴医生")
DEMO_VOTERS = 12


def _votes_of(voter: int) -> list[int]:
    """Which nominees (by position) voter ``voter`` votes for: 12, 6 and 4 votes in all."""
    return [n for n, every in enumerate((1, 2, 3)) if voter % every == 0]


def seed_published_vote(session: Session) -> tuple[str, int]:
    """Run the past praise vote through the services (nominate, verify voters, cast, end,
    freeze); returns its title and how many votes the published result counts."""
    gz = session.scalars(select(Org).where(Org.code == DEMO_ORG)).one()
    unions = {o.code: o for o in session.scalars(select(Org).where(Org.path.like(f"{gz.path}%")))}
    vote = {"kind": "vote", "vote": {"votes_per_day": 3, "votes_per_candidate_per_day": 1}}
    activity = _activity(
        session,
        gz,
        DEMO_RESULT_VOTE,
        vote,
        starts_in=timedelta(hours=-1),
        nominees=DEMO_RESULT_NOMINEES,
    )
    session.flush()
    nominees = sorted(c.id for c in candidates.approved(session, activity_id=activity.id))
    lines = roster_csv(DEMO_VOTERS, sorted(unions), seed=1225).decode().splitlines()[1:]
    for voter, line in enumerate(lines):
        name, id_number, phone, member_no, code, joined = line.split(",")
        org = unions[code]
        members.add_roster_entry(
            session,
            actor=SYSTEM,
            org_id=org.id,
            name=name,
            id_number=id_number,
            phone=phone,
            member_no=f"V{member_no}",
            join_date=date.fromisoformat(joined),
        )
        user = user_for_phone(session, phone=phone)
        membership = members.verify(session, user_id=user.id, name=name, id_number=id_number)
        member = MemberInfo(
            membership_id=membership.id,
            roster_entry_id=membership.roster_entry_id,
            org_id=org.id,
            org_path=org.path,
            tags=(),
            member_since=date.fromisoformat(joined),
            verified_at=membership.verified_at,
        )
        for n in _votes_of(voter):
            cast.cast(
                session,
                member=member,
                activity_id=activity.id,
                candidate_id=nominees[n],
                idempotency_key=None,
            )
    activities.end(session, actor=SYSTEM, activity_id=activity.id)
    result = results.freeze(session, actor=SYSTEM, activity_id=activity.id)
    return activity.title, result.entries - result.voided


def seed_baas_app(session: Session, org: Org) -> None:
    """A BaaS app of the city union: a table of members' suggestions that members write
    and staff read, and the gallery's points function with its trigger, so every member
    who takes part in one of the union's activities earns 10 points."""
    app, _keys = baas_apps.create_app(
        session, actor=SYSTEM, org_id=org.id, name=DEMO_APP, settings={}
    )
    baas_tables.create_table(
        session,
        actor=SYSTEM,
        app_id=app.id,
        name="suggestions",
        fields=[
            FieldSpec(name="title", type=FieldType.STRING, required=True, rules={"max_length": 60}),
            FieldSpec(name="content", type=FieldType.TEXT, required=True),
            FieldSpec(name="likes", type=FieldType.INTEGER, default=0, rules={"min": 0}),
        ],
        permissions={
            "read": ["creator", "staff:admin"],
            "create": ["members"],
            "update": ["creator"],
            "delete": ["staff:admin"],
        },
    )
    gallery.install(session, actor=SYSTEM, app_id=app.id, template="award-points")


def write_accounts(result: DemoResult, living: LivingPlatform) -> Path:
    """The staff passwords and the demo member, in a file of the data directory only its
    owner may read (0600): the table printed once is not the only copy."""
    path = get_settings().data_dir / "demo-accounts.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{username}\t{password}\t{role}" for username, password, role in result.accounts]
    name, phone, id_number = living.member
    lines.append(f"demo member\t{name}\tphone {phone}\tID {id_number}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode otherwise
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return path
