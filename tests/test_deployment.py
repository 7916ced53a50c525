"""A server that others can reach refuses to start with the development conveniences (the
simulators, the development SMS sink, the simulator's WeChat apps); a developer's own
loopback server keeps them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gonghui.deployment import UnsafeDeployment, check_deployment, dev_conveniences_allowed
from gonghui.settings import Settings, get_settings
from tests.serverproc import ServerProcess, free_port

_GONGHUI = Path(sys.executable).parent / "gonghui"
_ROOT = Path(__file__).resolve().parents[1]

SIMULATORS = (
    "GONGHUI_SIMULATORS_ENABLED is true (the /_sim simulators hand out any phone's sign-in"
    " code and mint WeChat sign-ins): set GONGHUI_SIMULATORS_ENABLED=false"
)
DEV_SMS = (
    "GONGHUI_SMS_PROVIDER is dev (codes go to a development outbox, not to phones): set"
    " GONGHUI_SMS_PROVIDER=aliyun with GONGHUI_SMS_ACCESS_KEY_ID,"
    " GONGHUI_SMS_ACCESS_KEY_SECRET, GONGHUI_SMS_SIGN_NAME and GONGHUI_SMS_TEMPLATE_CODE"
)
WECHAT_URL = (
    "GONGHUI_WECHAT_BASE_URL is unset or the simulator:"
    " set GONGHUI_WECHAT_BASE_URL=https://api.weixin.qq.com"
)
SIM_APPS = [
    "GONGHUI_WECHAT_MP_APPID is the simulator's app wx_sim_mini:"
    " set your WeChat app's AppID and GONGHUI_WECHAT_MP_SECRET",
    "GONGHUI_WECHAT_OA_APPID is the simulator's app wx_sim_official:"
    " set your WeChat app's AppID and GONGHUI_WECHAT_OA_SECRET",
    "GONGHUI_WECHAT_APP_APPID is the simulator's app wx_sim_mobile:"
    " set your WeChat app's AppID and GONGHUI_WECHAT_APP_SECRET",
]


def public_url(bound: str) -> str:
    return (
        "GONGHUI_PUBLIC_BASE_URL is unset (sign-in callbacks, payment notifications and file"
        f" links would point at {bound}): set it to the address members use,"
        " e.g. https://union.example.org"
    )


DEFAULTS_PROBLEMS = [
    SIMULATORS,
    DEV_SMS,
    WECHAT_URL,
    *SIM_APPS,
    public_url("http://127.0.0.1:8000"),
]


def settings(**changes: Any) -> Settings:
    """The defaults a fresh install has (development), with ``changes``."""
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in Settings.model_fields.items()
    }
    return get_settings().model_copy(update={**defaults, **changes})


PRODUCTION_READY = {
    "simulators_enabled": False,
    "sms_provider": "aliyun",
    "wechat_base_url": "https://api.weixin.qq.com",
    "wechat_mp_appid": "wx0123456789abcdef",
    "wechat_oa_appid": "wx1123456789abcdef",
    "wechat_app_appid": "wx2123456789abcdef",
    "public_base_url": "https://union.example.org",
}


def refusal(config: Settings, host: str | None = None) -> UnsafeDeployment:
    with pytest.raises(UnsafeDeployment) as refused:
        check_deployment(config, host=host)
    return refused.value


def test_a_server_bound_beyond_loopback_with_the_defaults_is_refused() -> None:
    refused = refusal(settings(), host="0.0.0.0")

    assert refused.reasons == ["bound to 0.0.0.0 (not loopback)"]
    assert refused.problems == DEFAULTS_PROBLEMS
    assert str(refused).splitlines() == [
        "gonghui refuses to start: this server is bound to 0.0.0.0 (not loopback), but",
        *(f"  - {p}" for p in DEFAULTS_PROBLEMS),
        "See 'Production checklist' in README.md.",
    ]
    assert refusal(settings(host="::"), host=None).reasons == ["bound to :: (not loopback)"]
    assert refusal(settings(), host="").reasons == ["bound to every interface (not loopback)"]
    assert refusal(settings(), host="gonghui.example.org").problems == DEFAULTS_PROBLEMS


def test_production_refuses_each_convenience_left_on_even_on_loopback() -> None:
    for name, value, problem in (
        ("simulators_enabled", True, SIMULATORS),
        ("sms_provider", "dev", DEV_SMS),
        ("wechat_base_url", "", WECHAT_URL),
        ("wechat_oa_appid", "wx_sim_official", SIM_APPS[1]),
        ("public_base_url", "", public_url("http://127.0.0.1:8000")),
    ):
        config = settings(**{**PRODUCTION_READY, "env": "production", name: value})
        refused = refusal(config, host="127.0.0.1")
        assert refused.reasons == ["running with GONGHUI_ENV=production"]
        assert refused.problems == [problem]
        assert not dev_conveniences_allowed(config)
    simulated_sms = {**PRODUCTION_READY, "sms_base_url": "http://127.0.0.1:8000/_sim/aliyun-sms"}
    assert refusal(settings(**simulated_sms, env="production")).problems == [
        "GONGHUI_SMS_BASE_URL is the simulator (http://127.0.0.1:8000/_sim/aliyun-sms):"
        " unset it to reach Alibaba Cloud (https://dysmsapi.aliyuncs.com)"
    ]


def test_the_test_suites_password_hashing_is_refused_beyond_loopback() -> None:
    config = settings(**PRODUCTION_READY, env="test")

    check_deployment(config, host="127.0.0.1")
    assert refusal(config, host="0.0.0.0").problems == [
        "GONGHUI_ENV is test (staff passwords are hashed with argon2's cheapest parameters,"
        " for test suites): set GONGHUI_ENV=production"
    ]


def test_a_server_behind_a_proxy_counts_as_reachable() -> None:
    config = settings(trusted_proxies=["127.0.0.1"])

    assert refusal(config).reasons == ["behind a proxy (GONGHUI_TRUSTED_PROXIES is set)"]
    assert not dev_conveniences_allowed(config)


def test_a_developers_loopback_server_keeps_its_conveniences() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        check_deployment(settings(), host=host)
    assert dev_conveniences_allowed(settings())
    assert not dev_conveniences_allowed(settings(simulators_enabled=False))


def test_a_configured_production_server_starts_on_any_address() -> None:
    config = settings(**PRODUCTION_READY, env="production", trusted_proxies=["10.0.0.2"])

    check_deployment(config, host="0.0.0.0")

    assert not dev_conveniences_allowed(config)


def _fresh_install_env(**extra: str) -> dict[str, str]:
    """This test run's environment minus every GONGHUI_* setting: a fresh install."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGHUI_")}
    data_dir = get_settings().data_dir / "fresh-install"
    return {**env, "GONGHUI_DATA_DIR": str(data_dir), **extra}


def _serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [str(_GONGHUI), "serve", "--skip-migrate", *args]
    return subprocess.run(argv, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_gonghui_serve_on_every_interface_with_the_defaults_exits_before_binding() -> None:
    port = free_port()
    done = _serve("--host", "0.0.0.0", "--port", str(port), env=_fresh_install_env())

    assert done.returncode == 2
    # The address it would call its own is the bound port's, from the options.
    problems = [*DEFAULTS_PROBLEMS[:-1], public_url(f"http://127.0.0.1:{port}")]
    assert done.stderr.splitlines() == [
        "gonghui refuses to start: this server is bound to 0.0.0.0 (not loopback), but",
        *(f"  - {p}" for p in problems),
        "See 'Production checklist' in README.md.",
    ]
    # Refused before anything else: no database, no keys, no data directory.
    assert not (get_settings().data_dir / "fresh-install").exists()


def test_gonghui_serve_in_production_with_simulators_exits() -> None:
    env = _fresh_install_env(
        GONGHUI_ENV="production",
        GONGHUI_SMS_PROVIDER="aliyun",
        GONGHUI_WECHAT_BASE_URL="https://api.weixin.qq.com",
        GONGHUI_WECHAT_MP_APPID="wx0123456789abcdef",
        GONGHUI_WECHAT_OA_APPID="wx1123456789abcdef",
        GONGHUI_WECHAT_APP_APPID="wx2123456789abcdef",
        GONGHUI_PUBLIC_BASE_URL="https://union.example.org",
    )

    done = _serve("--host", "127.0.0.1", "--port", str(free_port()), env=env)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "gonghui refuses to start: this server is running with GONGHUI_ENV=production, but",
        f"  - {SIMULATORS}",
        "See 'Production checklist' in README.md.",
    ]


def test_a_worker_in_production_with_simulators_or_no_public_address_exits() -> None:
    """A worker sends what the server would (SMS, WeChat messages, coupons, their links): a
    deployment's worker started apart from its servers is held to the same check."""
    production = {
        "GONGHUI_ENV": "production",
        "GONGHUI_SMS_PROVIDER": "aliyun",
        "GONGHUI_WECHAT_BASE_URL": "https://api.weixin.qq.com",
        "GONGHUI_WECHAT_MP_APPID": "wx0123456789abcdef",
        "GONGHUI_WECHAT_OA_APPID": "wx1123456789abcdef",
        "GONGHUI_WECHAT_APP_APPID": "wx2123456789abcdef",
    }
    argv = [str(_GONGHUI), "worker"]

    done = subprocess.run(
        argv, cwd=_ROOT, env=_fresh_install_env(**production), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "gonghui refuses to start: this server is running with GONGHUI_ENV=production, but",
        f"  - {SIMULATORS}",
        f"  - {public_url('http://127.0.0.1:8000')}",
        "See 'Production checklist' in README.md.",
    ]
    assert not (get_settings().data_dir / "fresh-install").exists()


def test_an_asgi_server_given_a_public_address_does_not_load_the_app() -> None:
    env = _fresh_install_env(GONGHUI_HOST="0.0.0.0")

    done = subprocess.run(
        [sys.executable, "-c", "import gonghui.asgi"],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    assert "UnsafeDeployment: gonghui refuses to start" in done.stderr


def test_gonghui_serve_on_loopback_in_development_serves_the_simulators() -> None:
    server = ServerProcess(env={"GONGHUI_ENV": "development"}).start()
    try:
        outbox = httpx.get(f"{server.url}/_sim/sms/outbox", params={"phone": "13800138000"})
        assert outbox.status_code == 200
        assert outbox.json() == []
    finally:
        server.stop()


def test_a_server_without_a_public_address_calls_its_bound_port_its_own() -> None:
    """A developer whose port 8000 is taken runs ``gonghui serve --port P`` and sets no
    public address: the links it gives and the simulators it calls are on port P."""
    server = ServerProcess(env={"GONGHUI_ENV": "development", "GONGHUI_PUBLIC_BASE_URL": ""})
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            discovery = browser.get("/.well-known/openid-configuration").json()
            assert discovery["issuer"] == server.url
            # WeChat sign-in through the simulator: the server asks its own simulator for
            # the code (on port 8000 nothing answers, and the tap failed).
            consent = browser.get("/h5/login/wechat")
            assert consent.status_code == 303
            state = parse_qs(urlsplit(consent.headers["location"]).query)["state"][0]
            allowed = browser.post(
                "/h5/login/wechat/sim", data={"nickname": "阿华", "state": state}
            )
            assert allowed.status_code == 303, allowed.text[-500:]
            assert allowed.headers["location"].startswith("/h5/login/wechat/callback?code=")
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("host", "own"),
    [
        ("127.0.0.1", "http://127.0.0.1:8123"),
        ("0.0.0.0", "http://127.0.0.1:8123"),  # every interface: this machine's loopback
        ("::", "http://127.0.0.1:8123"),
        ("::1", "http://[::1]:8123"),
        ("[::1]", "http://[::1]:8123"),
        ("union.local", "http://union.local:8123"),
    ],
)
def test_the_address_a_server_without_a_public_one_calls_its_own(host: str, own: str) -> None:
    assert settings(host=host, port=8123).resolved_public_base_url == own
    given = settings(host=host, port=8123, public_base_url="https://union.example.org/")
    assert given.resolved_public_base_url == "https://union.example.org"
