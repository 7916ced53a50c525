"""Staff deciding a member's request, whatever its kind: approval does what the kind
means (joining, moving, leaving); rejection says why."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gonghui.members import joining, moving, requests
from gonghui.members.models import MembershipRequest, RequestKind
from gonghui.tenancy import Actor

_APPROVALS = {
    RequestKind.JOIN: joining.approve,
    RequestKind.TRANSFER: moving.accept_transfer,
    RequestKind.LEAVE: moving.confirm_leave,
}


def approve(
    session: Session, *, actor: Actor, request_id: int, note: str | None = None
) -> MembershipRequest:
    req = requests.get_request(session, actor=actor, request_id=request_id)
    return _APPROVALS[RequestKind(req.kind)](session, actor=actor, request_id=request_id, note=note)


reject = requests.reject
