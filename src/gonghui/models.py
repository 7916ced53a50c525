"""Imports every domain's models so that ``Base.metadata`` is complete (Alembic, tests)."""

from gonghui.accounts import models as accounts_models
from gonghui.audit import models as audit_models
from gonghui.members import models as members_models
from gonghui.orgs import models as orgs_models

__all__ = ["accounts_models", "audit_models", "members_models", "orgs_models"]
from gonghui.baas import models as baas_models  # noqa: E402

__all__ += ["baas_models"]
from gonghui.baas.functions import models as functions_models  # noqa: E402

__all__ += ["functions_models"]
from gonghui.baas.triggers import models as triggers_models  # noqa: E402

__all__ += ["triggers_models"]
