"""Route matching by the path's first segments instead of trying every route in turn.

FastAPI matches a request by trying the app's routes in order, and an included router by
trying each of its routes: a request to the last route pays for a regular-expression
match (and some scope bookkeeping) against every route before it. :class:`RouteIndex`
sits where the app's router matches (its ``middleware_stack``) and hands each request to
a *view* of the router that holds, in their original order, only the routes (and, inside
included routers, only the routes) whose path can match the request's first
:data:`DEPTH` segments. FastAPI then matches within that view as it would have within the
whole app, so precedence, 404s, 405s, trailing-slash redirects and the OpenAPI document
(built from the untouched ``app.routes``) stay as they were.

A view is built once per distinct key and kept. A key holds only the segments that some
route has as a literal at that position; any other segment becomes a wildcard, since only
a path parameter can match it, so the number of views stays bounded by the routes.

Views are shallow copies of FastAPI's included-router entries with their list of
effective routes pre-filtered; the copy checks the routes' version like the original, so
a router changed after start-up is matched in full again (correct, only slower).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi.routing import APIRoute, APIRouter
from starlette.routing import Host, Mount
from starlette.types import Receive, Scope, Send

# How many leading path segments pick a view: enough to tell /api/v1/baas/data/{table}/
# records from the rest of the baas routes.
DEPTH = 6
# Views kept at most (a guard: the keys are bounded by the routes anyway).
MAX_VIEWS = 4096

_ANY = None  # a key segment that only a path parameter matches
Key = tuple[str | None, ...]
# A route's path as segments: a literal, "" for one parameter, "*" for ``{x:path}``.
Template = tuple[str, ...]


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")[:DEPTH] if path.strip("/") else []


def _template(path: str) -> Template:
    out: list[str] = []
    for segment in path.strip("/").split("/") if path.strip("/") else []:
        if "{" not in segment:
            out.append(segment)
        elif ":path}" in segment:
            out.append("*")  # matches the rest of the path, however many segments
            break
        else:
            out.append("")  # a parameter (possibly with literal text around it)
    return tuple(out)


def _fits(template: Template, key: Key, key_is_whole: bool) -> bool:
    """Whether a path whose first segments are ``key`` (all of them if ``key_is_whole``)
    may match ``template``. Errs towards yes."""
    for i, want in enumerate(template):
        if want == "*":
            return True
        if i >= len(key):
            return True  # the key says nothing more
        if want and key[i] != want:
            return False
    # The template is shorter than the key: only a path that ends here can match.
    return len(template) >= len(key) or not key_is_whole


def _templates_of(route: Any) -> list[Template] | None:
    """Every route path below ``route``, as templates (None: cannot tell, so it is always
    a candidate)."""
    # FastAPI's included-router entries (and their nested ones) list their routes as
    # effective candidates; each candidate knows its full path.
    candidates = getattr(route, "effective_candidates", None)
    if callable(candidates):
        out: list[Template] = []
        for child in candidates():
            found = _templates_of(child)
            if found is None:
                return None
            out.extend(found)
        return out
    if isinstance(route, Host):
        return None
    inner = route
    if hasattr(route, "original_route"):  # one effective route of an included router
        if route.starlette_route is not None:
            inner = route.starlette_route  # a Starlette route, its prefix applied
        elif isinstance(route.original_route, APIRoute) and route.path:
            return [_template(route.path)]  # the path with the router's prefix
        else:
            return None
    if isinstance(inner, Mount):
        return [(*_template(inner.path), "*")]
    path = getattr(inner, "path", None)
    return [_template(path)] if isinstance(path, str) and path else None


def _filtered(route: Any, key: Key, key_is_whole: bool) -> Any | None:
    """``route`` as seen by paths starting with ``key``: None if it cannot match them, an
    included router reduced to the routes that can, anything else as it is."""
    candidates = getattr(route, "effective_candidates", None)
    if callable(candidates) and hasattr(route, "original_router"):
        kept = [
            kept
            for child in candidates()
            if (kept := _filtered(child, key, key_is_whole)) is not None
        ]
        if not kept:
            return None
        view = copy.copy(route)
        view._effective_candidates = kept
        view._effective_candidates_version = route._effective_candidates_version
        return view
    templates = _templates_of(route)
    if templates is None or any(_fits(t, key, key_is_whole) for t in templates):
        return route
    return None


class RouteIndex:
    """The app router's matching, narrowed by the path's first segments (see the module)."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self._views: dict[tuple[Key, bool], APIRouter] = {}
        self._version = -1
        self._literals: list[frozenset[str]] = []

    def _refresh(self) -> None:
        """(Re)learn the routes' literals; drop the views. Runs when the router changed."""
        literals: list[set[str]] = [set() for _ in range(DEPTH)]
        for route in self.router.routes:
            for template in _templates_of(route) or ():
                for i, segment in enumerate(template[:DEPTH]):
                    if segment not in ("", "*"):
                        literals[i].add(segment)
        self._literals = [frozenset(s) for s in literals]
        self._views = {}
        self._version = self.router._routes_version

    def view(self, path: str) -> APIRouter:
        """The router narrowed to what may match ``path``."""
        if self.router._routes_version != self._version:
            self._refresh()
        segments = _segments(path)
        key: Key = tuple(s if s in self._literals[i] else _ANY for i, s in enumerate(segments))
        # Whether the key is the whole path (a route shorter than it cannot match).
        whole = len(segments) < DEPTH
        found = self._views.get((key, whole))
        if found is None:
            found = copy.copy(self.router)
            found.routes = [
                kept
                for route in self.router.routes
                if (kept := _filtered(route, key, whole)) is not None
            ]
            found.middleware_stack = found.app
            if len(self._views) < MAX_VIEWS:
                self._views[(key, whole)] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.router.app(scope, receive, send)  # lifespan
            return
        # The whole router stays the request's router (url_for and friends).
        scope.setdefault("router", self.router)
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        await self.view(path).app(scope, receive, send)


def _flat(context: Any) -> APIRoute:
    """The route an included router's effective route context describes, as a route of
    the app itself: what FastAPI computes for the context (its path with the prefixes,
    the tags, dependencies, responses, response class and operation id of every level)
    passed to the route's own constructor."""
    return APIRoute(
        context.path,
        context.endpoint,
        response_model=context.response_model,
        status_code=context.status_code,
        tags=context.tags,
        dependencies=context.dependencies,
        summary=context.summary,
        description=context.description,
        response_description=context.response_description,
        responses=context.responses,
        deprecated=context.deprecated,
        name=context.name,
        methods=context.methods,
        operation_id=context.operation_id,
        response_model_include=context.response_model_include,
        response_model_exclude=context.response_model_exclude,
        response_model_by_alias=context.response_model_by_alias,
        response_model_exclude_unset=context.response_model_exclude_unset,
        response_model_exclude_defaults=context.response_model_exclude_defaults,
        response_model_exclude_none=context.response_model_exclude_none,
        include_in_schema=context.include_in_schema,
        response_class=context.response_class,
        dependency_overrides_provider=context.dependency_overrides_provider,
        callbacks=context.callbacks,
        openapi_extra=context.openapi_extra,
        generate_unique_id_function=context.generate_unique_id_function,
        strict_content_type=context.strict_content_type,
    )


def _flattened(included: Any) -> list[APIRoute] | None:
    """Every route of an included router (and of the routers it includes), in order, as
    routes of the app; None when it holds anything else (a plain Starlette route, a
    mount, a route class of its own, low-priority routes), which then stays included."""
    if included.original_router._low_priority_routes:
        return None
    out: list[APIRoute] = []
    for candidate in included.effective_candidates():
        if hasattr(candidate, "original_router"):
            nested = _flattened(candidate)
            if nested is None:
                return None
            out.extend(nested)
        elif type(candidate.original_route) is APIRoute and candidate.starlette_route is None:
            out.append(_flat(candidate))
        else:
            return None
    return out


def flatten_included_routers(router: APIRouter) -> None:
    """Put the routes of the included routers in ``router`` itself, in their order.

    FastAPI keeps an included router as one entry that matches a request by trying its
    routes (an included router within it by trying its own), then, once chosen, matches
    them all again to handle it: a request to ``/api/v1/baas/data/{table}/records`` paid
    for two nested matchings, twice, and the scope bookkeeping of each level, where a
    route of the app itself (``/api/v1/ping``) pays for one match. Each route becomes the
    route FastAPI resolves it to (prefixes, tags, dependencies, responses, operation id),
    in the same place in the order, so precedence and the OpenAPI document stay as they
    were. Call it once every router is included: a route added to an included router
    afterwards is not seen."""
    routes: list[Any] = []
    for route in router.routes:
        flat = _flattened(route) if hasattr(route, "original_router") else None
        routes.extend(flat if flat is not None else [route])
    router.routes = routes
    router._mark_routes_changed()


def index_routes(router: APIRouter) -> RouteIndex:
    """Put a :class:`RouteIndex` in front of ``router``'s matching (call once the routes
    are in place; routes added later are picked up)."""
    # The index replaces the router's own matching. Router-level middleware (Starlette's
    # ``Router(middleware=...)``) would be skipped by it: fail loudly rather than silently.
    assert getattr(router.middleware_stack, "__func__", None) is type(router).app, (
        "the app's router has middleware of its own; put the route index inside it"
    )
    index = RouteIndex(router)
    router.middleware_stack = index
    return index
