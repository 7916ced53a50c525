"""The console's API reference for integrators: the open APIs' own OpenAPI document
(``/open/v1/openapi.json``) rendered as a page, with the scopes and the endpoints an
integrator needs first. It shows what the document says and nothing of any org, so any
staff member may read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gonghui.console.router import ConsoleStaff
from gonghui.openplatform import scopes
from gonghui.openplatform.router import OPEN_API_DOCUMENT_PATH, open_api
from gonghui.web.templating import render

router = APIRouter(prefix="/console/open-platform", include_in_schema=False)

_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str
    required: bool
    type: str
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    parameters: list[Parameter]
    body: str
    answers: list[tuple[str, str, str]]  # status, description, schema

    @property
    def description_parts(self) -> list[tuple[bool, str]]:
        """The description's text and its ````code```` spans (docstrings mark them so)."""
        return [(i % 2 == 1, part) for i, part in enumerate(self.description.split("``")) if part]

    @property
    def anchor(self) -> str:
        return f"{self.method}-{self.path}".replace("/", "-").replace("{", "").replace("}", "")


@dataclass(frozen=True)
class Schema:
    name: str
    description: str
    fields: list[Parameter] = field(default_factory=list)


def _type(schema: dict[str, Any]) -> str:
    """A schema's type in a few characters: ``string``, ``OpenVoucher[]``, ``integer | null``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"{_type(schema.get('items', {}))}[]"
    kind = str(schema.get("type", "object"))
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _body_schema(content: dict[str, Any]) -> str:
    for media in content.values():
        return _type(media.get("schema", {}))
    return ""


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of ``document``, in its order."""
    found = []
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    summary=op.get("summary", ""),
                    description=op.get("description", ""),
                    parameters=[
                        Parameter(
                            p["name"],
                            p.get("in", ""),
                            bool(p.get("required")),
                            _type(p.get("schema", {})),
                            p.get("description", ""),
                        )
                        for p in op.get("parameters", [])
                    ],
                    body=_body_schema(op.get("requestBody", {}).get("content", {})),
                    answers=[
                        (
                            status,
                            answer.get("description", ""),
                            _body_schema(answer.get("content", {})),
                        )
                        for status, answer in op.get("responses", {}).items()
                    ],
                )
            )
    return found


def schemas(document: dict[str, Any]) -> list[Schema]:
    """The document's named schemas with their fields."""
    found = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        required = set(schema.get("required", []))
        found.append(
            Schema(
                name,
                schema.get("description", ""),
                [
                    Parameter(key, "", key in required, _type(prop), prop.get("description", ""))
                    for key, prop in schema.get("properties", {}).items()
                ],
            )
        )
    return found


@router.get("/reference", response_class=HTMLResponse)
def reference(request: Request, user: ConsoleStaff) -> Response:
    document = open_api(request.app)
    ops = operations(document)
    return render(
        request,
        "console/open_reference.html",
        {
            "active": "nav.oauth",
            "document_path": OPEN_API_DOCUMENT_PATH,
            "version": document.get("info", {}).get("version", ""),
            "scopes": [*scopes.SCOPES.values(), scopes.BAAS_SCOPE],
            "oauth": [o for o in ops if not o.path.startswith("/open/")],
            "open": [o for o in ops if o.path.startswith("/open/")],
            "schemas": schemas(document),
        },
    )
