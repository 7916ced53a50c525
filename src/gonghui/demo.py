"""Demo data for ``make run``: a province federation, its cities, districts and grassroots
unions, staff accounts with printed passwords, and a generated roster."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gonghui.accounts.service import create_staff_user
from gonghui.members.models import ImportJob
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Org, OrgLevel, Role
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
