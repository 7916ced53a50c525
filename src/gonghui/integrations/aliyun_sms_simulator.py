"""A local stand-in for Alibaba Cloud's SMS RPC endpoint (development and tests).

It checks what the real service checks before sending (known AccessKeyId, the signature,
a fresh timestamp, an unused nonce, the phone format) and records accepted messages,
readable at ``GET /_sim/aliyun-sms/messages?phone=...``.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gonghui import clock
from gonghui.integrations.aliyun_sms import API_VERSION, sign

# The simulator's AccessKey pair; point GONGHUI_SMS_ACCESS_KEY_ID / _SECRET at it.
ACCESS_KEYS = {"LTAI5tSimulatorKey0001": "simulator-access-key-secret"}
_TIMESTAMP_SKEW = timedelta(minutes=15)
_PHONE = re.compile(r"^1[3-9]\d{9}$")

router = APIRouter(prefix="/_sim/aliyun-sms", tags=["simulators"], include_in_schema=False)

_lock = threading.Lock()
_messages: list[dict[str, Any]] = []
_nonces: set[str] = set()


def reset() -> None:
    with _lock:
        _messages.clear()
        _nonces.clear()


def messages(phone: str | None = None) -> list[dict[str, Any]]:
    with _lock:
        return [dict(m) for m in _messages if phone is None or m["PhoneNumbers"] == phone]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"Code": code, "Message": message, "RequestId": uuid.uuid4().hex.upper()},
        status_code=status,
    )


@router.api_route("/", methods=["GET", "POST"])
async def rpc(request: Request) -> JSONResponse:
    params = {k: str(v) for k, v in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        params.update({k: str(v) for k, v in form.items()})
    signature = params.pop("Signature", "")
    secret = ACCESS_KEYS.get(params.get("AccessKeyId", ""))
    if secret is None:
        return _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
        return _error(400, "InvalidParameter", "SignatureMethod/SignatureVersion not supported.")
    expected = sign(request.method, params, secret)
    if not hmac.compare_digest(expected, signature):
        return _error(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        )
    try:
        stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return _error(400, "InvalidTimeStamp.Format", "Specified time stamp is not valid.")
    if abs(clock.now() - stamp) > _TIMESTAMP_SKEW:
        return _error(400, "InvalidTimeStamp.Expired", "Specified time stamp has expired.")
    if params.get("Action") != "SendSms" or params.get("Version") != API_VERSION:
        return _error(400, "InvalidAction.NotFound", "Specified api is not found.")
    with _lock:
        nonce = params.get("SignatureNonce", "")
        if not nonce or nonce in _nonces:
            return _error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        _nonces.add(nonce)
    request_id = uuid.uuid4().hex.upper()
    phone = params.get("PhoneNumbers", "")
    if not _PHONE.match(phone):
        return JSONResponse(
            {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": request_id}
        )
    try:
        template_param = json.loads(params.get("TemplateParam", "{}"))
    except ValueError:
        return JSONResponse(
            {"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法", "RequestId": request_id}
        )
    biz_id = f"{uuid.uuid4().int % 10**18:018d}^0"
    with _lock:
        _messages.append(
            {
                "PhoneNumbers": phone,
                "SignName": params.get("SignName", ""),
                "TemplateCode": params.get("TemplateCode", ""),
                "TemplateParam": template_param,
                "BizId": biz_id,
                "at": clock.now().isoformat(),
            }
        )
    return JSONResponse({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id})


@router.get("/messages")
async def list_messages(phone: str | None = None) -> list[dict[str, Any]]:
    return messages(phone)
