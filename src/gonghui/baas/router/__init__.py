"""HTTP: app management for staff (``/api/v1/baas/apps``) and the records and files APIs
for app callers (``/api/v1/baas/data``, ``/api/v1/baas/files``).

One module per use case; this one assembles them under ``/api/v1/baas``, in the order
their routes were always matched.
"""

from __future__ import annotations

from fastapi import APIRouter

from gonghui.baas.router import apps, dataio, files, records, tables, templates

router = APIRouter(prefix="/api/v1/baas", tags=["baas"])
for part in (apps, tables, records, templates, files, dataio):
    router.include_router(part.router)
