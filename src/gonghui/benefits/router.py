"""The member's wallet and ledger; operators' reconciliation exports."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gonghui import hotwrite, xlsx
from gonghui.activities import fulfilment
from gonghui.activities import service as activities
from gonghui.benefits import export, service
from gonghui.benefits.schemas import (
    AddressRequest,
    FulfilmentLine,
    LedgerEntryRead,
    LedgerPage,
    PrizeRead,
    PrizeShipRequest,
    VoucherRead,
    WalletRead,
)
from gonghui.deps import (
    CurrentMember,
    CurrentStaff,
    IdempotencyKey,
    SessionDep,
    WriteSessionDep,
)
from gonghui.merchants import directory as merchants
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1", tags=["benefits"])


@router.get("/me/wallet")
def get_wallet(member: CurrentMember, session: SessionDep) -> WalletRead:
    wallet = service.wallet(session, membership_id=member.membership_id)
    names = merchants.names(session, wallet.merchant_ids())
    return WalletRead(
        points=wallet.points,
        vouchers=[VoucherRead.of(v, names) for v in wallet.vouchers],
        prizes=[PrizeRead.model_validate(p) for p in wallet.prizes],
    )


@router.get("/me/ledger")
def get_ledger(
    member: CurrentMember, session: SessionDep, cursor: Id | None = None, limit: Count = 50
) -> LedgerPage:
    limit = min(max(limit, 1), 200)
    entries = service.member_ledger(
        session, membership_id=member.membership_id, before_id=cursor, limit=limit
    )
    return LedgerPage(
        items=[LedgerEntryRead.model_validate(e) for e in entries],
        next_cursor=entries[-1].id if len(entries) == limit else None,
    )


@router.post("/me/prizes/{prize_id}/address")
async def give_address(
    prize_id: Id, body: AddressRequest, member: CurrentMember, idem: IdempotencyKey
) -> PrizeRead:
    """Claim a physical prize: where to send it, before the deadline."""
    result = await hotwrite.run_async(
        service.give_address_once,
        membership_id=member.membership_id,
        prize_id=prize_id,
        name=body.name,
        phone=body.phone,
        address=body.address,
        idempotency_key=idem,
    )
    return PrizeRead.model_validate(result)


@router.get("/activities/{activity_id}/ledger.csv")
def export_csv(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> Response:
    activity = activities.get_activity(session, actor=staff, activity_id=activity_id)
    return Response(
        export.to_csv(session, activity_id=activity.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="ledger-{activity.id}.csv"'},
    )


@router.get("/activities/{activity_id}/ledger.xlsx")
def export_xlsx(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> Response:
    activity = activities.get_activity(session, actor=staff, activity_id=activity_id)
    return xlsx.attachment(
        export.to_xlsx(session, activity_id=activity.id), f"ledger-{activity.id}.xlsx"
    )


@router.get("/activities/{activity_id}/prizes")
def list_prizes(
    activity_id: Id, staff: CurrentStaff, session: WriteSessionDep, reveal: bool = False
) -> list[FulfilmentLine]:
    """Physical prizes won in the activity; ``reveal=true`` unmasks addresses (audited)."""
    lines = fulfilment.list_prizes(session, actor=staff, activity_id=activity_id, reveal=reveal)
    return [
        FulfilmentLine(
            prize=PrizeRead.model_validate(line.prize), winner=line.winner, address=line.address
        )
        for line in lines
    ]


@router.post("/activities/{activity_id}/prizes/{prize_id}/ship")
def ship_prize(
    activity_id: Id,
    prize_id: Id,
    staff: CurrentStaff,
    session: SessionDep,
    body: PrizeShipRequest | None = None,
) -> PrizeRead:
    """Mark a claimed prize shipped; the courier and tracking number are shown to the
    member."""
    prize = fulfilment.ship(
        session,
        actor=staff,
        activity_id=activity_id,
        prize_id=prize_id,
        courier_company=body.courier_company if body else None,
        courier_no=body.courier_no if body else None,
    )
    return PrizeRead.model_validate(prize)
