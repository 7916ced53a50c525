"""Accounts tests: simulators and adapter caches start empty for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gonghui.integrations import aliyun_sms_simulator, wechat_simulator
from gonghui.integrations.wechat import token_cache


@pytest.fixture(autouse=True)
def fresh_integrations() -> Iterator[None]:
    wechat_simulator.reset()
    aliyun_sms_simulator.reset()
    token_cache.clear()
    yield
    token_cache.clear()
