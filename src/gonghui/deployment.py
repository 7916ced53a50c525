"""The start-up check: development conveniences never run where others can reach them,
and such a server says at which address others reach it.

The protocol simulators (``/_sim``), the development SMS sink and the simulator's WeChat
apps let anyone read any phone's sign-in code or sign in as any number. They are for a
server on a developer's own machine: bound to loopback, not marked production, with no
proxy in front. A server that is reachable from elsewhere or marked production refuses
to start with any of them (:func:`check_deployment`, run by ``gonghui serve`` before it
binds, by every server process as it loads the app and by ``gonghui worker`` as it
starts), and pages show sign-in codes only where the check says they may
(:func:`dev_conveniences_allowed`).
"""

from __future__ import annotations

import ipaddress

from gonghui.settings import Settings, get_settings

# The app ids the WeChat simulator answers for (settings' defaults): a real WeChat app id
# never has this prefix.
_SIMULATOR_APPID_PREFIX = "wx_sim_"
_SIMULATOR_PATH = "/_sim/"


class UnsafeDeployment(Exception):
    """The server would run development conveniences where others can reach them."""

    def __init__(self, reasons: list[str], problems: list[str]) -> None:
        self.reasons = reasons
        self.problems = problems
        lines = [
            f"gonghui refuses to start: this server is {' and '.join(reasons)}, but",
            *(f"  - {p}" for p in problems),
            "See 'Production checklist' in README.md.",
        ]
        super().__init__("\n".join(lines))


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine. A name other than
    ``localhost`` may resolve anywhere, and an empty host binds every interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _exposure(settings: Settings, host: str) -> list[str]:
    """Why this server counts as reachable by others (empty: a developer's own)."""
    reasons = []
    if not is_loopback(host):
        reasons.append(f"bound to {host or 'every interface'} (not loopback)")
    if settings.env == "production":
        reasons.append("running with GONGHUI_ENV=production")
    if settings.trusted_proxies:
        reasons.append("behind a proxy (GONGHUI_TRUSTED_PROXIES is set)")
    return reasons


def _conveniences(settings: Settings) -> list[str]:
    """Each development convenience switched on, with how to switch it off."""
    found = []
    if settings.env == "test":
        found.append(
            "GONGHUI_ENV is test (staff passwords are hashed with argon2's cheapest"
            " parameters, for test suites): set GONGHUI_ENV=production"
        )
    if settings.simulators_enabled:
        found.append(
            "GONGHUI_SIMULATORS_ENABLED is true (the /_sim simulators hand out any phone's"
            " sign-in code and mint WeChat sign-ins): set GONGHUI_SIMULATORS_ENABLED=false"
        )
    if settings.sms_provider == "dev":
        found.append(
            "GONGHUI_SMS_PROVIDER is dev (codes go to a development outbox, not to phones):"
            " set GONGHUI_SMS_PROVIDER=aliyun with GONGHUI_SMS_ACCESS_KEY_ID,"
            " GONGHUI_SMS_ACCESS_KEY_SECRET, GONGHUI_SMS_SIGN_NAME and GONGHUI_SMS_TEMPLATE_CODE"
        )
    elif _SIMULATOR_PATH in settings.sms_base_url:
        found.append(
            f"GONGHUI_SMS_BASE_URL is the simulator ({settings.sms_base_url}):"
            " unset it to reach Alibaba Cloud (https://dysmsapi.aliyuncs.com)"
        )
    if not settings.wechat_base_url or _SIMULATOR_PATH in settings.wechat_base_url:
        found.append(
            "GONGHUI_WECHAT_BASE_URL is unset or the simulator:"
            " set GONGHUI_WECHAT_BASE_URL=https://api.weixin.qq.com"
        )
    for variable, appid in (
        ("GONGHUI_WECHAT_MP_APPID", settings.wechat_mp_appid),
        ("GONGHUI_WECHAT_OA_APPID", settings.wechat_oa_appid),
        ("GONGHUI_WECHAT_APP_APPID", settings.wechat_app_appid),
    ):
        if appid.startswith(_SIMULATOR_APPID_PREFIX):
            secret = variable.removesuffix("APPID") + "SECRET"
            found.append(
                f"{variable} is the simulator's app {appid}:"
                f" set your WeChat app's AppID and {secret}"
            )
    return found


def _unaddressed(settings: Settings) -> list[str]:
    """The public address left unset: the bound one stands in, which is not where members
    and WeChat reach a server others can reach."""
    if settings.public_base_url:
        return []
    return [
        "GONGHUI_PUBLIC_BASE_URL is unset (sign-in callbacks, payment notifications and file"
        f" links would point at {settings.resolved_public_base_url}): set it to the address"
        " members use, e.g. https://union.example.org"
    ]


def check_deployment(settings: Settings | None = None, *, host: str | None = None) -> None:
    """Raise :class:`UnsafeDeployment` if a server bound to ``host`` (default: the
    configured one) would expose a development convenience."""
    settings = settings or get_settings()
    reasons = _exposure(settings, settings.host if host is None else host)
    if not reasons:
        return
    problems = _conveniences(settings) + _unaddressed(settings)
    if problems:
        raise UnsafeDeployment(reasons, problems)


def dev_conveniences_allowed(settings: Settings | None = None) -> bool:
    """Whether the simulators may be mounted and pages may show the development sink's
    codes: switched on, and on a developer's own server."""
    settings = settings or get_settings()
    return settings.simulators_enabled and not _exposure(settings, settings.host)
