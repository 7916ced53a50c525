"""HTTP: WeChat Pay's notifications (anyone may send one; only WeChat Pay's are kept)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from gonghui.bodylimit import max_body
from gonghui.db import unit_of_work
from gonghui.payments import service

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])

# WeChat Pay's notifications are a few hundred bytes of JSON; anyone may send one.
NOTIFICATION_MAX_BYTES = 64 * 1024


@router.post(
    "/wechatpay/notifications",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"description": "not a notification WeChat Pay signed"}},
)
@max_body(NOTIFICATION_MAX_BYTES)
async def wechatpay_notification(request: Request) -> Response:
    """The notify_url registered with WeChat Pay. 204 once the notification is kept (or
    was kept before); 401 if its signature, key serial, timestamp or ciphertext does not
    check, and nothing is written (WeChat Pay sends a real one again)."""
    body = await request.body()
    headers = dict(request.headers)

    def receive() -> None:
        with unit_of_work() as session:
            service.receive_wechatpay(session, headers=headers, body=body)

    await run_in_threadpool(receive)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
