"""Sending SMS: the adapter chosen by ``settings.sms_provider`` and the development sink.

The development sink keeps each message in an outbox file under ``data_dir`` (readable by
tests, by another process and by the ``/_sim/sms/outbox`` endpoint that lets the
development H5 show the code) and logs it. The outbox stores the phone's blind index and
its masked form, never the number itself.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from gonghui import clock
from gonghui.integrations.aliyun_sms import AliyunSms
from gonghui.integrations.sms_messages import NoticeMessage, OtpMessage, SmsSender
from gonghui.pii import PiiField, blind_index, mask, normalize
from gonghui.settings import get_settings

# The messages and the sender protocol are defined below the adapters that implement them.
__all__ = [
    "DevSmsSink",
    "NoticeMessage",
    "OtpMessage",
    "SmsSender",
    "dev_outbox",
    "get_sms_sender",
    "outbox_path",
    "render_text",
]

log = logging.getLogger("gonghui.sms")


_outbox_lock = threading.Lock()


def outbox_path() -> Path:
    return get_settings().data_dir / "dev" / "sms-outbox.jsonl"


def render_text(message: OtpMessage) -> str:
    sign = get_settings().sms_sign_name
    return f"【{sign}】您的验证码为{message.code}，{message.ttl_minutes}分钟内有效，请勿泄露。"


class DevSmsSink:
    """Development and tests: no message leaves the machine."""

    def send_code(self, message: OtpMessage) -> None:
        self._keep(message.phone, message.code, render_text(message))

    def send_notice(self, message: NoticeMessage) -> None:
        sign = get_settings().sms_sign_name
        self._keep(message.phone, "", f"【{sign}】{message.text}")

    def _keep(self, phone: str, code: str, text: str) -> None:
        entry = {
            "phone_index": blind_index(PiiField.PHONE, phone).hex(),
            "phone": mask(PiiField.PHONE, normalize(PiiField.PHONE, phone)),
            "code": code,
            "text": text,
            "at": clock.now().isoformat(),
        }
        path = outbox_path()
        with _outbox_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        log.info("dev sms to %s: %s", entry["phone"], entry["text"])


def dev_outbox(phone: str) -> list[dict[str, str]]:
    """Messages the development sink sent to ``phone``, oldest first."""
    wanted = blind_index(PiiField.PHONE, phone).hex()
    path = outbox_path()
    with _outbox_lock:
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    return [
        {k: e[k] for k in ("phone", "code", "text", "at")}
        for e in entries
        if e["phone_index"] == wanted
    ]


def get_sms_sender() -> SmsSender:
    settings = get_settings()
    if settings.sms_provider == "aliyun":
        return AliyunSms.from_settings(settings)
    return DevSmsSink()
