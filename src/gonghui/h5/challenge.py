"""The picture of a challenge risk control posed to the member (see member_action)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gonghui.h5.access import H5Member, member_of
from gonghui.risk import challenges

router = APIRouter()


@router.get("/risk/challenges/{challenge_id}/image", response_class=Response)
def challenge_image(challenge_id: str, user: H5Member) -> Response:
    png = challenges.picture(
        membership_id=member_of(user).membership_id, challenge_id=challenge_id[:128]
    )
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})
