"""The one route table. Each route names who may call it, next to the route itself.

A route's ``access`` is ``public`` or the weakest role allowed (see ``ecogram.auth.roles``);
``setup_routes`` registers each handler behind the guard of its access
(``ecogram.auth.guard.guarded``), and a test walks this table for every role.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ecogram import keys
from ecogram.auth.guard import Handler, guarded
from ecogram.auth.roles import PUBLIC, ROLES
from ecogram.views import (
    admin,
    api_analytics,
    api_audit,
    api_auth,
    api_channel_ids,
    api_channels,
    api_docs,
    api_exports,
    api_images,
    api_imports,
    api_review,
    api_sign,
    api_users,
    cdn,
    health,
    pages_auth,
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    name: str
    access: str

    def __post_init__(self) -> None:
        if self.access not in (PUBLIC, *ROLES):
            raise ValueError(f"route {self.name}: unknown access {self.access!r}")


# A product code in a path: no control character, at most 200 characters (as the exports take).
CHANNEL_PRODUCT = r"/api/v1/channels/{id}/products/{code:[^/\x00-\x1f\x7f-\x9f]{1,200}}"

ROUTES: list[Route] = [
    # Operations
    Route("GET", "/healthz", health.healthz, "healthz", PUBLIC),
    Route("GET", "/readyz", health.readyz, "readyz", PUBLIC),
    Route("GET", "/metrics", health.metrics, "metrics", PUBLIC),
    # Public delivery (issue 5). A position is digits, so "placeholder" never is one.
    Route("GET", "/img/{code}", cdn.image, "img", PUBLIC),
    Route("GET", "/img/{code}/placeholder", cdn.placeholder, "img_placeholder", PUBLIC),
    Route("GET", r"/img/{code}/{position:\d+}", cdn.image, "img_position", PUBLIC),
    Route("GET", r"/img/{code}/{position:\d+}/placeholder", cdn.placeholder,
          "img_position_placeholder", PUBLIC),
    # Channel renditions (issue 13): what ?preset={channel} serves, as a file name with the
    # channel format's extension. "placeholder" has no dot, so it never matches here.
    Route("GET", r"/img/{code}/{position:\d+}/{channel:[^/.]+}.{ext:[^/.]+}", cdn.channel_file,
          "img_channel_file", PUBLIC),
    Route("GET", r"/api/v1/images/{id:\d+}/signed-url", api_sign.signed_url, "images_sign",
          "importer"),
    # Import (issue 4): the per-file report of uploads, ZIP/CSV batches and their stored report
    Route("POST", "/api/v1/images", api_imports.post_images, "images_import", "importer"),
    Route("POST", "/api/v1/imports", api_imports.post_imports, "imports_create", "importer"),
    Route("GET", r"/api/v1/imports/{id:\d+}", api_imports.get_import, "imports_get", "importer"),
    # Management, review, audit, export and the API description (issue 6)
    Route("GET", "/api/v1/images", api_images.list_images, "images_list", "viewer"),
    Route("GET", r"/api/v1/images/{id:\d+}", api_images.get_image, "images_get", "viewer"),
    Route("PATCH", r"/api/v1/images/{id:\d+}", api_images.patch_image, "images_edit", "importer"),
    Route("DELETE", r"/api/v1/images/{id:\d+}", api_images.delete_image, "images_delete",
          "admin"),
    Route("POST", r"/api/v1/images/{id:\d+}/purge", api_images.purge_image, "images_purge",
          "admin"),
    Route("GET", r"/api/v1/images/{id:\d+}/original", api_images.get_original,
          "images_original", "viewer"),
    Route("PUT", r"/api/v1/images/{id:\d+}/file", api_images.replace_file, "images_replace",
          "importer"),
    Route("POST", r"/api/v1/images/{id:\d+}/approve", api_review.approve, "images_approve",
          "reviewer"),
    Route("POST", r"/api/v1/images/{id:\d+}/reject", api_review.reject, "images_reject",
          "reviewer"),
    Route("POST", "/api/v1/reviews", api_review.bulk, "reviews_bulk", "reviewer"),
    # The shop platforms' formats, and (issue 13) the sales channels' and renditions CSV
    Route("GET", "/api/v1/exports/{format:(shopify|woocommerce|magento|json|zip|vtex|google"
          "|mercadolivre|nuvemshop)}", api_exports.export, "exports_get", "reviewer"),
    Route("GET", "/api/v1/exports/renditions", api_exports.renditions, "exports_renditions",
          "reviewer"),
    Route("GET", "/api/v1/audit", api_audit.list_audit, "audit_list", "admin"),
    # Delivery analytics (issue 15): what the storefront loads, per photo or product
    Route("GET", "/api/v1/analytics", api_analytics.get_analytics, "analytics_get", "viewer"),
    # Sales channels (issue 13): the profiles, and each product's readiness for one
    Route("GET", "/api/v1/channels", api_channels.list_channels, "channels_list", "viewer"),
    Route("GET", "/api/v1/channels/{id}", api_channels.get_channel, "channels_get", "viewer"),
    Route("GET", "/api/v1/channels/{id}/readiness", api_channels.readiness,
          "channels_readiness", "viewer"),
    # Sales channels (issue 13): each product's own id on a channel (the exports are above)
    Route("GET", "/api/v1/channels/{id}/products", api_channel_ids.list_ids,
          "channel_ids_list", "viewer"),
    Route("POST", "/api/v1/channels/{id}/products", api_channel_ids.import_ids,
          "channel_ids_import", "reviewer"),
    Route("GET", CHANNEL_PRODUCT, api_channel_ids.get_id, "channel_ids_get", "viewer"),
    Route("PUT", CHANNEL_PRODUCT, api_channel_ids.put_id, "channel_ids_put", "reviewer"),
    Route("DELETE", CHANNEL_PRODUCT, api_channel_ids.delete_id, "channel_ids_delete",
          "reviewer"),
    Route("GET", "/api/openapi.json", api_docs.openapi_json, "openapi", PUBLIC),
    # Accounts (API)
    Route("POST", "/api/v1/auth/register", api_auth.register, "auth_register", PUBLIC),
    Route("POST", "/api/v1/auth/login", api_auth.login, "auth_login", PUBLIC),
    Route("GET", "/api/v1/auth/me", api_auth.me, "auth_me", "viewer"),
    Route("POST", "/api/v1/auth/logout", api_auth.logout, "auth_logout", "viewer"),
    Route("POST", "/api/v1/auth/password", api_auth.change_password, "auth_password", "viewer"),
    Route("GET", "/api/v1/users", api_users.list_users, "users_list", "admin"),
    Route("PATCH", r"/api/v1/users/{id:\d+}", api_users.update_user, "users_update", "admin"),
    # Accounts (pages): public, the handlers look at the session the guard attached
    # "/" is the staff dashboard (issue 7); anonymous visitors are sent to /login by the guard
    Route("GET", "/", admin.home, "home", "viewer"),
    Route("GET", "/login", pages_auth.login_page, "login_page", PUBLIC),
    Route("POST", "/login", pages_auth.login_submit, "login_submit", PUBLIC),
    Route("GET", "/register", pages_auth.register_page, "register_page", PUBLIC),
    Route("POST", "/register", pages_auth.register_submit, "register_submit", PUBLIC),
    Route("POST", "/logout", pages_auth.logout, "logout", PUBLIC),
    # Admin pages (issue 7): server-rendered; forms carry the CSRF token the guard checks
    Route("GET", "/lang", admin.switch_language, "lang_switch", PUBLIC),
    Route("GET", "/admin", admin.dashboard, "admin_dashboard", "viewer"),
    Route("GET", "/admin/import", admin.import_page, "admin_import", "importer"),
    Route("GET", "/admin/library", admin.library, "admin_library", "viewer"),
    Route("POST", "/admin/library/bulk", admin.library_bulk, "admin_library_bulk", "reviewer"),
    Route("GET", "/admin/review", admin.review_queue, "admin_review", "reviewer"),
    Route("POST", r"/admin/review/{id:\d+}", admin.review_submit, "admin_review_submit",
          "reviewer"),
    Route("GET", r"/admin/images/{id:\d+}", admin.photo, "admin_photo", "viewer"),
    Route("GET", r"/admin/images/{id:\d+}/preview", admin.photo_preview, "admin_preview",
          "viewer"),
    Route("GET", r"/admin/images/{id:\d+}/channel/{channel}", cdn.channel_preview,
          "admin_channel_preview", "viewer"),
    Route("POST", r"/admin/images/{id:\d+}/edit", admin.photo_edit, "admin_photo_edit",
          "importer"),
    Route("POST", r"/admin/images/{id:\d+}/replace", admin.photo_replace,
          "admin_photo_replace", "importer"),
    Route("POST", r"/admin/images/{id:\d+}/delete", admin.photo_delete, "admin_photo_delete",
          "admin"),
    Route("GET", "/admin/channels", admin.channels_page, "admin_channels", "viewer"),
    Route("GET", "/admin/export", admin.export_page, "admin_export", "reviewer"),
    Route("GET", "/admin/export/download", admin.export_download, "admin_export_download",
          "reviewer"),
    Route("GET", "/admin/users", admin.users_page, "admin_users", "admin"),
    Route("POST", r"/admin/users/{id:\d+}", admin.user_update, "admin_user_update", "admin"),
    Route("GET", "/admin/audit", admin.audit_page, "admin_audit", "admin"),
]


def setup_routes(app: web.Application) -> None:
    """Register every route, its handler behind the guard of its declared access."""
    table: dict[web.AbstractRoute, Route] = {}
    for route in ROUTES:
        handler = guarded(route.access, route.path, route.handler)
        if route.method == "GET":
            added = app.router.add_get(route.path, handler, name=route.name)
        else:
            added = app.router.add_route(route.method, route.path, handler, name=route.name)
        # add_get also adds a HEAD route to the same resource: it shares the declaration.
        for sibling in added.resource or ():
            if sibling.handler is handler:
                table[sibling] = route
    app[keys.route_table] = table
