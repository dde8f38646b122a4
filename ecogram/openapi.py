"""The OpenAPI 3.1 document, written from the route table and each view's declared operation
(``ecogram.contract``): paths and access from ``ecogram.routes.ROUTES``, parameters, bodies and
responses from the models of ``ecogram.models``. Nothing here describes a route by hand.

Every machine route (``/api``, ``/img``, health) must declare its operation (a test walks the
table); HTML pages are for people and are left out. Each operation lists every status it can
answer: its successes, and the errors its kind of route can meet, all in the one error shape.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ecogram import models
from ecogram.auth.roles import PUBLIC
from ecogram.contract import Media, Operation, changed_fields, operation_of, schema_hook

MACHINE_PREFIXES = ("/api/", "/img/", "/healthz", "/readyz", "/metrics")
_PARAM = re.compile(r"\{(\w+)(?::([^{}]*(?:\{[^{}]*\}[^{}]*)*))?\}")
_REF = "#/components/schemas/{name}"
JSON = "application/json"

# What each error status means, whichever route answers it.
ERRORS = {
    400: "The request cannot be read (bad JSON, multipart or parameter)",
    401: "No valid token",
    403: "The token's role may not do this",
    404: "Not found",
    408: "The body stopped arriving",
    409: "Conflict with the current state",
    413: "The body is too large",
    415: "Unsupported body type",
    422: "A field is not acceptable (details.fields names it)",
    429: "Too many at once (Retry-After says when to retry)",
    503: "The database or object store is unavailable (Retry-After)",
}


def _path(path: str) -> tuple[str, list[dict[str, Any]]]:
    """aiohttp's ``{id:\\d+}`` becomes OpenAPI's ``{id}`` with a schema from the pattern."""
    parameters = []

    def replace(match: re.Match[str]) -> str:
        name, pattern = match[1], match[2]
        schema: dict[str, Any] = {"type": "string", "pattern": f"^{pattern or '[^/]+'}$"}
        if pattern == r"\d+":
            schema = {"type": "integer", "minimum": 1}
        elif pattern and re.fullmatch(r"\(?[\w|]+\)?", pattern):
            schema = {"enum": pattern.strip("()").split("|")}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _PARAM.sub(replace, path), parameters


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query value is never null: ``X | None`` of a model is just ``X`` in a parameter."""
    schema = {k: v for k, v in schema.items() if not (k == "default" and v is None)}
    branches = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
    if "anyOf" in schema and len(branches) == 1:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**rest, **branches[0]}
    return schema


Choices = dict[str, tuple[Any, ...] | None]  # configured lists by name (None: any value)


def _query(model: type, components: dict[str, Any], choices: Choices) -> list[dict[str, Any]]:
    schema = components[model.__name__]
    configured = getattr(model, "configured", {})
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        field = _not_null(field)
        allowed = choices.get(configured.get(name, ""))
        if allowed is not None:  # e.g. ECOGRAM_ALLOWED_SIZES ('*': any size)
            field = {**field, "enum": list(allowed)}
        parameter = {"name": name, "in": "query", "required": name in required,
                     "schema": field}
        if "description" in field:
            parameter["description"] = field["description"]
        if field.get("type") == "array":
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _ref(model: Any) -> dict[str, Any]:
    """A model's schema where it is used: a ``$ref``, or for a union its ``anyOf`` of refs."""
    if isinstance(model, type):
        return {"$ref": _REF.format(name=model.__name__)}
    return msgspec.json.schema_components([model], ref_template=_REF)[0][0]


def _response(answer: type | Media) -> dict[str, Any]:
    if isinstance(answer, Media):
        response: dict[str, Any] = {"description": answer.description}
        if answer.content:
            response["content"] = {media: {"schema": dict(schema)}
                                   for media, schema in answer.content.items()}
        if answer.headers:
            response["headers"] = {name: {"schema": {"type": "string"}, "description": text}
                                   for name, text in answer.headers.items()}
        return response
    return {"description": "OK", "content": {JSON: {"schema": _ref(answer)}}}


def _error_statuses(route: Any, op: Operation, path_params: list[Any]) -> set[int]:
    statuses = {400, 503, *op.errors}  # 400: a request HTTP itself cannot read
    if route.access != PUBLIC:
        statuses |= {401, 403}
    if path_params:
        statuses.add(404)
    if op.query is not None:
        statuses.add(422)
    if op.described_query is not None:
        statuses.add(400)
    if op.body is not None or op.form:
        statuses |= {400, 408, 413, 415, 422}
    return statuses


def _operation(route: Any, op: Operation, params: list[Any], components: dict[str, Any],
               choices: Choices) -> dict[str, Any]:
    responses = {str(status): _response(answer) for status, answer in op.responses.items()}
    for status in sorted(_error_statuses(route, op, params)):
        responses.setdefault(str(status), {
            "description": ERRORS[status],
            "content": {JSON: {"schema": _ref(models.Error)}}})
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": op.summary,
        "tags": [_tag(route.path)],
        "responses": dict(sorted(responses.items())),
        "x-access": route.access,
    }
    description = op.description
    if route.access == PUBLIC:
        operation["security"] = []
    else:
        description = f"{description} Requires the {route.access} role or higher.".strip()
    if description:
        operation["description"] = description
    parameters = params + list(op.headers)
    for model in (op.query, op.described_query):
        if model is not None:
            parameters += _query(model, components, choices)
    if parameters:
        operation["parameters"] = parameters
    content = {}
    if op.body is not None:
        content[JSON] = {"schema": _ref(op.body)}
    for media, model in op.form.items():
        content[media] = {"schema": dict(model) if isinstance(model, dict) else _ref(model)}
    if content:
        operation["requestBody"] = {"required": op.body_required, "content": content}
    return operation


def _models(ops: list[Operation]) -> list[Any]:
    found: list[Any] = [models.Error]
    for op in ops:
        found += [m for m in (op.query, op.described_query, op.body) if m is not None]
        found += [m for m in op.form.values() if not isinstance(m, dict)]
        found += [m for m in op.responses.values() if not isinstance(m, Media)]
    return list(dict.fromkeys(found))


def build(routes: list[Any], public_url: str = "", choices: Choices | None = None
          ) -> dict[str, Any]:
    """The OpenAPI document of these routes (``ecogram.routes.ROUTES``); ``choices`` are the
    configuration's lists a parameter takes (``sizes``, ``channels``)."""
    choices = choices or {}
    machine = [r for r in routes if r.path.startswith(MACHINE_PREFIXES)
               or r.path == "/api/openapi.json"]
    missing = [r.name for r in machine if operation_of(r.handler) is None]
    if missing:
        raise LookupError(f"routes without a declared operation: {', '.join(missing)}")
    ops = [operation_of(r.handler) for r in machine]
    _, components = msgspec.json.schema_components(_models(ops), schema_hook=schema_hook,
                                                   ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for route, op in zip(machine, ops, strict=True):
        path, params = _path(route.path)
        paths.setdefault(path, {})[route.method.lower()] = _operation(
            route, op, params, components, choices)
    for model in _models(ops):  # partial updates (models.Changes): one change at least
        if isinstance(model, type) and (names := changed_fields(model)):
            components[model.__name__]["anyOf"] = [{"required": [n]} for n in names]
    # Query models are spelled out as parameters, not kept as schemas.
    query_models = {m.__name__ for op in ops for m in (op.query, op.described_query)
                    if m is not None}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "E-co Gram", "version": "1",
                 "description": "Image back office and image CDN of an online shop."},
        "paths": paths,
        "components": {
            "schemas": {k: v for k, v in components.items() if k not in query_models},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }
    if public_url:
        document["servers"] = [{"url": public_url}]
    return document


def _tag(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    if parts[:2] == ["api", "v1"] and len(parts) > 2:
        return parts[2]
    return parts[0] if parts else "root"
