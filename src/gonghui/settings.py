"""Deployment settings, read once from ``GONGHUI_*`` environment variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GONGHUI_", env_file=None, extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")
    # Empty means SQLite in ``data_dir``; e.g. postgresql+psycopg://user@host/db for production.
    database_url: str = ""
    # Empty: no Redis. e.g. redis://127.0.0.1:6379/0: rate limits count there, and caches
    # learn of changes by its pub/sub (redis_conn.py, ratelimit.py, invalidation.py).
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # The address members and staff use (https://union.example.org): sign-in callbacks,
    # payment notifications and file links point there. Empty: this server's own address,
    # http://<host>:<port> (a developer's machine; a server others reach must set it).
    public_base_url: str = ""
    log_level: str = "INFO"
    log_json: bool = True

    # Keys. Empty means: read or generate ``data_dir/secrets/keys.json`` on first run.
    pii_hmac_key: str = ""
    pii_encryption_key: str = ""
    token_signing_key: str = ""

    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600

    # Calls each OAuth client may make to the open APIs a minute (all its tokens together).
    open_api_calls_per_minute: int = 6000
    # How often each process writes the open APIs' access log and daily counts (0: only
    # when asked, tests).
    open_api_usage_flush_s: float = 1.0

    # One-time codes (SMS).
    otp_ttl_s: int = 300
    otp_max_attempts: int = 5
    otp_resend_cooldown_s: int = 60
    otp_max_per_phone_per_day: int = 10
    otp_max_per_ip_per_hour: int = 30

    # SMS: "dev" keeps messages in the development outbox and logs them; "aliyun" speaks
    # Alibaba Cloud's SendSms protocol to ``sms_base_url`` (the simulator by default).
    sms_provider: Literal["dev", "aliyun"] = "dev"
    sms_base_url: str = "https://dysmsapi.aliyuncs.com"
    sms_access_key_id: str = ""
    sms_access_key_secret: str = ""
    sms_sign_name: str = "工会服务"
    sms_template_code: str = "SMS_0000000"
    # The notice template (prize won): parameters ``activity`` and ``prize``.
    sms_notice_template_code: str = "SMS_0000001"

    # WeChat: base URL of the WeChat API; in development the built-in simulator.
    wechat_base_url: str = ""
    wechat_mp_appid: str = "wx_sim_mini"
    wechat_mp_secret: str = "sim-mini-secret"
    wechat_oa_appid: str = "wx_sim_official"
    wechat_oa_secret: str = "sim-official-secret"
    wechat_app_appid: str = "wx_sim_mobile"
    wechat_app_secret: str = "sim-mobile-secret"
    # WeChat Pay API v3 (integrations/wechatpay.py). With no private key the simulator's
    # generated merchant is used (development only); in production set the merchant id,
    # the API certificate's serial and private key (PEM), the API v3 key, and WeChat Pay's
    # public key (with its id) and/or platform certificates (PEM) to verify its answers.
    wechatpay_base_url: str = ""
    wechatpay_mchid: str = "1900000109"
    wechatpay_serial_no: str = ""
    wechatpay_private_key: str = ""
    wechatpay_apiv3_key: str = ""
    wechatpay_public_key_id: str = ""
    wechatpay_public_key: str = ""
    wechatpay_platform_certificates: str = ""
    # Calls to WeChat Pay per second and merchant, shared by every process (gonghui.pacing;
    # WeChat Pay documents 500/s for sending coupons); 0: unpaced.
    wechatpay_calls_per_s: int = Field(default=500, ge=0)
    # The simulator's answer latency (WeChat Pay's documented processing time: 100 ms), and
    # how many coupon sends a second it takes of one merchant before answering 429
    # FREQUENCY_LIMITED (0: no limit).
    wechatpay_simulator_latency_ms: int = 100
    wechatpay_simulator_sends_per_s: int = Field(default=500, ge=0)
    # A coupon whose stock is paused waits for it to restart (voucher_grab.waiting): each
    # stock with waiting sends is looked at this often, and a send that waited this long in
    # all is given up (its claim fails, its coupon given back).
    voucher_waiting_check_s: float = Field(default=60.0, gt=0)
    voucher_send_max_wait_s: float = Field(default=6 * 3600.0, gt=0)
    # Coupon sends one process has in flight at once. A send takes about 180 ms end to end
    # (WeChat Pay's 100 ms, signing and verifying, the pace's wait). While claims keep the
    # hot writer busy, sends wait (hotwrite.busy), so this sizes the drain after the rush:
    # on the 2-core bench box 32 drained 321-350 sends/s, 64 drained 411/s against a pace
    # of 450/s (make bench W=voucher_grab, one round).
    voucher_send_concurrency: int = Field(default=64, ge=1, le=256)
    # Notifications: how often started activities' reminders are looked for, and how many
    # members a broadcast reaches a second (one batch a second).
    notifications_reminder_check_s: float = Field(default=60.0, gt=0)
    notifications_broadcast_per_s: int = Field(default=50, ge=1, le=1000)
    # Members' notifications (inbox and delivery states) are deleted after this many days.
    notifications_keep_days: int = Field(default=365, ge=1)
    # Mount the protocol simulators (WeChat, WeChat Pay, SMS) under /_sim; never in production.
    simulators_enabled: bool = True

    # Cloud functions run under bubblewrap around this (system) Python; see baas/functions.
    functions_python: str = "/usr/bin/python3"
    # An empty cgroup v2 directory the server may write: each function worker gets a child
    # group bounding its processes and memory together (baas/functions/cgroups.py).
    functions_cgroup: str = ""
    functions_min_workers: int = 1
    functions_max_workers: int = 8
    functions_per_app_max: int = 4
    functions_idle_s: float = 60.0
    functions_recycle_after: int = 500
    functions_log_retention_days: int = 14
    # Background work runs on the task queue (tasks/): ``gonghui worker`` processes, and
    # each ``gonghui serve`` process too unless this is false (API processes of a
    # deployment with separate workers; see deploy/).
    background_workers: bool = True
    # Threads per worker running tasks (deliveries, imports, cron ticks, housekeeping).
    worker_threads: int = Field(default=8, ge=1)
    # How often a worker's relay looks for due rows that nobody sent.
    task_poll_s: float = Field(default=0.5, gt=0)
    # How long a sent task may wait in the broker before a relay sends it again (a lost
    # message), and how soon the tasks of a worker that stopped beating (killed, its
    # machine gone) are sent again.
    task_send_lease_s: float = Field(default=300.0, gt=0)
    task_heartbeat_timeout_s: float = Field(default=30.0, gt=0)
    # First retry delay of a failed task; doubles per attempt up to an hour.
    task_backoff_base_s: float = Field(default=10.0, ge=0)
    # Finished tasks kept for operators to read: done ones, dead-lettered ones.
    tasks_keep_done_days: float = 7.0
    tasks_keep_dead_days: float = 30.0
    # At most this many deliveries of one app run at once in a worker, so that an app
    # whose endpoint hangs cannot hold up the others' deliveries.
    delivery_per_app_concurrency: int = Field(default=2, ge=1)
    # Cron triggers fire within this of their tick (a periodic task this often).
    scheduler_interval_s: float = Field(default=1.0, gt=0)
    # Outgoing calls to URLs chosen by developers (webhooks, functions' hosts; outbound.py):
    # networks they may reach although not public (CIDRs, e.g. ["10.1.0.0/16"]; labs and
    # tests), and the one deadline of each whole call.
    outbound_allow_networks: list[str] = Field(default_factory=list)
    outbound_timeout_s: float = Field(default=10.0, gt=0)
    # Set by ``gonghui serve`` for its server processes: the socket of the server's one
    # writer process for members' hot writes (see hotwrite/). Empty: a writer thread.
    hot_writer_socket: str = ""
    # Clean-up passes (housekeeping.py) run this often, and the benefits sweep (vouchers
    # expiring, unclaimed prizes forfeited) this often.
    housekeeping_interval_s: float = Field(default=300.0, gt=0)
    benefits_sweep_interval_s: float = Field(default=60.0, gt=0)
    # Reconciliation with WeChat Pay (reconciliation/service.py): yesterday's report is made
    # from this hour (display zone; WeChat Pay's bills are out by 10:00), checked this often.
    reconciliation_hour: int = Field(default=10, ge=0, le=23)
    reconciliation_check_s: float = Field(default=3600.0, gt=0)
    # The help-the-farmers mall (mall/): an unpaid order is closed (its stock, subsidy and
    # voucher given back) this long after checkout; a payment not notified this long after
    # the order went to WeChat Pay is asked for; a shipped order counts as received after
    # this many days, and a received one completed (no more refunds) after this many; the
    # sweep doing all that runs this often. The WeChat app members pay in (its openid);
    # empty: the mini program's.
    mall_unpaid_timeout_s: float = Field(default=1800.0, gt=0)
    mall_payment_query_after_s: float = Field(default=60.0, gt=0)
    mall_auto_receive_days: float = Field(default=10.0, gt=0)
    mall_after_sale_days: float = Field(default=7.0, ge=0)
    mall_sweep_interval_s: float = Field(default=60.0, gt=0)
    mall_appid: str = ""
    # Org-wide analytics (analytics/): the aggregates of the current month (and the
    # previous one, for a day) are recomputed this often; everything once a day.
    analytics_interval_s: float = Field(default=900.0, gt=0)
    analytics_full_every_s: float = Field(default=86400.0, gt=0)
    # An unfinished roster import whose process has not written for this long died with it.
    roster_import_stale_s: float = 600.0

    # A file upload (roster, question bank, app files, table data); its request may be
    # a little larger (multipart framing).
    upload_max_bytes: int = 20 * 1024 * 1024
    # Every request body, counted while it streams in (bodylimit.py): the ceiling, sized
    # for the largest upload; a JSON body of a route that declares no limit of its own.
    max_body_bytes: int = 21 * 1024 * 1024
    max_json_body_bytes: int = 2 * 1024 * 1024
    # Decoding caps for uploaded images and XLSX sheets (decompression bombs): pixels per
    # image; columns per sheet; the uncompressed size of a workbook's parts.
    image_max_pixels: int = 40_000_000
    xlsx_max_columns: int = 256
    xlsx_max_unpacked_bytes: int = 512 * 1024 * 1024
    # Rows per sheet, blank rows counted: a roster (Excel's own maximum), a question bank.
    roster_xlsx_max_rows: int = 1_048_576
    question_import_max_rows: int = 5000
    # Blob storage: "local" (data_dir/files) or "s3" (any S3-compatible bucket).
    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    # Where browsers reach the bucket, when that is not s3_endpoint_url (presigned
    # download URLs are signed for this host); empty means s3_endpoint_url.
    s3_public_endpoint_url: str = ""
    display_timezone: str = "Asia/Shanghai"
    # ``GET /metrics`` answers a caller presenting this as a bearer token (a Prometheus on
    # another machine); without it, only callers on this machine that came through no proxy.
    metrics_token: str = ""
    trusted_proxies: list[str] = Field(default_factory=list)
    # Risk control (risk/): requests from these networks are not counted per address or
    # network, never challenged for lacking a device id and never flag their network: the
    # machine itself (health checks, the benchmark, a developer's browser). Behind a proxy
    # set GONGHUI_TRUSTED_PROXIES, so that the client's own address is what counts.
    risk_trusted_networks: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    # The network an IPv4 address counts in (IPv6: its /64).
    risk_ipv4_prefix: int = Field(default=24, ge=8, le=32)
    # Who poses challenges: "image" (the built-in captcha; see risk/captcha.py).
    risk_challenge_provider: str = "image"
    risk_challenge_ttl_s: int = Field(default=300, ge=30, le=3600)

    @field_validator("outbound_allow_networks", "risk_trusted_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # a typo fails at start, not per call
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gonghui.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        # Not from resolved_database_url: resolving the default's path costs system calls,
        # and hot paths ask this on every request.
        return not self.database_url or self.database_url.startswith("sqlite")

    @property
    def resolved_public_base_url(self) -> str:
        """``public_base_url`` without its trailing slash, else the address bound."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = self.host.strip("[]")
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # every interface
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def resolved_wechat_base_url(self) -> str:
        return self.wechat_base_url or f"{self.resolved_public_base_url}/_sim/wechat"

    @property
    def resolved_wechatpay_base_url(self) -> str:
        return self.wechatpay_base_url or f"{self.resolved_public_base_url}/_sim/wechatpay"


@lru_cache
def get_settings() -> Settings:
    return Settings()
