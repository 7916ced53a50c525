"""The Alibaba Cloud SMS adapter, end to end against the local protocol simulator."""

from __future__ import annotations

import httpx
import pytest

from gonghui.integrations import aliyun_sms_simulator
from gonghui.integrations.aliyun_sms import percent_encode, sign, string_to_sign
from gonghui.settings import get_settings
from tests.accounts.helpers import count_users, otp_rows, send_code, sms_login

PHONE = "13800138000"
KEY_ID, KEY_SECRET = next(iter(aliyun_sms_simulator.ACCESS_KEYS.items()))


@pytest.fixture
def aliyun(monkeypatch: pytest.MonkeyPatch, server: str) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "sms_provider", "aliyun")
    monkeypatch.setattr(settings, "sms_base_url", f"{server}/_sim/aliyun-sms")
    monkeypatch.setattr(settings, "sms_access_key_id", KEY_ID)
    monkeypatch.setattr(settings, "sms_access_key_secret", KEY_SECRET)


def test_signature_matches_the_documented_example() -> None:
    # The worked example of Alibaba Cloud's RPC signature documentation (DescribeRegions).
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert string_to_sign("GET", params).startswith("GET&%2F&AccessKeyId%3Dtestid%26Action")
    assert sign("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    assert percent_encode("a b*c~d/工") == "a%20b%2Ac~d%2F%E5%B7%A5"


@pytest.mark.usefixtures("aliyun")
def test_code_sent_through_aliyun_signs_the_user_in(api: httpx.Client) -> None:
    assert send_code(api, PHONE).status_code == 200
    (message,) = aliyun_sms_simulator.messages(PHONE)
    settings = get_settings()
    assert message["SignName"] == settings.sms_sign_name
    assert message["TemplateCode"] == settings.sms_template_code
    code = message["TemplateParam"]["code"]
    # The simulator's own listing, as the development H5 would read it.
    listed = api.get("/_sim/aliyun-sms/messages", params={"phone": PHONE}).json()
    assert [m["BizId"] for m in listed] == [message["BizId"]]
    resp = sms_login(api, PHONE, code)
    assert resp.status_code == 200, resp.text
    assert count_users() == 1


@pytest.mark.usefixtures("aliyun")
def test_a_wrong_secret_is_refused_and_no_code_is_kept(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "sms_access_key_secret", "not-the-secret")
    resp = send_code(api, PHONE)
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["code"] == "sms.rejected"
    assert error["details"]["provider_code"] == "SignatureDoesNotMatch"
    assert aliyun_sms_simulator.messages(PHONE) == []
    assert otp_rows() == []


@pytest.mark.usefixtures("aliyun")
def test_an_unknown_access_key_is_refused(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "sms_access_key_id", "LTAI-unknown")
    resp = send_code(api, PHONE)
    assert resp.status_code == 502
    assert resp.json()["error"]["details"]["provider_code"] == "InvalidAccessKeyId.NotFound"
    assert otp_rows() == []


def test_the_simulator_refuses_a_replayed_request(server: str) -> None:
    from gonghui.integrations.aliyun_sms import AliyunSms

    adapter = AliyunSms(
        base_url=f"{server}/_sim/aliyun-sms",
        access_key_id=KEY_ID,
        access_key_secret=KEY_SECRET,
        sign_name="工会服务",
        template_code="SMS_1",
    )
    params = adapter.signed_params(
        {
            "Action": "SendSms",
            "PhoneNumbers": PHONE,
            "SignName": "工会服务",
            "TemplateCode": "SMS_1",
            "TemplateParam": '{"code":"123456"}',
        }
    )
    first = httpx.post(f"{server}/_sim/aliyun-sms/", data=params)
    assert first.json()["Code"] == "OK"
    replay = httpx.post(f"{server}/_sim/aliyun-sms/", data=params)
    assert replay.status_code == 400
    assert replay.json()["Code"] == "SignatureNonceUsed"
    assert len(aliyun_sms_simulator.messages(PHONE)) == 1
