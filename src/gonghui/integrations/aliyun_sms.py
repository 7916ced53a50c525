"""Alibaba Cloud SMS: the ``SendSms`` RPC call, signed as the RPC API documents.

Signature version 1.0 (https://www.alibabacloud.com/help/en/sms/signature-method):
sort every parameter except ``Signature`` by name, percent-encode names and values per
RFC 3986 (space as %20, ``*`` as %2A, ``~`` kept), join them as ``k=v&...``; the string to
sign is ``METHOD&%2F&`` + percentEncode(that query); the signature is
Base64(HMAC-SHA1(AccessKeySecret + "&", string to sign)).
"""

from __future__ import annotations

import base64
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from gonghui import clock
from gonghui.errors import UpstreamError
from gonghui.integrations.errors import IntegrationsError
from gonghui.integrations.sms_messages import NoticeMessage, OtpMessage
from gonghui.pii import PiiField, normalize
from gonghui.settings import Settings

API_VERSION = "2017-05-25"
TIMEOUT_S = 10.0


def percent_encode(value: str) -> str:
    # quote() leaves A-Z a-z 0-9 - _ . unescaped; "~" is RFC 3986 unreserved too.
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def sign(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    key = (access_key_secret + "&").encode()
    digest = hmac.digest(key, string_to_sign(method, params).encode(), "sha1")
    return base64.b64encode(digest).decode()


class AliyunSms:
    def __init__(
        self,
        *,
        base_url: str,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_code: str,
        notice_template_code: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.template_code = template_code
        self.notice_template_code = notice_template_code

    @classmethod
    def from_settings(cls, settings: Settings) -> AliyunSms:
        return cls(
            base_url=settings.sms_base_url,
            access_key_id=settings.sms_access_key_id,
            access_key_secret=settings.sms_access_key_secret,
            sign_name=settings.sms_sign_name,
            template_code=settings.sms_template_code,
            notice_template_code=settings.sms_notice_template_code,
        )

    def signed_params(self, params: Mapping[str, str], *, method: str = "POST") -> dict[str, str]:
        common = {
            "AccessKeyId": self.access_key_id,
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        full = {**common, **params}
        full["Signature"] = sign(method, full, self.access_key_secret)
        return full

    def send_code(self, message: OtpMessage) -> None:
        self._send(message.phone, self.template_code, {"code": message.code})

    def send_notice(self, message: NoticeMessage) -> None:
        self._send(message.phone, self.notice_template_code, message.params)

    def _send(self, phone: str, template_code: str, template_params: dict[str, str]) -> None:
        params = self.signed_params(
            {
                "Action": "SendSms",
                "PhoneNumbers": normalize(PiiField.PHONE, phone),
                "SignName": self.sign_name,
                "TemplateCode": template_code,
                "TemplateParam": json.dumps(template_params, separators=(",", ":")),
            }
        )
        try:
            resp = httpx.post(f"{self.base_url}/", data=params, timeout=TIMEOUT_S)
            body: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UpstreamError(
                IntegrationsError.SMS_UNAVAILABLE, "the SMS service did not answer"
            ) from exc
        if body.get("Code") != "OK":
            raise UpstreamError(
                IntegrationsError.SMS_REJECTED,
                "the SMS service refused the message",
                {"provider_code": body.get("Code"), "provider_message": body.get("Message")},
            )
