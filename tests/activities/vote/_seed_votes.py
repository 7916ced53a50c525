"""The seed of the concurrent-votes test, run in a child process on the server's settings
(``python -c "from tests.activities.vote._seed_votes import seed_main; seed_main()"``)."""

from __future__ import annotations

import json
import sys

MEMBERS = 240
CANDIDATES = 4
RULES = {"votes_per_day": 4, "votes_per_candidate_per_day": 2, "votes_total": 3}


def seed_main() -> None:
    """Runs in a child process on the server's settings: members, an organiser, a live vote
    with approved candidates; prints JSON."""
    from datetime import timedelta

    from gonghui import clock
    from gonghui.accounts.models import SessionKind
    from gonghui.accounts.service import create_staff_user, create_user
    from gonghui.accounts.tokens import start_session
    from gonghui.activities import service as activities
    from gonghui.activities.schemas import ActivityCreate
    from gonghui.activities.vote import candidates
    from gonghui.db import unit_of_work
    from gonghui.members import service as members
    from gonghui.members.idnumber import check_character
    from gonghui.migrations import upgrade
    from gonghui.orgs import service as orgs
    from gonghui.orgs.models import OrgLevel, Role
    from gonghui.tenancy import SYSTEM

    upgrade()
    tokens = []
    with unit_of_work() as session:
        org = orgs.create_org(
            session, actor=SYSTEM, code="VOTE", name="评选工会", level=OrgLevel.CITY, parent_id=None
        )
        for n in range(MEMBERS):
            first17 = f"440101{1950 + n // 1000:04d}0101{n % 1000:03d}"
            number = first17 + check_character(first17)
            user = create_user(session, display_name=f"m{n}")
            members.add_roster_entry(
                session, actor=SYSTEM, org_id=org.id, name=f"会员{n}", id_number=number
            )
            members.verify(session, user_id=user.id, name=f"会员{n}", id_number=number)
            tokens.append(start_session(session, user=user).access_token)
        staff = create_staff_user(session, username="organiser", password="organiser-pass-1")
        orgs.grant_role(session, actor=SYSTEM, org_id=org.id, user_id=staff.id, role=Role.OPERATOR)
        start = clock.now() - timedelta(minutes=1)
        activity = activities.create_activity(
            session,
            actor=SYSTEM,
            data=ActivityCreate.model_validate(
                {
                    "org_id": org.id,
                    "title": "劳模评选",
                    "starts_at": start.isoformat(),
                    "ends_at": (start + timedelta(days=1)).isoformat(),
                    "config": {"kind": "vote", "vote": RULES},
                }
            ),
        )
        activities.publish(session, actor=SYSTEM, activity_id=activity.id)
        ids = []
        for n in range(CANDIDATES):
            c = candidates.nominate(
                session,
                actor=SYSTEM,
                activity_id=activity.id,
                org_id=org.id,
                fields=candidates.CandidateFields(name=f"候选人{n}"),
            )
            candidates.review(
                session,
                actor=SYSTEM,
                activity_id=activity.id,
                candidate_id=c.id,
                approve=True,
                reason=None,
            )
            ids.append(c.id)
        session.flush()
        organiser = start_session(session, user=staff, kind=SessionKind.STAFF).access_token
        seeded = {"activity_id": activity.id, "tokens": tokens, "candidates": ids}
        seeded["organiser"] = organiser
    sys.stdout.write(json.dumps(seeded))
