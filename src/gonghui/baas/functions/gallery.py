"""Ready-made functions an app installs in one call, with the trigger that runs them: the
logic activity templates rely on, carried by app copy like any other function."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from gonghui.baas.functions import service as functions
from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.models import Function
from gonghui.baas.triggers import service as triggers
from gonghui.baas.triggers.models import TargetKind, TriggerEvent
from gonghui.errors import NotFound
from gonghui.tenancy import Actor


@dataclass(frozen=True)
class GalleryFunction:
    name: str
    title: str
    description: str
    event: TriggerEvent
    source: str
    env: dict[str, str] = field(default_factory=dict)


AWARD_POINTS = '''\
def handler(event, context):
    """Award POINTS points to the member the event is about, once per event."""
    data = event["data"]
    return context.sdk.call("benefits.award_points", {
        "membership_id": data["membership_id"],
        "activity_id": data.get("activity_id"),
        "points": int(context.env.get("POINTS", "10")),
        "key": event["id"],
    })
'''

NOTIFY_WINNERS = '''\
def handler(event, context):
    """Tell a winner by SMS what they won, once per win."""
    data = event["data"]
    prize = data["prize"]["name"]
    return context.sdk.call("members.notify_sms", {
        "membership_id": data["membership_id"],
        "params": {"prize": prize},
        "text": "恭喜您在工会活动中获得" + prize + "，请到“我的权益”查看。",
        "key": event["id"],
    })
'''

GALLERY = {
    g.name: g
    for g in (
        GalleryFunction(
            name="award-points",
            title="参与活动奖励积分",
            description="Award points to every member who takes part (env POINTS).",
            event=TriggerEvent.PARTICIPATED,
            source=AWARD_POINTS,
            env={"POINTS": "10"},
        ),
        GalleryFunction(
            name="notify-winners",
            title="中奖短信通知",
            description="Send each winner an SMS naming the prize.",
            event=TriggerEvent.PRIZE_WON,
            source=NOTIFY_WINNERS,
        ),
    )
}


def install(
    session: Session,
    *,
    actor: Actor,
    app_id: int,
    template: str,
    name: str | None = None,
    env: dict[str, str] | None = None,
    with_trigger: bool = True,
) -> Function:
    """Deploy a gallery function (with the app's server rights) and, by default, the
    trigger that runs it on its event."""
    item = GALLERY.get(template)
    if item is None:
        raise NotFound(FunctionsError.NOT_IN_GALLERY, f"no gallery function {template}")
    fn_name = name or item.name
    fn = functions.deploy(
        session,
        actor=actor,
        app_id=app_id,
        name=fn_name,
        spec=functions.FunctionSpec(
            source=item.source, runs_as="server", env={**item.env, **(env or {})}
        ),
    )
    if with_trigger:
        triggers.create_trigger(
            session,
            actor=actor,
            app_id=app_id,
            spec=triggers.TriggerSpec(
                name=fn_name,
                event=item.event,
                target_kind=TargetKind.FUNCTION,
                function_name=fn_name,
            ),
        )
    return fn
