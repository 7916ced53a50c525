"""Certificates (荣誉证书) of a competition's published results, as PDF.

Once the ranking is frozen (:func:`results.publish`), every member of a ranked entry may
download their own certificate, naming them, their team and union, the rank and the
competition; the organiser downloads any entry's certificate (all its members named). The
certificate carries the entry's code and the publication date, which anyone can check
against the public results. Nothing is stored: a certificate is drawn from the frozen
result each time, so it can never disagree with it.

Chinese text uses the PDF standard CID font ``STSong-Light`` (Adobe's Simplified Chinese
font pack, which every PDF reader provides), so no font file has to be installed on the
server or embedded in the file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

from fastapi.responses import Response
from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.activities.competition.errors import CompetitionError
from gonghui.activities.competition.judging import managed_competition
from gonghui.activities.competition.models import Entry, EntryMember, Result
from gonghui.activities.competition.registration import my_entry
from gonghui.activities.models import Activity
from gonghui.clock import local_day
from gonghui.errors import NotFound
from gonghui.members.models import Membership, RosterEntry
from gonghui.orgs.models import Org
from gonghui.pii import PiiField, unseal
from gonghui.storage import attachment
from gonghui.tenancy import Actor

FONT = "STSong-Light"
RED = HexColor("#b71c1c")
GOLD = HexColor("#c9a227")


@cache
def _font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


@dataclass(frozen=True)
class Certificate:
    activity_title: str
    organiser: str
    names: list[str]
    team_name: str | None
    union: str
    rank: int
    code: str
    published: str  # the local day of publication, YYYY年M月D日

    @property
    def filename(self) -> str:
        return f"certificate-{self.code}.pdf"


def _not_ranked() -> NotFound:
    return NotFound(CompetitionError.RESULTS_NOT_PUBLISHED, "no published result for this entry")


def _certificate(
    session: Session, activity: Activity, entry: Entry, names: list[str]
) -> Certificate:
    result = session.scalar(
        select(Result).where(Result.activity_id == activity.id, Result.entry_id == entry.id)
    )
    if result is None:
        raise _not_ranked()
    organiser = session.get(Org, activity.org_id)
    union = session.get(Org, entry.org_id)
    day = local_day(result.published_at)
    return Certificate(
        activity_title=activity.title,
        organiser=organiser.name if organiser else "",
        names=names,
        team_name=entry.team_name,
        union=union.name if union else "",
        rank=result.rank,
        code=entry.code,
        published=f"{day.year}年{day.month}月{day.day}日",
    )


def _names(session: Session, entry: Entry, membership_id: int | None = None) -> list[str]:
    """The entry's members' names in registration order (only ``membership_id``'s if set)."""
    query = (
        select(RosterEntry.name_enc)
        .join(Membership, Membership.roster_entry_id == RosterEntry.id)
        .join(EntryMember, EntryMember.membership_id == Membership.id)
        .where(EntryMember.entry_id == entry.id)
        .order_by(EntryMember.id)
    )
    if membership_id is not None:
        query = query.where(EntryMember.membership_id == membership_id)
    return [unseal(PiiField.NAME, blob) for blob in session.scalars(query)]


def member_certificate(session: Session, *, member: MemberInfo, activity_id: int) -> Certificate:
    """The member's own certificate: their entry must be ranked in the published results."""
    entry = my_entry(session, member=member, activity_id=activity_id)
    activity = session.get(Activity, entry.activity_id)
    assert activity is not None
    return _certificate(session, activity, entry, _names(session, entry, member.membership_id))


def entry_certificate(
    session: Session, *, actor: Actor, activity_id: int, entry_id: int
) -> Certificate:
    """An entry's certificate for the organiser, naming every member of the entry."""
    activity = managed_competition(session, actor=actor, activity_id=activity_id)
    entry = session.get(Entry, entry_id)
    if entry is None or entry.activity_id != activity.id:
        raise NotFound(CompetitionError.ENTRY_NOT_FOUND, f"entry {entry_id} not found")
    return _certificate(session, activity, entry, _names(session, entry))


def _centred(pdf: canvas.Canvas, y: float, text: str, size: float) -> None:
    """``text`` centred at height ``y``, made smaller until it fits inside the border (a
    long team or competition name)."""
    width = landscape(A4)[0]
    while size > 8 and pdfmetrics.stringWidth(text, _font(), size) > width - 160:
        size -= 1
    pdf.setFont(_font(), size)
    pdf.drawCentredString(width / 2, y, text)


def render(certificate: Certificate) -> bytes:
    """The certificate as a one-page landscape A4 PDF."""
    width, height = landscape(A4)
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=(width, height), invariant=True)
    pdf.setTitle(f"荣誉证书 · {certificate.activity_title}")
    pdf.setAuthor(certificate.organiser)
    pdf.setStrokeColor(GOLD)
    pdf.setLineWidth(6)
    pdf.rect(28, 28, width - 56, height - 56)
    pdf.setLineWidth(1.5)
    pdf.rect(40, 40, width - 80, height - 80)
    pdf.setFillColor(RED)
    _centred(pdf, height - 130, "荣 誉 证 书", 44)
    pdf.setFillColor(HexColor("#222222"))
    who = "、".join(certificate.names)
    if certificate.team_name:
        who += f"（{certificate.team_name}）"
    _centred(pdf, height - 210, who, 26)
    _centred(pdf, height - 250, certificate.union, 16)
    _centred(pdf, height - 300, f"在「{certificate.activity_title}」中", 20)
    pdf.setFillColor(RED)
    _centred(pdf, height - 350, f"荣获第 {certificate.rank} 名", 32)
    pdf.setFillColor(HexColor("#222222"))
    _centred(pdf, height - 395, "特发此证，以资鼓励。", 18)
    pdf.setFont(_font(), 16)
    pdf.drawRightString(width - 110, 130, certificate.organiser)
    pdf.drawRightString(width - 110, 104, certificate.published)
    pdf.setFont(_font(), 10)
    pdf.setFillColor(HexColor("#555555"))
    pdf.drawString(70, 60, f"参赛编号 {certificate.code} · 可在活动页的比赛结果中核对")
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def download(certificate: Certificate) -> Response:
    """The certificate as the browser saves it, never kept by a shared cache."""
    return Response(
        render(certificate),
        media_type="application/pdf",
        headers={
            "Content-Disposition": attachment(certificate.filename),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
