"""``/metrics``: requests by route template (never the raw path), draws by outcome once
committed, the delivery queue; summed over a server's processes; readable only from this
machine through no proxy, or with the metrics token."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from tests.activities.conftest import (
    MemberFactory,
    create_activity,
    create_member,
    draw,
    lottery_config,
)
from tests.fixtures import StaffFactory, Tree
from tests.operations.conftest import queue_in_every_state
from tests.serverproc import ServerProcess

NOT_FOUND = {"error": {"code": "request.not_found", "message": "Not Found", "details": None}}
REQUESTS = "gonghui_http_request_duration_seconds"
# Every sample of a scrape, by (sample name, labels).
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def make_member() -> MemberFactory:
    return create_member


def scrape(client: httpx.Client, **headers: str) -> Samples:
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return samples_of(resp.text)


def samples_of(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def requests_seen(
    samples: Samples,
    route: str,
    status_class: str,
    method: str = "GET",
) -> float:
    labels = frozenset({"method": method, "route": route, "status_class": status_class}.items())
    return samples.get((f"{REQUESTS}_count", labels), 0.0)


def test_requests_are_counted_by_route_template_and_status_class(api: httpx.Client) -> None:
    before = scrape(api)
    for app_id in (101, 202, 303):
        assert api.get(f"/api/v1/baas/apps/{app_id}").status_code == 401
    stray = f"/wp-admin/{uuid.uuid4().hex}"
    assert api.get(stray).status_code == 404
    resp = api.get("/metrics")
    after = samples_of(resp.text)
    template = "/api/v1/baas/apps/{app_id}"
    assert requests_seen(after, template, "4xx") - requests_seen(before, template, "4xx") == 3
    assert requests_seen(after, "unmatched", "4xx") - requests_seen(before, "unmatched", "4xx") == 1
    # The raw paths never become labels: the series stay bounded by the routes.
    assert "/api/v1/baas/apps/101" not in resp.text
    assert stray not in resp.text


def test_draws_are_counted_by_outcome(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = lottery_config(
        [{"name": "五元券", "kind": "voucher", "weight": 1, "stock": 1, "value": 500}]
    )
    activity = create_activity(api, op.headers, tree.city_a, config=config)
    before = scrape(api)
    member = make_member(tree.city_a)
    outcomes = [draw(api, activity["id"], make_member(tree.city_a).headers) for _ in range(3)]
    assert [r.json()["outcome"] for r in outcomes] == ["won", "out_of_stock", "out_of_stock"]
    # A retry answered from the stored response is not another draw.
    first = draw(api, activity["id"], member.headers, **{"Idempotency-Key": "k-1"})
    again = draw(api, activity["id"], member.headers, **{"Idempotency-Key": "k-1"})
    assert first.json() == again.json()
    after = scrape(api)

    def drawn(samples: Samples, outcome: str) -> float:
        labels = frozenset({("outcome", outcome)})
        return samples.get(("gonghui_lottery_draws_total", labels), 0.0)

    assert drawn(after, "won") - drawn(before, "won") == 1
    assert drawn(after, "out_of_stock") - drawn(before, "out_of_stock") == 3


def test_a_proxied_or_remote_caller_is_told_there_is_no_such_route(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.get("/metrics").status_code == 200  # loopback, no proxy
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        resp = api.get("/metrics", headers={header: "for=203.0.113.7"})
        assert resp.status_code == 404
        assert resp.json() == NOT_FOUND
        assert "gonghui_" not in resp.text
    # A proxy on this machine (trusted, so its requests are not this machine's own).
    monkeypatch.setattr(get_settings(), "trusted_proxies", ["127.0.0.0/8"])
    assert api.get("/metrics").status_code == 404


def test_the_metrics_token_opens_metrics_to_a_remote_scraper(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "metrics_token", "s3cret-scrape-token")
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    ok = api.get("/metrics", headers={**proxied, "Authorization": "Bearer s3cret-scrape-token"})
    assert ok.status_code == 200
    assert REQUESTS in ok.text
    for wrong in ("Bearer s3cret-scrape-tokeN", "Bearer", "Basic s3cret-scrape-token", ""):
        resp = api.get("/metrics", headers={**proxied, "Authorization": wrong})
        assert resp.status_code == 404
        assert resp.json() == NOT_FOUND


@pytest.mark.slow
def test_metrics_sum_over_the_server_processes(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    """Two server processes and the writer process: a scrape, answered by either server
    process, counts the requests both answered and the draws the writer committed."""
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = lottery_config(
        [{"name": "五元券", "kind": "voucher", "weight": 1, "stock": 2, "value": 500}]
    )
    activity = create_activity(api, op.headers, tree.city_a, config=config)
    members = [make_member(tree.city_a) for _ in range(4)]
    server = ServerProcess(workers=2).start()
    assert server.process is not None
    this_run = f"metrics-{server.process.pid}"
    run_dir = server.data_dir / "run"
    try:
        answered_by: dict[str, int] = {}

        def ping(_: int) -> str:
            # A connection each: the two processes take turns at accepting them.
            resp = httpx.get(f"{server.url}/healthz", timeout=30)
            assert resp.status_code == 200
            return resp.headers["x-request-id"][:16]  # the answering process's prefix

        with ThreadPoolExecutor(8) as pool:
            for _ in range(20):
                for prefix in pool.map(ping, range(20)):
                    answered_by[prefix] = answered_by.get(prefix, 0) + 1
                if len(answered_by) == 2:
                    break
        assert len(answered_by) == 2, "one process answered every request"
        with httpx.Client(base_url=server.url, timeout=30) as client:
            outcomes = [draw(client, activity["id"], m.headers).json() for m in members]
            samples = scrape(client)
            assert sorted(o["outcome"] for o in outcomes) == ["out_of_stock"] * 2 + ["won"] * 2
            assert requests_seen(samples, "/healthz", "2xx") == sum(answered_by.values())
            draws_seen = {
                dict(labels)["outcome"]: value
                for (name, labels), value in samples.items()
                if name == "gonghui_lottery_draws_total"
            }
            assert draws_seen == {"won": 2.0, "out_of_stock": 2.0}
            assert samples[("gonghui_delivery_queue_depth", frozenset())] == 0
            assert samples[("gonghui_db_pool_size", frozenset())] > 0
        assert [p.name for p in run_dir.iterdir()] == [this_run]
    finally:
        server.stop()
    assert list(run_dir.iterdir()) == []  # the run's directory went with it


def test_the_task_queue_by_name_and_state_its_lag_and_its_workers(
    api: httpx.Client, request: pytest.FixtureRequest
) -> None:
    queue_in_every_state(request)
    samples = scrape(api)

    def tasks_in(name: str, state: str) -> float | None:
        return samples.get(("gonghui_tasks", frozenset({"name": name, "state": state}.items())))

    assert [tasks_in("tests.ops_job", s) for s in ("due", "waiting", "running", "dead")] == [
        1.0,
        1.0,
        1.0,
        1.0,
    ]
    assert tasks_in("tests.ops_report", "waiting") == 1.0
    assert tasks_in("tests.ops_report", "dead") is None  # only the states it has
    assert 20.0 <= samples[("gonghui_task_lag_seconds", frozenset())] < 30.0
    assert samples[("gonghui_task_workers", frozenset())] == 1.0
