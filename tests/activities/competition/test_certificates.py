"""Certificates: once the ranking is published, each ranked member downloads a PDF naming
them, their union, the competition and their rank; the organiser downloads any entry's;
nobody gets one before publication or for someone else's entry."""

from __future__ import annotations

import io
from typing import Any

import httpx
from pypdf import PdfReader

from gonghui.orgs.models import Role
from tests.activities.competition.conftest import judged_competition
from tests.activities.conftest import MemberFactory, h5_get
from tests.fixtures import StaffFactory, Tree


def _text(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/pdf"
    assert resp.headers["content-disposition"].startswith("attachment;")
    assert "no-store" in resp.headers["cache-control"]
    return PdfReader(io.BytesIO(resp.content)).pages[0].extract_text()


def test_ranked_members_and_the_organiser_download_certificates_after_publication(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])
    competition = judged.competition
    mine = f"/api/v1/activities/{competition.id}/competition/certificate"
    wang, li = judged.members["王师傅"], judged.members["李工匠"]

    early = api.get(mine, headers=wang.headers)
    assert early.status_code == 404
    assert early.json()["error"]["code"] == "competition.results_not_published"

    for name, craft in (("王师傅", 9), ("李工匠", 5)):
        resp = api.put(
            f"/api/v1/competition/panels/{judged.panel}/judging/"
            f"{judged.entries[name]['code']}/scores",
            json={"scores": {"craft": craft, "novelty": craft}},
            headers=judge.headers,
        )
        assert resp.status_code == 200, resp.text
    base = f"/api/v1/activities/{competition.id}/competition"
    api.post(f"/api/v1/competition/panels/{judged.panel}/close", headers=competition.operator)
    assert api.post(f"{base}/results/publish", headers=competition.operator).status_code == 200

    first = _text(api.get(mine, headers=wang.headers))
    assert "荣 誉 证 书" in first
    assert "王师傅" in first
    assert "李工匠" not in first
    assert "荣获第 1 名" in first
    assert "在「职工技能大赛」中" in first
    assert judged.entries["王师傅"]["code"] in first
    second = _text(api.get(mine, headers=li.headers))
    assert "李工匠" in second
    assert "荣获第 2 名" in second

    # On the H5 the activity page offers the download, served to the member's page sign-in.
    page = h5_get(api, wang, f"/h5/activities/{competition.id}")
    assert f"/h5/activities/{competition.id}/certificate.pdf" in page.text
    assert "王师傅" in _text(h5_get(api, wang, f"/h5/activities/{competition.id}/certificate.pdf"))

    # A member who did not take part has no certificate; nor does a stranger to the org.
    outsider = make_member(tree.grassroots_a1x, name="路人")
    assert api.get(mine, headers=outsider.headers).status_code == 404

    entry = judged.entries["李工匠"]["id"]
    staff_copy = f"{base}/entries/{entry}/certificate"
    assert "李工匠" in _text(api.get(staff_copy, headers=competition.operator))
    other_city = make_staff(tree.city_b, Role.ADMIN)
    assert api.get(staff_copy, headers=other_city.headers).status_code in (403, 404)
    # Members never reach the organiser's route, even for their own entry.
    assert api.get(staff_copy, headers=li.headers).status_code in (401, 403)
