"""The members' service catalogue: a union lists a third-party service (an OAuth client with
a card); its members open it from the H5 and arrive at the provider, which signs them in
with their union account; the union sees opens by category and union."""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qs, urlsplit

import httpx
from PIL import Image
from sqlalchemy import select

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Org, Role
from gonghui.settings import get_settings
from tests.fixtures import Staff, StaffFactory, Tree, page_csrf
from tests.openplatform.conftest import (
    BrowserFactory,
    ClientFactory,
    RegisteredClient,
    authorize_url,
    pkce,
    redirect_params,
)

LAUNCH = "http://127.0.0.1:9/launch"


def _card(
    api: httpx.Client, staff: Staff, client: RegisteredClient, **body: object
) -> httpx.Response:
    return api.put(
        f"/api/v1/oauth-clients/{client.id}/service",
        json={"category": "employment", "title": "羊城就业通", "description": "岗位推荐与技能培训",
              "launch_uri": LAUNCH, **body},
        headers=staff.headers,
    )  # fmt: skip


def _offered(browser: object) -> list[str]:
    page = browser.http.get("/h5/services")  # type: ignore[attr-defined]
    assert page.status_code == 200
    return re.findall(r"<h3>([^<]+)</h3>", page.text)


def _open(browser: object, card_id: int) -> httpx.Response:
    http: httpx.Client = browser.http  # type: ignore[attr-defined]
    page = http.get("/h5/services")
    return http.post(f"/h5/services/{card_id}/open", data={"csrf": page_csrf(page.text)})


def test_a_listed_service_is_opened_by_the_members_it_is_shown_to_who_arrive_signed_in(
    api: httpx.Client,
    tree: Tree,
    city_developer: Staff,
    register_client: ClientFactory,
    member_browser: BrowserFactory,
) -> None:
    client = register_client()  # of city A
    card = _card(api, city_developer, client)
    assert card.status_code == 200, card.text
    card_id = card.json()["id"]
    in_district = member_browser(tree.grassroots_a1x)
    in_city = member_browser(tree.city_a)
    elsewhere = member_browser(tree.grassroots_b1)
    assert _offered(in_district) == []  # not listed yet
    assert _open(in_district, card_id).status_code == 404

    listed = _card(api, city_developer, client, listed=True, shown_to=[tree.district_a1])
    assert listed.json()["shown_to"] == [tree.district_a1]
    assert _offered(in_district) == ["羊城就业通"]
    assert _offered(in_city) == []  # shown to the district only
    assert _offered(elsewhere) == []  # another city: never
    assert _open(elsewhere, card_id).status_code == 404
    assert _open(in_city, card_id).status_code == 404

    opened = _open(in_district, card_id)
    assert opened.status_code == 303
    target = urlsplit(opened.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == LAUNCH
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query == {"iss": get_settings().resolved_public_base_url, "target_link_uri": LAUNCH}
    # The provider starts its own request; the member, signed in on the H5, consents once
    # and the provider gets its code.
    _, challenge = pkce()
    assert "code" in redirect_params(in_district.authorize(authorize_url(client, challenge)))

    _open(in_district, card_id)
    usage = api.get("/api/v1/open-platform/services/usage", headers=city_developer.headers)
    with unit_of_work(read_only=True) as session:
        union = session.get(Org, tree.grassroots_a1x)
        assert union is not None
    assert usage.json() == [
        {"category": "employment", "org_id": union.id, "org_name": union.name, "opens": 2}
    ]

    # A disabled client's card is gone from the catalogue at once.
    api.patch(
        f"/api/v1/oauth-clients/{client.id}",
        json={"disabled": True},
        headers=city_developer.headers,
    ).raise_for_status()
    assert _offered(in_district) == []
    assert _open(in_district, card_id).status_code == 404


def test_a_card_is_checked_kept_within_its_unions_and_audited(
    api: httpx.Client,
    tree: Tree,
    city_developer: Staff,
    make_staff: StaffFactory,
    register_client: ClientFactory,
) -> None:
    client = register_client()
    elsewhere = _card(api, city_developer, client, launch_uri="https://jobs.example.com/launch")
    assert elsewhere.status_code == 422
    assert elsewhere.json()["error"]["details"][0]["field"] == "launch_uri"
    hidden = _card(api, city_developer, client, shown_to=[tree.city_b])
    assert hidden.status_code == 404  # not an org this developer sees
    province_dev = make_staff(tree.province, Role.DEVELOPER)
    above = _card(api, province_dev, client, shown_to=[tree.province])
    assert above.status_code == 422
    assert above.json()["error"]["details"][0]["field"] == "shown_to.0"
    assert _card(api, city_developer, client, category="gambling").status_code == 422
    other_dev = make_staff(tree.city_b, Role.DEVELOPER)
    assert _card(api, other_dev, client).status_code == 404
    assert _card(api, city_developer, client).status_code == 200
    assert api.get("/api/v1/open-platform/services/usage", headers=other_dev.headers).json() == []
    with unit_of_work(read_only=True) as session:
        actions = list(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.action == "openplatform.service.set")
            )
        )
    assert actions == ["openplatform.service.set"]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 20, 30)).save(out, format="PNG")
    return out.getvalue()


def test_a_cards_icon_is_an_image_members_it_is_shown_to_may_fetch(
    api: httpx.Client,
    tree: Tree,
    city_developer: Staff,
    register_client: ClientFactory,
    member_browser: BrowserFactory,
) -> None:
    client = register_client()
    card_id = _card(api, city_developer, client, listed=True).json()["id"]
    url = f"/api/v1/oauth-clients/{client.id}/service/icon"
    not_image = api.put(
        url, files={"file": ("x.png", b"not an image", "image/png")}, headers=city_developer.headers
    )
    assert not_image.status_code == 422
    uploaded = _png()
    done = api.put(
        url, files={"file": ("i.png", uploaded, "image/png")}, headers=city_developer.headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["has_icon"] is True
    member = member_browser(tree.grassroots_a1x)
    # From local disk it streams; from a bucket it is a redirect to a short-lived signed URL.
    icon = member.http.get(f"/h5/services/{card_id}/icon", follow_redirects=True)
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/png")
    assert icon.content == uploaded
    assert (
        member_browser(tree.grassroots_b1).http.get(f"/h5/services/{card_id}/icon").status_code
        == 404
    )
