"""The OpenAPI 3.1 document, built from the route table so no route can be left out.

Every machine route of ``ecogram.routes.ROUTES`` (``/api``, ``/img``, health) appears: with the
description kept in ``OPERATIONS`` (by route name) when there is one, else with a generic
description and response. Access comes from the route's ``access``: public routes carry no
security requirement, the others need a bearer token. HTML pages are for people and are left out.
"""

from __future__ import annotations

import re
from typing import Any

from ecogram.auth.roles import PUBLIC

MACHINE_PREFIXES = ("/api/", "/img/", "/healthz", "/readyz", "/metrics")
_PARAM = re.compile(r"\{(\w+)(?::([^{}]*(?:\{[^{}]*\}[^{}]*)*))?\}")

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


_NULLABLE_STR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_PAGE = _query("page", {"type": "integer", "minimum": 1, "maximum": 100000}, "Page, from 1.")

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }},
    },
    "ImageUrls": {
        "type": "object",
        "required": ["src", "srcset"],
        "properties": {"src": {"type": "string"}, "srcset": {"type": "string"}},
    },
    "Image": {
        "type": "object",
        "required": ["id", "code", "product", "position", "status", "filename", "format",
                     "width", "height", "file_size", "sha256", "blurhash", "color", "importer",
                     "imported_at", "reviewed_by", "reviewed_at", "review_note", "qc", "alt",
                     "version", "urls"],
        "properties": {
            "id": {"type": "integer"},
            "code": {"type": "string"},
            "product": {"type": "string"},
            "position": {"type": "integer", "minimum": 1},
            "status": {"enum": ["pending", "approved", "rejected"]},
            "filename": {"type": "string"},
            "format": {"type": "string"},
            "mime": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "file_size": {"type": "integer"},
            "sha256": {"type": "string"},
            "blurhash": {"type": "string"},
            "color": {"type": "string"},
            "has_alpha": {"type": "boolean"},
            "importer": {"type": "string"},
            "importer_id": {"type": ["integer", "null"]},
            "batch_id": {"type": ["integer", "null"]},
            "imported_at": _TIME,
            "reviewed_by": _NULLABLE_STR,
            "reviewed_at": _NULLABLE_TIME,
            "review_note": _NULLABLE_STR,
            "qc": {"type": "object"},
            "alt": {"type": "string"},
            "version": {"type": "integer"},
            "updated_at": _TIME,
            "urls": _ref("ImageUrls"),
        },
    },
    "ImageList": {
        "type": "object",
        "required": ["items", "total", "page", "per_page"],
        "properties": {
            "items": {"type": "array", "items": _ref("Image")},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
        },
    },
    "ImageEdit": {
        "type": "object",
        "minProperties": 1,
        "properties": {
            "code": {"type": "string", "minLength": 1, "maxLength": 100},
            "product": {"type": "string", "maxLength": 500},
            "position": {"type": "integer", "minimum": 1},
            "alt": {"type": "string", "maxLength": 1000},
            "version": {"type": "integer", "description": "Refuse (409) unless the photo's "
                        "version is still this one."},
        },
    },
    "Reason": {
        "type": "object",
        "properties": {"reason": {"type": "string", "maxLength": 2000}},
    },
    "BulkReview": {
        "type": "object",
        "required": ["ids", "action"],
        "properties": {
            "ids": {"type": "array", "items": {"type": "integer", "minimum": 1},
                    "minItems": 1, "maxItems": 1000},
            "action": {"enum": ["approve", "reject"]},
            "reason": {"type": "string", "maxLength": 2000},
        },
    },
    "BulkReviewResult": {
        "type": "object",
        "required": ["action", "succeeded", "failed", "results"],
        "properties": {
            "action": {"type": "string"},
            "succeeded": {"type": "integer"},
            "failed": {"type": "integer"},
            "results": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "outcome", "status"],
                "properties": {
                    "id": {"type": "integer"},
                    "outcome": {"enum": ["ok", "error"]},
                    "status": {"type": "integer"},
                    "record": _ref("Image"),
                    "error": {"type": "object"},
                },
            }},
        },
    },
    "AuditEntry": {
        "type": "object",
        "required": ["id", "at", "actor", "action", "details"],
        "properties": {
            "id": {"type": "integer"},
            "at": _TIME,
            "actor_id": {"type": ["integer", "null"]},
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "image_id": {"type": ["integer", "null"]},
            "target": _NULLABLE_STR,
            "client": _NULLABLE_STR,
            "details": {"type": "object"},
        },
    },
    "DeliveryFigures": {
        "type": "object",
        "required": ["requests", "bytes_sent", "bytes_saved", "bytes_per_request", "hits",
                     "hit_ratio", "renders", "render_ms", "render_ms_avg"],
        "properties": {
            "requests": {"type": "integer", "description": "Answers (200 and 304)."},
            "bytes_sent": {"type": "integer"},
            "bytes_saved": {"type": "integer",
                            "description": "Answers × the original's size − bytes sent."},
            "bytes_per_request": {"type": ["number", "null"]},
            "hits": {"type": "integer",
                     "description": "Answers without a render: memory, Redis, 304."},
            "hit_ratio": {"type": ["number", "null"]},
            "renders": {"type": "integer", "description": "Renders, eager ones included."},
            "render_ms": {"type": "number"},
            "render_ms_avg": {"type": ["number", "null"]},
        },
    },
    "AuditList": {
        "type": "object",
        "required": ["items", "total", "page", "per_page"],
        "properties": {
            "items": {"type": "array", "items": _ref("AuditEntry")},
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
        },
    },
    "Channel": {
        "type": "object",
        "required": ["id", "name", "formats", "output", "recommended", "square", "white_main",
                     "min_photos", "sources", "note", "enabled"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "formats": {"type": "array", "items": {"type": "string"}},
            "output": {"type": "string"},
            "min_side": {"type": ["integer", "null"]},
            "max_side": {"type": ["integer", "null"]},
            "recommended": {"type": "integer"},
            "zoom_side": {"type": ["integer", "null"]},
            "max_bytes": {"type": ["integer", "null"]},
            "min_bytes": {"type": ["integer", "null"]},
            "max_pixels": {"type": ["integer", "null"]},
            "square": {"type": "boolean"},
            "white_main": {"type": "boolean"},
            "fill": {"type": ["number", "null"]},
            "min_photos": {"type": "integer"},
            "max_photos": {"type": ["integer", "null"]},
            "sources": {"type": "array", "items": {"type": "string"}},
            "note": {"type": "string"},
            "enabled": {"type": "boolean", "description": "Named in ECOGRAM_CHANNELS."},
        },
    },
    "Finding": {
        "type": "object",
        "required": ["code", "message", "fixable"],
        "properties": {
            "code": {"enum": ["too_small", "too_large", "too_many_pixels", "not_square",
                              "wrong_format", "file_too_large", "file_too_small",
                              "not_measured", "background_near_white", "background_not_white",
                              "low_fill", "too_few_photos", "too_many_photos"]},
            "message": {"type": "string", "description": "In the request's language."},
            "fixable": {"type": "boolean",
                        "description": "The channel rendition fixes it."},
        },
    },
    "ChannelId": {
        "type": "object",
        "required": ["channel", "code", "external_id", "updated_at"],
        "properties": {"channel": {"type": "string"}, "code": {"type": "string"},
                       "external_id": {"type": "string"}, "updated_at": _TIME},
    },
    "Readiness": {
        "type": "object",
        "required": ["channel", "status", "items", "total", "page", "per_page", "summary"],
        "properties": {
            "channel": {"type": "object", "required": ["id", "name"], "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}}},
            "status": {"enum": ["approved", "pending", "rejected", "all"]},
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["code", "product", "ready", "photos", "findings", "images"],
                "properties": {
                    "code": {"type": "string"},
                    "product": {"type": "string"},
                    "ready": {"type": "boolean"},
                    "photos": {"type": "integer", "minimum": 0},
                    "findings": {"type": "array", "items": _ref("Finding")},
                    "images": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "position", "main", "ready", "findings"],
                        "properties": {
                            "id": {"type": "integer"},
                            "position": {"type": "integer"},
                            "main": {"type": "boolean"},
                            "ready": {"type": "boolean"},
                            "findings": {"type": "array", "items": _ref("Finding")},
                        },
                    }},
                },
            }},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "summary": {
                "type": "object",
                "required": ["products", "ready", "not_ready", "photos", "findings"],
                "properties": {
                    "products": {"type": "integer"},
                    "ready": {"type": "integer"},
                    "not_ready": {"type": "integer"},
                    "photos": {"type": "integer"},
                    "findings": {"type": "object", "description": "Products per finding code.",
                                 "additionalProperties": {"type": "integer"}},
                },
            },
        },
    },
    "User": {
        "type": "object",
        "required": ["id", "email", "name", "role"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": {"enum": ["viewer", "importer", "reviewer", "admin"]},
            "disabled": {"type": "boolean"},
        },
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "bearer"},
            "expires_in": {"type": "integer"},
        },
    },
    "ImportReport": {
        "type": "object",
        "required": ["id", "status", "accepted", "duplicate", "rejected", "items"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"enum": ["queued", "running", "done", "interrupted"]},
            "accepted": {"type": "integer"},
            "duplicate": {"type": "integer"},
            "rejected": {"type": "integer"},
            "files": {"type": ["integer", "null"],
                      "description": "An import job's number of files (null otherwise)."},
            "reason": {"type": ["string", "null"],
                       "description": "Why an import job was interrupted (null otherwise)."},
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["seq", "filename", "outcome"],
                "properties": {"outcome": {"enum": ["accepted", "duplicate", "rejected"]}},
            }},
        },
    },
    "Placeholder": {
        "type": "object",
        "required": ["blurhash", "width", "height", "color"],
        "properties": {
            "blurhash": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "color": {"type": "string"},
        },
    },
}

_LIST_PARAMS = [
    _query("status", {"enum": ["pending", "approved", "rejected"]}, "Only this status."),
    _query("code", {"type": "string"}, "Product codes, comma-separated (or repeated)."),
    _query("q", {"type": "string", "maxLength": 200}, "Text in the code or product name."),
    _query("importer", {"type": "string"}, "Importer: a user id or a name."),
    _query("since", _TIME, "Imported at or after (ISO 8601)."),
    _query("until", _TIME, "Imported before (ISO 8601)."),
    _query("sort", {"enum": [
        f"{sign}{key}" for key in ("imported_at", "code", "position", "product", "file_size",
                                   "status", "reviewed_at", "updated_at") for sign in ("", "-")
    ]}, "Sort key; a leading '-' sorts descending. Default -imported_at."),
    _PAGE,
    _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100}, "Items per page."),
]
_EXPORT_PARAMS = [
    _query("code", {"type": "string"}, "Product codes, comma-separated (or repeated)."),
    _query("since", _TIME, "Only images approved or updated since (incremental export)."),
    _query("status", {"enum": ["pending", "approved", "rejected"]}, "Default approved."),
]
_IMG_PARAMS = [
    _query("w", {"type": "integer", "minimum": 1}, "Width in CSS pixels."),
    _query("h", {"type": "integer", "minimum": 1}, "Height in CSS pixels."),
    _query("dpr", {"type": "number", "minimum": 1, "maximum": 4}, "Device pixel ratio."),
    _query("fit", {"enum": ["cover", "contain", "inside", "fill"]}, "Fit mode."),
    _query("g", {"enum": ["center", "attention", "entropy", "north", "south", "east", "west"]},
           "Crop gravity."),
    _query("fmt", {"enum": ["auto", "avif", "webp", "jpeg", "png"]}, "Output format."),
    _query("q", {"type": "integer", "minimum": 1, "maximum": 100}, "Quality."),
    _query("bg", {"type": "string", "pattern": "^[0-9a-fA-F]{6}$"}, "Background colour."),
    _query("v", {"type": "string"}, "Version token: immutable answer when it matches."),
    _query("s", {"type": "string"}, "Signature for sizes outside the allowed list."),
    _query("preset", {"type": "string", "pattern": "^[a-z0-9_]+$"},
           "A sales channel's id (GET /api/v1/channels): the photo as that channel should "
           "receive it, at its size, in its format, under its byte limit. Only 'v' may go "
           "with it (any other parameter is a 400 naming it); an unknown channel is a 400."),
]
_BINARY = {"type": "string", "format": "binary"}
_UPLOAD = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": _BINARY, "code": {"type": "string"},
                   "product": {"type": "string"}, "position": {"type": "integer"},
                   "alt": {"type": "string"}},
}}}}
_CSV = {"text/csv": {"schema": {"type": "string"}}}

# Per route name: summary, description, query parameters, request body, success responses.
OPERATIONS: dict[str, dict[str, Any]] = {
    "healthz": {"summary": "Liveness", "responses": {"200": _json({"type": "object"})}},
    "readyz": {"summary": "Readiness: database answers and schema is current",
               "responses": {"200": _json({"type": "object"}),
                             "503": _json(_ref("Error"), "Not ready")}},
    "metrics": {"summary": "Prometheus metrics", "responses": {"200": {
        "description": "Prometheus text", "content": {"text/plain": {"schema": {
            "type": "string"}}}}}},
    "images_list": {"summary": "List image records", "parameters": _LIST_PARAMS,
                    "responses": {"200": _json(_ref("ImageList"))}},
    "images_get": {"summary": "One image record",
                   "responses": {"200": _json(_ref("Image"))}},
    "images_edit": {
        "summary": "Edit code, product, position or alt",
        "description": "Positions of a code stay 1..n: moving a photo shifts the others; "
                       "moving it to another code inserts it there and closes the gap. Send "
                       "If-Match (the ETag of GET) or `version` for optimistic concurrency "
                       "(409 on mismatch).",
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("ImageEdit")}}},
        "responses": {"200": _json(_ref("Image"))},
    },
    "images_delete": {
        "summary": "Delete (soft) an image; ?purge=true removes it for good",
        "parameters": [_query("purge", {"enum": ["true", "false"]}, "Remove row and original "
                                        "(admin).")],
        "responses": {"204": {"description": "Deleted"}},
    },
    "images_purge": {"summary": "Remove an image and its original for good",
                     "responses": {"204": {"description": "Purged"}}},
    "images_original": {"summary": "The original bytes as uploaded", "responses": {"200": {
        "description": "The original file", "content": {"image/*": {"schema": _BINARY}}}}},
    "images_replace": {
        "summary": "Replace the photo of a record",
        "description": "Same checks as import; new version; back to pending.",
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"], "properties": {"file": _BINARY}}}}},
        "responses": {"200": _json(_ref("Image"))},
    },
    "images_approve": {"summary": "Approve a pending image",
                       "requestBody": {"content": {JSON: {"schema": _ref("Reason")}}},
                       "responses": {"200": _json(_ref("Image"))}},
    "images_reject": {"summary": "Reject a pending image (reason required)",
                      "requestBody": {"required": True, "content": {JSON: {"schema": {
                          "type": "object", "required": ["reason"],
                          "properties": {"reason": {"type": "string", "minLength": 1,
                                                    "maxLength": 2000}}}}}},
                      "responses": {"200": _json(_ref("Image"))}},
    "reviews_bulk": {"summary": "Approve or reject many images; per-id outcome",
                     "requestBody": {"required": True,
                                     "content": {JSON: {"schema": _ref("BulkReview")}}},
                     "responses": {"200": _json(_ref("BulkReviewResult"))}},
    "audit_list": {"summary": "The audit trail", "parameters": [
        _query("image_id", {"type": "integer", "minimum": 1}, "Only this image."),
        _query("actor", {"type": "string"}, "Actor: a user id or a name."),
        _query("action", {"type": "string"}, "Only this action."),
        _query("since", _TIME, "At or after."),
        _query("until", _TIME, "Before."),
        _PAGE,
        _query("per_page", {"type": "integer", "minimum": 1, "maximum": 200},
               "Items per page."),
    ], "responses": {"200": _json(_ref("AuditList"))}},
    "analytics_get": {
        "summary": "Delivery analytics: what the storefront loads, per photo or product",
        "description": "Requests, bytes sent, bytes saved against the original, hits and "
                       "renders over whole days (UTC), counted by each worker and written every "
                       "ECOGRAM_ANALYTICS_FLUSH seconds (docs/analytics.md).",
        "parameters": [
            _query("since", _TIME, "First day (default: seven days before until)."),
            _query("until", _TIME, "The day after the last (default: tomorrow)."),
            _query("code", {"type": "string"}, "Product codes, comma-separated or repeated."),
            _query("group", {"enum": ["photo", "product"]}, "Rows per photo (default) or "
                   "per product code."),
            _query("sort", {"enum": [f"{d}{k}" for k in (
                "requests", "bytes_sent", "bytes_saved", "bytes_per_request", "renders",
                "render_ms", "code") for d in ("", "-")]}, "Order (default -requests)."),
            _query("page", {"type": "integer", "minimum": 1, "maximum": 10000}, "Page, from 1."),
            _query("per_page", {"type": "integer", "minimum": 1, "maximum": 200},
                   "Rows per page (default 50)."),
        ],
        "responses": {"200": _json({
            "type": "object",
            "required": ["since", "until", "group", "items", "page", "per_page", "total",
                         "totals", "days"],
            "properties": {
                "since": {"type": "string", "format": "date"},
                "until": {"type": "string", "format": "date"},
                "group": {"enum": ["photo", "product"]},
                "items": {"type": "array", "items": {"allOf": [
                    {"type": "object", "required": ["code"], "properties": {
                        "code": {"type": "string"}, "image_id": {"type": "integer"},
                        "position": {"type": "integer"}}},
                    _ref("DeliveryFigures")]}},
                "page": {"type": "integer"}, "per_page": {"type": "integer"},
                "total": {"type": "integer"},
                "totals": _ref("DeliveryFigures"),
                "days": {"type": "array", "items": {"allOf": [
                    {"type": "object", "required": ["day"],
                     "properties": {"day": {"type": "string", "format": "date"}}},
                    _ref("DeliveryFigures")]}},
            }})}},
    "channels_list": {"summary": "The sales channel profiles", "responses": {"200": _json({
        "type": "object", "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref("Channel")}}})}},
    "channels_get": {"summary": "One sales channel profile",
                     "responses": {"200": _json(_ref("Channel"))}},
    "channels_readiness": {
        "summary": "Each product's readiness for a sales channel",
        "description": "Per product: ready when every finding of it and of its counted photos "
                       "is fixable by the channel rendition. Finding messages follow "
                       "Accept-Language (en, pt-BR).",
        "parameters": [
            _query("code", {"type": "string"}, "Product codes, comma-separated or repeated."),
            _query("status", {"enum": ["approved", "pending", "rejected", "all"]},
                   "Which photos count (default approved)."),
            _query("ready", {"enum": ["true", "false"]}, "Only ready or not ready products."),
            _PAGE,
            _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100},
                   "Products per page (default 50)."),
        ],
        "responses": {"200": _json(_ref("Readiness"))}},
    # Sales channels' exports and ids (issue 13; docs/channels.md, "Exports")
    "exports_get": {
        "summary": "Export images to a shop platform or a sales channel (streamed file)",
        "description": "shopify, woocommerce, magento: CSV; json: the feed; zip: the originals. "
                       "Sales channels (issue 13): vtex: VTEX's images spreadsheet (.xlsx); "
                       "google: a Merchant Center supplemental feed (TSV: id, image_link, "
                       "additional_image_link); mercadolivre and nuvemshop: JSON lines, one "
                       "product a line; renditions: a CSV of the renditions of the channel "
                       "named by `channel`. Channel exports hold only ready products unless "
                       "include_not_ready=true, which adds ready and findings.",
        "parameters": [
            *_EXPORT_PARAMS,
            _query("channel", {"type": "string"},
                   "renditions only (required there): the channel id."),
            _query("include_not_ready", {"enum": ["true", "false"]},
                   "Channel formats: also products not ready, with their findings (default "
                   "false)."),
        ],
        "responses": {"200": {"description": "The export file", "content": {
            **_CSV, JSON: {"schema": {"type": "object"}}, "application/zip": {"schema": _BINARY},
            "text/tab-separated-values": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": _BINARY}}}}},
    "channel_ids_list": {"summary": "Products' own ids on a sales channel", "parameters": [
        _query("code", {"type": "string"}, "Product codes, comma-separated or repeated."),
        _PAGE,
        _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100},
               "Items per page (default 50)."),
    ], "responses": {"200": _json({
        "type": "object", "required": ["channel", "items", "total", "page", "per_page"],
        "properties": {"channel": {"type": "string"},
                       "items": {"type": "array", "items": _ref("ChannelId")},
                       "total": {"type": "integer"}, "page": {"type": "integer"},
                       "per_page": {"type": "integer"}}})}},
    "channel_ids_import": {
        "summary": "Import products' ids on a sales channel from a CSV",
        "description": "Header code,external_id; an empty external_id removes the code's id. "
                       "All rows or none (422 lists the bad lines).",
        "requestBody": {"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": _BINARY}}}}},
        "responses": {"200": _json({"type": "object", "required": [
            "channel", "rows", "set", "unchanged", "removed"], "properties": {
            "channel": {"type": "string"}, "rows": {"type": "integer"},
            "set": {"type": "integer"}, "unchanged": {"type": "integer"},
            "removed": {"type": "integer"}}})}},
    "channel_ids_get": {"summary": "A product's own id on a sales channel",
                        "responses": {"200": _json(_ref("ChannelId"))}},
    "channel_ids_put": {"summary": "Set a product's own id on a sales channel", "requestBody": {
        "required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["external_id"], "properties": {
                "external_id": {"type": "string", "minLength": 1, "maxLength": 200}}}}}},
        "responses": {"200": _json(_ref("ChannelId"))}},
    "channel_ids_delete": {"summary": "Remove a product's own id on a sales channel",
                           "responses": {"204": {"description": "Removed"}}},
    "openapi": {"summary": "This document", "responses": {"200": _json({"type": "object"})}},
    # Other helpers' routes, described from docs/api.md.
    "images_import": {"summary": "Upload one or more photos", "requestBody": _UPLOAD,
                      "responses": {"201": _json(_ref("ImportReport"))}},
    "imports_create": {"summary": "Import a ZIP and/or CSV manifest", "requestBody": {
        "required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "properties": {"archive": _BINARY, "manifest": _BINARY}}}}},
        "parameters": [{"name": "Prefer", "in": "header", "required": False,
                        "schema": {"type": "string"},
                        "description": "`respond-async`: run the import as a job (202)."}],
        "responses": {
            "201": _json(_ref("ImportReport"), "Imported in the request"),
            "202": {**_json(_ref("ImportReport"), "Queued as an import job (status queued)"),
                    "headers": {"Location": {"schema": {"type": "string"},
                                             "description": "/api/v1/imports/{id}"}}},
        }},
    "imports_get": {"summary": "An import batch report",
                    "responses": {"200": _json(_ref("ImportReport"))}},
    "auth_register": {"summary": "Register (the first user becomes admin)", "requestBody": {
        "required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["email", "name", "password"],
            "properties": {"email": {"type": "string"}, "name": {"type": "string"},
                           "password": {"type": "string"}}}}}},
        "responses": {"201": _json(_ref("User"))}},
    "auth_login": {"summary": "Log in", "requestBody": {
        "required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["email", "password"],
            "properties": {"email": {"type": "string"}, "password": {"type": "string"}}}}}},
        "responses": {"200": _json(_ref("Token"))}},
    "auth_me": {"summary": "The signed-in user", "responses": {"200": _json(_ref("User"))}},
    "auth_logout": {"summary": "Revoke this token",
                    "responses": {"204": {"description": "Logged out"}}},
    "auth_password": {"summary": "Change one's password", "requestBody": {
        "required": True, "content": {JSON: {"schema": {"type": "object"}}}},
        "responses": {"200": _json(_ref("Token"))}},
    "users_list": {"summary": "List users", "responses": {"200": _json({
        "type": "object", "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref("User")}}})}},
    "users_update": {"summary": "Change a user's role or disabled flag", "requestBody": {
        "required": True, "content": {JSON: {"schema": {
            "type": "object", "properties": {
                "role": {"enum": ["viewer", "importer", "reviewer", "admin"]},
                "disabled": {"type": "boolean"}}}}}},
        "responses": {"200": _json(_ref("User"))}},
}

_IMAGE_BODY = {"description": "The image", "content": {"image/*": {"schema": _BINARY}}}
for _name in ("img", "img_position"):
    OPERATIONS.setdefault(_name, {"summary": "An approved image, resized on the fly",
                                  "parameters": _IMG_PARAMS, "responses": {"200": _IMAGE_BODY}})
OPERATIONS.setdefault("img_channel_file", {
    "summary": "A sales channel's rendition of an approved image, as a file name",
    "description": "What ?preset={channel} serves, under a name with the extension of the "
                   "channel's format (jpg or jpeg for JPEG, png, webp); another extension or an "
                   "unknown channel is a 404. Only 'v' may be given. The findings the rendition "
                   "could not fix (e.g. too_small) are in X-Ecogram-Findings.",
    "parameters": [_query("v", {"type": "string"},
                          "Version token: immutable answer when it matches.")],
    "responses": {"200": {"description": "The rendition",
                          "content": {f"image/{kind}": {"schema": _BINARY}
                                      for kind in ("jpeg", "png", "webp")}}},
})
for _name in ("img_placeholder", "img_position_placeholder"):
    OPERATIONS.setdefault(_name, {"summary": "Blurhash placeholder of an approved image",
                                  "responses": {"200": _json(_ref("Placeholder"))}})


def _path_and_parameters(path: str) -> tuple[str, list[dict[str, Any]]]:
    """aiohttp's ``{id:\\d+}`` becomes OpenAPI's ``{id}`` with a schema from the pattern."""
    parameters = []

    def replace(match: re.Match[str]) -> str:
        name, pattern = match[1], match[2]
        schema: dict[str, Any] = {"type": "string"}
        if pattern in (r"\d+", "[0-9]+"):
            schema = {"type": "integer", "minimum": 1}
        elif pattern and re.fullmatch(r"\(?[\w|]+\)?", pattern):
            schema = {"enum": pattern.strip("()").split("|")}
        elif pattern:
            schema = {"type": "string", "pattern": f"^{pattern}$"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _PARAM.sub(replace, path), parameters


def _generic_responses(status: str = "200") -> dict[str, Any]:
    return {status: {"description": "OK"}}


def build(routes: list[Any], public_url: str = "") -> dict[str, Any]:
    """The OpenAPI document of these routes (``ecogram.routes.ROUTES``)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not route.path.startswith(MACHINE_PREFIXES) and route.path != "/api/openapi.json":
            continue
        path, path_params = _path_and_parameters(route.path)
        described = OPERATIONS.get(route.name, {})
        responses = dict(described.get("responses") or _generic_responses())
        # Every failure has the one JSON error shape.
        responses["default"] = _json(_ref("Error"), "Error (JSON error shape)")
        operation: dict[str, Any] = {
            "operationId": route.name,
            "summary": described.get("summary", route.name.replace("_", " ")),
            "tags": [_tag(route.path)],
            "responses": responses,
            "x-access": route.access,
        }
        if "description" in described:
            operation["description"] = described["description"]
        parameters = path_params + list(described.get("parameters", []))
        if parameters:
            operation["parameters"] = parameters
        if "requestBody" in described:
            operation["requestBody"] = described["requestBody"]
        if route.access == PUBLIC:
            operation["security"] = []
        else:
            operation["description"] = (
                operation.get("description", "") + f" Requires the {route.access} role or "
                "higher.").strip()
        paths.setdefault(path, {})[route.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "E-co Gram", "version": "1",
                 "description": "Image back office and image CDN of an online shop."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
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
