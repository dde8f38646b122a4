"""The typed requests and responses of the API (``ecogram.contract`` explains the mechanism).

Constraints live here, on the fields, with the numbers of the use cases they guard (imported,
never retyped): the views validate through these models, and the OpenAPI document is written
from them. Request models refuse unknown fields; response models describe what the records of
``ecogram.catalog`` hold.
"""

from typing import Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from ecogram.auth import passwords
from ecogram.auth.roles import ROLES
from ecogram.catalog import accounts, analytics, audit_trail, channel_ids, channels, images, review
from ecogram.catalog.exports import MAX_CODES as EXPORT_MAX_CODES
from ecogram.catalog.sources.fields import CODE_RE, MAX_ALT, MAX_POSITION, MAX_PRODUCT
from ecogram.contract import Instant, Upload
from ecogram.imaging import options

# --- text --------------------------------------------------------------------------------------
# No NUL or control character (C0, DEL, C1) in one-line text; texts a person may write over
# several lines also take tab and line breaks. The same rule as ``ecogram.inputs.check_text``.
LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
# At least one character that is not a blank (the use cases strip what they are given).
FILLED_LINE = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
Code = Annotated[str, Meta(pattern=f"^{CODE_RE.pattern}$", min_length=1, max_length=100,
                           description="A product code: no blanks, '/', '\\', '?', '#', '%'.",
                           examples=["SKU-123"])]
CodeFilter = Annotated[str, Meta(pattern=LINE, max_length=channel_ids.MAX_CODE)]
Email = Annotated[str, Meta(pattern=accounts.EMAIL_PATTERN, max_length=accounts.MAX_EMAIL_LENGTH,
                            examples=["ana@example.com"])]
Name = Annotated[str, Meta(pattern=FILLED_LINE, max_length=accounts.MAX_NAME_LENGTH,
                           examples=["Ana Souza"])]
Password = Annotated[str, Meta(pattern=TEXT, min_length=passwords.MIN_LENGTH,
                               max_length=passwords.MAX_LENGTH,
                               examples=["correct horse battery staple"])]
GivenPassword = Annotated[str, Meta(pattern=TEXT, min_length=1, max_length=passwords.MAX_LENGTH)]
Role = Literal[tuple(ROLES)]  # type: ignore[valid-type]
# A reviewer's note: several lines, no other control character (``review.clean_note``).
NOTE = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
FILLED_NOTE = (r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f]"
               r"[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")
Note = Annotated[str, Meta(pattern=NOTE, max_length=review.MAX_NOTE)]
NeededNote = Annotated[str, Meta(pattern=FILLED_NOTE, max_length=review.MAX_NOTE,
                                 description="Why: a rejection must say it.",
                                 examples=["Background is not white."])]
Filter = Annotated[str, Meta(pattern=LINE, max_length=200)]
ImageId = Annotated[int, Meta(ge=1, le=10**18 - 1)]


def Page(most: int) -> Any:
    return Annotated[int, Meta(ge=1, le=most, description="Page, from 1.")]


def PerPage(most: int) -> Any:
    return Annotated[int, Meta(ge=1, le=most, description="Items per page.")]


def Codes(most: int) -> Any:
    return Annotated[list[CodeFilter], Meta(
        max_length=most, description="Product codes, comma-separated or repeated.")]


class Request(Struct, forbid_unknown_fields=True, kw_only=True):
    """A request model: fields it does not name are refused."""


class Changes(Request):
    """A partial update: at least one of the fields ``changes`` names (all by default)."""

    changes: ClassVar[tuple[str, ...]] = ()


# --- accounts ----------------------------------------------------------------------------------

class Registration(Request):
    email: Email
    name: Name
    password: Password


class Login(Request):
    email: Annotated[str, Meta(pattern=FILLED_LINE, max_length=accounts.MAX_EMAIL_LENGTH)]
    password: GivenPassword
    # Not needed to log in: accepted (and ignored) so a registration's body logs in as it is.
    name: Annotated[str, Meta(max_length=accounts.MAX_NAME_LENGTH, pattern=LINE,
                              description="Ignored.")] | UnsetType = UNSET


class PasswordChange(Request):
    current_password: GivenPassword
    new_password: Password


class UserChange(Changes):
    role: Role | UnsetType = UNSET
    disabled: bool | UnsetType = UNSET


class User(Struct):
    id: int
    email: str
    name: str
    role: Role
    disabled: bool
    created_at: str
    updated_at: str


class UserList(Struct):
    items: list[User]
    total: int


class Token(Struct):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


# --- images ------------------------------------------------------------------------------------

Status = Literal[images.STATUSES]  # type: ignore[valid-type]


class ImageUrls(Struct):
    src: str
    srcset: str


class Image(Struct):
    id: int
    code: str
    product: str
    position: Annotated[int, Meta(ge=1)]
    status: Status
    filename: str
    format: str
    width: int
    height: int
    file_size: int
    sha256: str
    blurhash: str
    color: str
    importer: str
    imported_at: str
    reviewed_by: str | None
    reviewed_at: str | None
    review_note: str | None
    qc: dict[str, Any]
    alt: str
    version: int
    urls: ImageUrls
    mime: str | UnsetType = UNSET
    has_alpha: bool | UnsetType = UNSET
    importer_id: int | UnsetType | None = UNSET
    batch_id: int | UnsetType | None = UNSET
    updated_at: str | UnsetType = UNSET


class ImageList(Struct):
    items: list[Image]
    total: Annotated[int, Meta(ge=0)]
    page: int
    per_page: int


class ImageQuery(Request):
    status: Status | None = None
    code: Codes(EXPORT_MAX_CODES) = []  # type: ignore[valid-type]
    q: Annotated[str, Meta(pattern=LINE, max_length=200,
                           description="Text in the code or product name.")] = ""
    importer: Annotated[Filter, Meta(description="Importer: a user id or a name.")] = ""
    since: Annotated[Instant, Meta(description="Imported at or after.")] | None = None
    until: Annotated[Instant, Meta(description="Imported before.")] | None = None
    sort: Literal[images.SORTS] = images.DEFAULT_SORT  # type: ignore[valid-type]
    page: Page(images.MAX_PAGE) = 1  # type: ignore[valid-type]
    per_page: PerPage(images.MAX_PER_PAGE) = 50  # type: ignore[valid-type]


class ImageEdit(Changes):
    changes: ClassVar[tuple[str, ...]] = ("code", "product", "position", "alt")
    code: Code | UnsetType = UNSET
    product: Annotated[str, Meta(pattern=LINE, max_length=MAX_PRODUCT)] | UnsetType = UNSET
    position: Annotated[int, Meta(ge=1, le=MAX_POSITION)] | UnsetType = UNSET
    alt: Annotated[str, Meta(pattern=TEXT, max_length=MAX_ALT)] | UnsetType = UNSET
    version: Annotated[int, Meta(description="Refuse (409) unless the photo's version is "
                                 "still this one.")] | UnsetType = UNSET


class DeleteQuery(Request):
    purge: Annotated[bool, Meta(description="Remove row and original for good.")] = False


class Approval(Request):
    reason: Note | UnsetType = UNSET


class Rejection(Request):
    reason: NeededNote


class BulkApprove(Request, tag_field="action", tag="approve"):
    ids: Annotated[list[ImageId], Meta(min_length=1, max_length=review.MAX_BULK)]
    reason: Note | UnsetType = UNSET


class BulkReject(Request, tag_field="action", tag="reject"):
    ids: Annotated[list[ImageId], Meta(min_length=1, max_length=review.MAX_BULK)]
    reason: NeededNote


class ReviewError(Struct):
    code: str
    message: str
    details: dict[str, Any]


class ReviewResult(Struct):
    id: int
    outcome: Literal["ok", "error"]
    status: int
    record: Image | UnsetType = UNSET
    error: ReviewError | UnsetType = UNSET


class BulkReviewResult(Struct):
    action: Literal["approve", "reject"]
    succeeded: int
    failed: int
    results: list[ReviewResult]


# --- import ------------------------------------------------------------------------------------

class ImportItem(Struct):
    seq: int
    filename: str
    outcome: Literal["accepted", "duplicate", "rejected"]


class ImportReport(Struct):
    id: int
    status: Literal["queued", "running", "done", "interrupted"]
    accepted: int
    duplicate: int
    rejected: int
    items: list[ImportItem]
    files: Annotated[int | None, Meta(description="An import job's number of files.")] = None
    reason: Annotated[str | None, Meta(description="Why an import job was interrupted.")] = None


class UploadFields(Request):
    """The import's text fields (``catalog.sources.fields``): one line each, blanks trimmed;
    an empty one is not given (a manifest's blank cell, a form's empty input)."""

    code: Annotated[str, Meta(pattern=f"^\\s*({CODE_RE.pattern})?\\s*$", max_length=100,
                              description="A product code: no blanks, '/', '\\', '?', '#', "
                              "'%'.")] | UnsetType = UNSET
    product: Annotated[str, Meta(pattern=LINE, max_length=MAX_PRODUCT)] | UnsetType = UNSET
    position: Annotated[int, Meta(ge=1, le=MAX_POSITION)] | UnsetType = UNSET
    alt: Annotated[str, Meta(pattern=LINE, max_length=MAX_ALT)] | UnsetType = UNSET


class UploadForm(UploadFields, kw_only=True):
    file: Annotated[list[Upload], Meta(min_length=1, description="One part per photo.")]


class ImportForm(Request):
    archive: Annotated[Upload, Meta(description="A ZIP of photos.")] | UnsetType = UNSET
    manifest: Annotated[Upload, Meta(description="A CSV manifest (UTF-8).")] | UnsetType = UNSET


class ReplaceForm(Request):
    file: Upload


class CsvForm(Request):
    file: Annotated[Upload, Meta(description="code,external_id (UTF-8 CSV).")]


# --- review, audit, analytics --------------------------------------------------------------------

class AuditQuery(Request):
    image_id: ImageId | None = None
    actor: Filter = ""
    action: Annotated[str, Meta(pattern=LINE, max_length=audit_trail.MAX_ACTION)] = ""
    since: Instant | None = None
    until: Instant | None = None
    page: Page(audit_trail.MAX_PAGE) = 1  # type: ignore[valid-type]
    per_page: PerPage(audit_trail.MAX_PER_PAGE) = 50  # type: ignore[valid-type]


class AuditEntry(Struct):
    id: int
    at: str
    actor: str
    action: str
    details: dict[str, Any]
    actor_id: int | UnsetType | None = UNSET
    image_id: int | UnsetType | None = UNSET
    target: str | UnsetType | None = UNSET
    client: str | UnsetType | None = UNSET


class AuditList(Struct):
    items: list[AuditEntry]
    total: int
    page: int
    per_page: int


class AnalyticsQuery(Request):
    since: Annotated[Instant, Meta(description="First day (default: seven days before until).")
                     ] | None = None
    until: Annotated[Instant, Meta(description="The day after the last (default: tomorrow).")
                     ] | None = None
    code: Codes(analytics.MAX_CODES) = []  # type: ignore[valid-type]
    group: Literal[analytics.GROUPS] = "photo"  # type: ignore[valid-type]
    sort: Literal[tuple(f"{d}{k}" for k in analytics.SORTS  # type: ignore[misc]
                        for d in ("", "-"))] = "-requests"
    page: Page(analytics.MAX_PAGE) = 1  # type: ignore[valid-type]
    per_page: PerPage(analytics.MAX_PER_PAGE) = 50  # type: ignore[valid-type]


class DeliveryFigures(Struct):
    requests: int
    bytes_sent: int
    bytes_saved: int
    bytes_per_request: float | None
    hits: int
    hit_ratio: float | None
    renders: int
    render_ms: float
    render_ms_avg: float | None


class AnalyticsRow(DeliveryFigures):
    code: str
    image_id: int | UnsetType = UNSET
    position: int | UnsetType = UNSET


class AnalyticsDay(DeliveryFigures):
    day: str


class Analytics(Struct):
    since: str
    until: str
    group: Literal[analytics.GROUPS]  # type: ignore[valid-type]
    items: list[AnalyticsRow]
    page: int
    per_page: int
    total: int
    totals: DeliveryFigures
    days: list[AnalyticsDay]


# --- exports -------------------------------------------------------------------------------------

class ExportQuery(Request):
    code: Codes(EXPORT_MAX_CODES) = []  # type: ignore[valid-type]
    since: Annotated[Instant, Meta(description="Only images approved or updated since.")
                     ] | None = None
    status: Literal[images.STATUSES] = "approved"  # type: ignore[valid-type]
    include_not_ready: Annotated[bool, Meta(description="Sales channel formats: also products "
                                            "not ready, with their findings (the shop "
                                            "platforms' formats ignore it).")] = False


class RenditionsQuery(ExportQuery, kw_only=True):
    channel: Annotated[str, Meta(pattern=r"^[a-z0-9_]{1,50}$",
                                 description="The sales channel (GET /api/v1/channels).")]


# --- sales channels ------------------------------------------------------------------------------

class Channel(Struct):
    id: str
    name: str
    formats: list[str]
    output: str
    recommended: int
    square: bool
    white_main: bool
    min_photos: int
    sources: list[str]
    note: str
    enabled: Annotated[bool, Meta(description="Named in ECOGRAM_CHANNELS.")]
    min_side: int | None = None
    max_side: int | None = None
    zoom_side: int | None = None
    max_bytes: int | None = None
    min_bytes: int | None = None
    max_pixels: int | None = None
    fill: float | None = None
    max_photos: int | None = None


class ChannelList(Struct):
    items: list[Channel]


class Finding(Struct):
    code: Literal[tuple(f.code for f in channels.FINDINGS)]  # type: ignore[misc]
    message: Annotated[str, Meta(description="In the request's language.")]
    fixable: Annotated[bool, Meta(description="The channel rendition fixes it.")]


class PhotoReadiness(Struct):
    id: int
    position: int
    main: bool
    ready: bool
    findings: list[Finding]


class ProductReadiness(Struct):
    code: str
    product: str
    ready: bool
    photos: Annotated[int, Meta(ge=0)]
    findings: list[Finding]
    images: list[PhotoReadiness]


class ChannelName(Struct):
    id: str
    name: str


class ReadinessSummary(Struct):
    products: int
    ready: int
    not_ready: int
    photos: int
    findings: Annotated[dict[str, int], Meta(description="Products per finding code.")]


class Readiness(Struct):
    channel: ChannelName
    status: Literal[channels.STATUSES]  # type: ignore[valid-type]
    items: list[ProductReadiness]
    total: Annotated[int, Meta(ge=0)]
    page: int
    per_page: int
    summary: ReadinessSummary


class ReadinessQuery(Request):
    code: Codes(channels.MAX_CODES) = []  # type: ignore[valid-type]
    status: Literal[channels.STATUSES] = "approved"  # type: ignore[valid-type]
    ready: Annotated[bool, Meta(description="Only ready or not ready products.")
                     ] | None = None
    page: Page(channels.MAX_PAGE) = 1  # type: ignore[valid-type]
    per_page: PerPage(channels.MAX_PER_PAGE) = 50  # type: ignore[valid-type]


class ChannelId(Struct):
    channel: str
    code: str
    external_id: str
    updated_at: str


class ChannelIdList(Struct):
    channel: str
    items: list[ChannelId]
    total: int
    page: int
    per_page: int


class ChannelIdQuery(Request):
    code: Codes(channels.MAX_CODES) = []  # type: ignore[valid-type]
    page: Page(channels.MAX_PAGE) = 1  # type: ignore[valid-type]
    per_page: PerPage(channel_ids.MAX_PER_PAGE) = 50  # type: ignore[valid-type]


class ExternalId(Request):
    external_id: Annotated[str, Meta(pattern=FILLED_LINE, max_length=channel_ids.MAX_EXTERNAL_ID,
                                     examples=["MLB3456789012"])]


class ChannelIdImport(Struct):
    channel: str
    rows: int
    set: int
    unchanged: int
    removed: int


# --- delivery ------------------------------------------------------------------------------------
# /img's query is parsed by hand on the hot path (ecogram.imaging.options, catalog.delivery);
# these models document it, and tests/contract/test_img_parameters.py holds the two together.

Side = Annotated[int, Meta(ge=1, le=options.MAX_SIDE, description="CSS pixels.")]
Version = Annotated[str, Meta(pattern=r"^[0-9]{1,10}$", description="The photo's version: "
                              "with it the answer is immutable (cached for a year).")]


class ImageOptions(Request):
    w: Side | UnsetType = UNSET
    h: Side | UnsetType = UNSET
    # options._DPR within MIN_DPR..MAX_DPR (1 to 4), as one pattern.
    dpr: Annotated[str, Meta(pattern=r"^0?([1-3](\.[0-9]{1,6})?|4(\.0{1,6})?)$",
                             description="Device pixel ratio, 1 to 4: w and h are multiplied "
                             "by it.")] | UnsetType = UNSET
    fit: Literal[options.FITS] | UnsetType = UNSET  # type: ignore[valid-type]
    g: Annotated[Literal[options.GRAVITIES], Meta(  # type: ignore[valid-type]
        description="Crop gravity (fit=cover).")] | UnsetType = UNSET
    fmt: Annotated[Literal[options.FORMATS], Meta(  # type: ignore[valid-type]
        description="Output format; auto follows Accept.")] | UnsetType = UNSET
    q: Annotated[int, Meta(ge=1, le=100, description="Quality; without it the photo's "
                           "calibrated quality.")] | UnsetType = UNSET
    bg: Annotated[str, Meta(pattern=r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$",
                            description="Background colour (hex).")] | UnsetType = UNSET


class VersionQuery(Request):
    v: Version | UnsetType = UNSET


class ImgQuery(ImageOptions):
    """w × dpr (and h × dpr) must be an allowed size too, and preset goes with v only:
    relations between parameters, which a 400 naming the parameter enforces."""

    # Lists of the running configuration, which the document spells out as enums.
    configured: ClassVar[dict[str, str]] = {"w": "sizes", "h": "sizes", "preset": "channels"}
    preset: Annotated[str, Meta(pattern=r"^[a-z0-9_]{1,50}$", description="A sales channel's "
                                "id: the photo as that channel takes it; only v may go with "
                                "it.")] | UnsetType = UNSET
    v: Version | UnsetType = UNSET
    s: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,100}$", description="Signature of a URL "
                           "outside the allowed sizes (a wrong one is a 403).")
                 ] | UnsetType = UNSET


class Health(Struct):
    status: Literal["ok"]


class Ready(Struct):
    status: Literal["ready"]
    schema: int

class Placeholder(Struct):
    blurhash: str
    width: int
    height: int
    color: str


class SignedUrl(Struct):
    url: str
    path: str
    image_id: int
    version: int
    status: Status


# --- errors and operations ----------------------------------------------------------------------

class ErrorBody(Struct):
    code: Annotated[str, Meta(description="Stable, for programs (docs/api.md lists them).")]
    message: Annotated[str, Meta(description="For people.")]
    details: dict[str, Any]


class Error(Struct, forbid_unknown_fields=True):
    error: ErrorBody

