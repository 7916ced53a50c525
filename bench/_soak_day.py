"""One client process of ``soak.py``: its share of a union's day against the server, at a
steady rate until the run's end, every request recorded.

Run by ``soak.py`` as ``python bench/_soak_day.py <plan.json> <index> <out.json>``; the plan
(written by ``soak.py``'s set-up) names the server, the app key, the activities, the quiz's
answers, the sample files and the roster, of which this client takes every ``clients``-th
person from ``index`` on. It writes the requests it made, the paid orders it created and
the draws it won (each should reach the webhook receiver).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API = "/api/v1"
# A member's access token is used this long before they refresh it (it lives 15 minutes).
TOKEN_REUSE_S = 600


@dataclass(frozen=True)
class SignedIn:
    auth: dict[str, str]
    refresh_token: str
    at: float  # time.monotonic() of the sign-in or refresh


class Day:
    """One client's share of the day: member visits and app calls at a steady rate, every
    request recorded as (seconds since the start, kind, status, milliseconds, error code)."""

    def __init__(self, plan: dict[str, Any], index: int) -> None:
        self.plan = plan
        self.http = httpx.Client(base_url=plan["base"], timeout=30)
        self.key = {"X-Gonghui-App-Key": plan["app_key"]}
        self.people = plan["people"][index :: plan["clients"]]
        self.turn = 0
        self.signed: dict[str, SignedIn] = {}
        self.interval = plan["clients"] / plan["rate"]
        self.next_at = time.monotonic()
        self.rows: list[tuple[float, str, int, float, str]] = []
        self.orders: list[int] = []
        self.uploads: dict[int, str] = {}
        self.paid: list[int] = []
        self.wins: list[int] = []
        self.rnd = random.Random(index)

    def call(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        """One request at the client's pace; None unless it succeeded."""
        self.next_at += self.interval
        delay = self.next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1:  # fallen behind (a slow answer): no burst to catch up
            self.next_at = time.monotonic()
        at = time.time() - self.plan["started"]
        began = time.perf_counter()
        try:
            resp = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            ms = (time.perf_counter() - began) * 1000
            self.rows.append((at, kind, 0, ms, type(exc).__name__))
            return None
        ms = (time.perf_counter() - began) * 1000
        code = ""
        if not resp.is_success:
            try:
                code = str(resp.json()["error"]["code"])
            except (ValueError, KeyError, TypeError):
                code = f"http_{resp.status_code}"
        self.rows.append((at, kind, resp.status_code, ms, code))
        return resp if resp.is_success else None

    def run(self) -> None:
        ends = self.plan["started"] + self.plan["duration_s"]
        # A member's visit is some ten requests, an app's call three: members make a little
        # over half of the requests, the app's orders a third, its files the rest.
        visits = (self.member_visit, self.app_orders, self.app_files)
        while time.time() < ends:
            self.rnd.choices(visits, weights=(3, 5, 2))[0]()

    def signed_in(self, person: dict[str, str]) -> dict[str, str] | None:
        """A member's authorization header: the one they hold while it is fresh, else from a
        refresh (mostly) or a new sign-in by SMS code; None when that fails."""
        held = self.signed.get(person["phone"])
        if held and time.monotonic() - held.at < TOKEN_REUSE_S:
            return held.auth
        pair = None
        if held and self.rnd.random() < 0.7:
            body = {"refresh_token": held.refresh_token}
            pair = self.call("refresh", "POST", f"{API}/auth/refresh", json=body)
        if pair is None:
            phone = {"phone": person["phone"]}
            if not self.call("sms_send", "POST", f"{API}/auth/sms/send", json=phone):
                return None
            outbox = self.call("sms_outbox", "GET", "/_sim/sms/outbox", params=phone)
            if outbox is None:
                return None
            code = outbox.json()[-1]["code"]
            pair = self.call(
                "sms_login", "POST", f"{API}/auth/sms/login", json={**phone, "code": code}
            )
            if pair is None:
                return None
        tokens = pair.json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        self.signed[person["phone"]] = SignedIn(auth, tokens["refresh_token"], time.monotonic())
        return auth

    def member_visit(self) -> None:
        """The next member of this client's share of the roster: signs in, verifies once,
        reads the hub and the lottery, maybe takes the quiz, draws, maybe reads the wallet."""
        person = self.people[self.turn % len(self.people)]
        self.turn += 1
        auth = self.signed_in(person)
        if auth is None:
            return
        me = self.call("me", "GET", f"{API}/auth/me", headers=auth)
        if me is None:
            return
        if me.json()["membership"] is None:
            body = {"name": person["name"], "id_number": person["id_number"]}
            if not self.call("verify", "POST", f"{API}/members/verify", json=body, headers=auth):
                return
        hub = self.call("hub", "GET", f"{API}/hub", params={"limit": 4}, headers=auth)
        if hub is not None and hub.json()["next_cursor"] and self.rnd.random() < 0.3:
            params = {"limit": 4, "cursor": hub.json()["next_cursor"]}
            self.call("hub_next", "GET", f"{API}/hub", params=params, headers=auth)
        lottery = self.plan["lottery"]
        self.call("hub_activity", "GET", f"{API}/hub/activities/{lottery}", headers=auth)
        if self.rnd.random() < 0.5:
            self.quiz(auth)
        for _ in range(self.rnd.randint(1, 3)):
            entropy = {"entropy": secrets.token_hex(8)}
            drawn = self.call(
                "draw", "POST", f"{API}/activities/{lottery}/draws", json=entropy, headers=auth
            )
            if drawn is not None and drawn.json()["won"]:
                self.wins.append(drawn.json()["draw_id"])
        if self.rnd.random() < 0.5:
            self.call("wallet", "GET", f"{API}/me/wallet", headers=auth)

    def quiz(self, auth: dict[str, str]) -> None:
        url = f"{API}/activities/{self.plan['quiz']}/quiz/attempts"
        attempt = self.call("quiz_start", "POST", url, headers=auth)
        if attempt is None:
            return
        right = self.plan["answers"]
        answers = {
            q["id"]: [right[str(q["id"])] if self.rnd.random() < 0.8 else 3 - right[str(q["id"])]]
            for q in attempt.json()["questions"]
        }
        url = f"{API}/quiz/attempts/{attempt.json()['attempt_id']}/submit"
        self.call("quiz_submit", "POST", url, json={"answers": answers}, headers=auth)

    def app_orders(self) -> None:
        """An order created (half of them paid: the trigger's filter), one read, a member's
        orders listed."""
        paid = self.rnd.random() < 0.5
        member = f"m{self.rnd.randrange(len(self.plan['people']))}"
        body = {"member": member, "status": "paid" if paid else "pending",
                "amount": self.rnd.randint(100, 99_900), "note": "浸泡测试订单"}  # fmt: skip
        url = f"{API}/baas/data/orders/records"
        created = self.call("record_create", "POST", url, json=body, headers=self.key)
        if created is not None:
            self.orders = [*self.orders[-999:], created.json()["id"]]
            if paid:
                self.paid.append(created.json()["id"])
        if self.orders:
            one = self.rnd.choice(self.orders)
            self.call("record_get", "GET", f"{url}/{one}", headers=self.key)
        params = {"where": json.dumps({"member": member}), "limit": 10}
        self.call("record_list", "GET", url, params=params, headers=self.key)

    def app_files(self) -> None:
        """A sample uploaded, then one of this client's recent files fetched through its
        signed URL and compared with what was uploaded."""
        sample = self.rnd.choice(self.plan["files"])
        data = base64.b64decode(sample["data"])
        uploaded = self.call(
            "file_upload",
            "POST",
            f"{API}/baas/files",
            files={"file": (sample["name"], data, sample["type"])},
            data={"folder": "soak"},
            headers=self.key,
        )
        if uploaded is not None:
            self.uploads[uploaded.json()["id"]] = hashlib.sha256(data).hexdigest()
            if len(self.uploads) > 200:
                del self.uploads[next(iter(self.uploads))]
        if not self.uploads:
            return
        file_id, digest = self.rnd.choice(list(self.uploads.items()))
        signed = self.call("file_url", "GET", f"{API}/baas/files/{file_id}/url", headers=self.key)
        if signed is None:
            return
        got = self.call("file_download", "GET", signed.json()["url"], follow_redirects=True)
        if got is not None and hashlib.sha256(got.content).hexdigest() != digest:
            at, kind, status, ms, _ = self.rows[-1]
            self.rows[-1] = (at, kind, status, ms, "bytes_differ")


if __name__ == "__main__":
    plan_path, index, out_path = sys.argv[1:4]
    day = Day(json.loads(Path(plan_path).read_text()), int(index))
    day.run()
    Path(out_path).write_text(json.dumps({"rows": day.rows, "paid": day.paid, "wins": day.wins}))
