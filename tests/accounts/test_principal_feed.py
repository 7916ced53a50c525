"""An access token carries its principal; the change feed tells every process when a
token's claims (or a principal it loaded) no longer hold."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, insert, select, update

from gonghui import clock, housekeeping, invalidation
from gonghui.accounts import principal as principals
from gonghui.accounts.access import issue_access_token
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import AuthSession, Provider, SessionKind, User
from gonghui.accounts.service import create_user
from gonghui.accounts.tokens import start_session
from gonghui.db import unit_of_work
from gonghui.errors import Unauthenticated
from gonghui.invalidation import CacheChange
from gonghui.orgs.models import Org, Role, StaffRole
from gonghui.orgs.service import grant_role
from gonghui.settings import get_settings
from gonghui.tenancy import SYSTEM, Grant
from tests.fixtures import StaffFactory, Tree, statements
from tests.serverproc import ServerProcess

# Other processes are simulated by writing the feed's table alone (with Redis: as if their
# publish was lost), so the table is read as often as without Redis.
pytestmark = [pytest.mark.database_fallback, pytest.mark.usefixtures("polled_feed")]


def _resolve(token: str) -> principals.Principal:
    with unit_of_work(read_only=True) as session:
        return principals.resolve(session, token)


def _signed_in() -> tuple[int, str, str]:
    with unit_of_work() as session:
        user = create_user(session, display_name="someone")
        pair = start_session(session, user=user)
    return pair.user_id, pair.session_id, pair.access_token


def _change(
    *, user_id: int | None = None, session_id: str | None = None, **row: Any
) -> dict[str, Any]:
    """A feed row of the principals' topic, as :func:`principals.changed` writes it."""
    key = f"user:{user_id}" if user_id is not None else None
    key = f"session:{session_id}" if session_id is not None else key
    return {"topic": principals.TOPIC, "key": key, "committed_at": clock.now(), **row}


def _in_another_process(**change: Any) -> None:
    """Record a change as another server process does: in the database only."""
    with unit_of_work() as session:
        session.execute(insert(CacheChange).values(**_change(**change)))


def _feed_due() -> None:
    """Move past the time within which every process must have read the feed."""
    clock.advance(timedelta(seconds=invalidation.FEED_MAX_LAG_S + 0.5))


def _revoked_in_another_process(sid: str, **change: Any) -> None:
    with unit_of_work() as session:
        session.execute(
            update(AuthSession).where(AuthSession.id == sid).values(revoked_at=clock.now())
        )
        session.execute(insert(CacheChange).values(**_change(**change)))


def test_a_token_resolves_from_its_own_claims_until_the_feed_says_otherwise(
    tree: Tree,
) -> None:
    with unit_of_work() as session:
        user = create_user(session, display_name="operator")
        grant_role(session, actor=SYSTEM, org_id=tree.city_a, user_id=user.id, role=Role.OPERATOR)
        user_id = user.id
        city_path = session.get_one(Org, tree.city_a).path
    # Signed in once the grant is old news: a token issued within the clock margin of a
    # change to its user is checked against the database.
    clock.advance(timedelta(seconds=principals.CLOCK_MARGIN_S + 1))
    with unit_of_work() as session:
        user = session.get_one(User, user_id)
        token = start_session(session, user=user, kind=SessionKind.STAFF).access_token
    expected = (Grant(org_id=tree.city_a, org_path=city_path, role=Role.OPERATOR),)
    with statements() as seen:
        assert _resolve(token).grants == expected  # reads only the feed, which is due
    assert seen == []

    # The grant goes behind the feed's back: the token still says what it said, and
    # resolving it reads nothing at all.
    with unit_of_work() as session:
        session.execute(delete(StaffRole).where(StaffRole.user_id == user_id))
    with statements() as seen:
        assert _resolve(token).grants == expected
    assert seen == []

    # Another process records the change: once this process's feed read is due, the
    # token's claims give way to the database.
    _in_another_process(user_id=user_id)
    _feed_due()
    assert _resolve(token).grants == ()
    # Loaded again while the change is within the clock margin; once read past it, held.
    clock.advance(timedelta(seconds=principals.CLOCK_MARGIN_S + 1))
    assert _resolve(token).grants == ()
    with statements() as seen:
        assert _resolve(token).grants == ()
    assert seen == []


def test_a_revocation_in_another_process_refuses_the_token_once_the_feed_is_read() -> None:
    _, session_id, token = _signed_in()
    _resolve(token)
    _revoked_in_another_process(session_id, session_id=session_id)
    _feed_due()
    with pytest.raises(Unauthenticated) as refused:
        _resolve(token)
    assert refused.value.code == AccountsError.SESSION_REVOKED


def test_a_change_of_the_org_tree_makes_every_token_check_the_database() -> None:
    _, session_id, token = _signed_in()
    _resolve(token)
    _revoked_in_another_process(session_id)  # the row names no one: everyone changed
    _feed_due()
    with pytest.raises(Unauthenticated):
        _resolve(token)


def test_a_change_committed_after_a_later_id_is_still_seen() -> None:
    """PostgreSQL hands out ids before commit, so id n+1 can be visible before id n."""
    user_id, session_id, token = _signed_in()
    _resolve(token)
    with unit_of_work() as session:
        top = session.scalar(select(func.max(CacheChange.id))) or 0
    _in_another_process(id=top + 2, user_id=user_id + 1000)
    _feed_due()
    assert _resolve(token).user_id == user_id  # the feed now has a gap at top + 1
    _revoked_in_another_process(session_id, id=top + 1, session_id=session_id)
    _feed_due()
    with pytest.raises(Unauthenticated):
        _resolve(token)


def test_a_token_without_claims_is_loaded_from_the_database_and_held() -> None:
    user_id, session_id, _ = _signed_in()
    bare = issue_access_token(user_id=user_id, session_id=session_id)
    assert _resolve(bare).user_id == user_id
    with statements() as seen:
        assert _resolve(bare).user_id == user_id
    assert seen == []
    # A revocation in this process applies at its commit, without waiting for the feed.
    with unit_of_work() as session:
        from gonghui.accounts.tokens import revoke_session

        revoke_session(session, session_id=session_id, reason="logout")
    with pytest.raises(Unauthenticated):
        _resolve(bare)


@pytest.mark.slow
def test_a_sign_out_through_one_process_locks_the_token_out_of_every_process(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    staff = make_staff(None, None)
    server = ServerProcess(workers=2).start()
    try:

        def statuses(times: int) -> set[int]:
            seen = set()
            for _ in range(times):  # a new connection each time: either worker may answer
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    seen.add(client.get("/api/v1/auth/me", headers=staff.headers).status_code)
            return seen

        assert statuses(12) == {200}
        # Signed out through this test process's server: the two others learn it from the
        # feed, within FEED_MAX_LAG_S of their last read.
        assert api.post("/api/v1/auth/logout", headers=staff.headers).status_code == 204
        time.sleep(invalidation.FEED_MAX_LAG_S + 0.5)
        assert statuses(12) == {401}
    finally:
        server.stop()


def test_housekeeping_deletes_feed_rows_no_token_can_predate() -> None:
    user_id, _, _ = _signed_in()
    _in_another_process(user_id=user_id)
    clock.advance(timedelta(seconds=get_settings().access_token_ttl_s))
    assert housekeeping.run()["cache_changes"] == 0  # tokens issued before it still live
    clock.advance(timedelta(days=1))
    _in_another_process(user_id=user_id + 1)
    assert housekeeping.run()["cache_changes"] == 1
    with unit_of_work() as session:
        left = session.scalars(select(CacheChange.key)).all()
    assert left == [f"user:{user_id + 1}"]


def test_a_new_users_first_phone_writes_no_change_but_a_phone_for_an_existing_one_does() -> None:
    from gonghui.accounts import identities

    def changes_of(user_id: int) -> int:
        with unit_of_work(read_only=True) as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(CacheChange)
                    .where(CacheChange.key == f"user:{user_id}")
                )
                or 0
            )

    with unit_of_work() as session:  # a first sign-in by phone: nobody's view can be stale
        newcomer = identities.user_for_phone(session, phone="13900000301").id
    assert changes_of(newcomer) == 0
    with unit_of_work() as session:  # nor by WeChat, the mini program telling the phone
        who = identities.WeChatIdentity(
            Provider.WECHAT_MINI, "wx-platform", "o-new-303", None, phone="13900000303"
        )
        from_wechat = identities.user_for_wechat(session, who=who).id
    assert changes_of(from_wechat) == 0
    user_id, _, _ = _signed_in()  # an existing user (say, WeChat only) links a phone
    with unit_of_work() as session:
        identities.link_phone(session, user=session.get_one(User, user_id), phone="13900000302")
    assert changes_of(user_id) == 1
