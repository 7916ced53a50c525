from __future__ import annotations

from fastapi import APIRouter, status

from gonghui.deps import CurrentStaff, SessionDep
from gonghui.orgs import service
from gonghui.orgs.models import Role
from gonghui.orgs.schemas import OrgCreate, OrgMove, OrgRead, OrgRename, RoleGrant, StaffRoleRead
from gonghui.types import Id

router = APIRouter(prefix="/api/v1/orgs", tags=["orgs"])


@router.get("")
def list_orgs(
    staff: CurrentStaff,
    session: SessionDep,
    root_id: Id | None = None,
    include_archived: bool = False,
) -> list[OrgRead]:
    orgs = service.list_orgs(
        session, actor=staff, root_id=root_id, include_archived=include_archived
    )
    return [OrgRead.model_validate(o) for o in orgs]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_org(body: OrgCreate, staff: CurrentStaff, session: SessionDep) -> OrgRead:
    org = service.create_org(session, actor=staff, **body.model_dump())
    return OrgRead.model_validate(org)


@router.get("/{org_id}")
def get_org(org_id: Id, staff: CurrentStaff, session: SessionDep) -> OrgRead:
    return OrgRead.model_validate(service.get_org(session, actor=staff, org_id=org_id))


@router.patch("/{org_id}")
def rename_org(org_id: Id, body: OrgRename, staff: CurrentStaff, session: SessionDep) -> OrgRead:
    org = service.rename_org(session, actor=staff, org_id=org_id, name=body.name)
    return OrgRead.model_validate(org)


@router.post("/{org_id}/move")
def move_org(org_id: Id, body: OrgMove, staff: CurrentStaff, session: SessionDep) -> OrgRead:
    org = service.move_org(session, actor=staff, org_id=org_id, new_parent_id=body.parent_id)
    return OrgRead.model_validate(org)


@router.post("/{org_id}/archive")
def archive_org(org_id: Id, staff: CurrentStaff, session: SessionDep) -> OrgRead:
    return OrgRead.model_validate(service.archive_org(session, actor=staff, org_id=org_id))


@router.get("/{org_id}/staff")
def list_staff(org_id: Id, staff: CurrentStaff, session: SessionDep) -> list[StaffRoleRead]:
    return [
        StaffRoleRead.model_validate(g)
        for g in service.list_staff(session, actor=staff, org_id=org_id)
    ]


@router.post("/{org_id}/staff", status_code=status.HTTP_201_CREATED)
def grant_role(
    org_id: Id, body: RoleGrant, staff: CurrentStaff, session: SessionDep
) -> StaffRoleRead:
    grant = service.grant_role(
        session, actor=staff, org_id=org_id, user_id=body.user_id, role=body.role
    )
    return StaffRoleRead.model_validate(grant)


@router.delete("/{org_id}/staff/{user_id}/{role}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_role(
    org_id: Id, user_id: Id, role: Role, staff: CurrentStaff, session: SessionDep
) -> None:
    service.revoke_role(session, actor=staff, org_id=org_id, user_id=user_id, role=role)
