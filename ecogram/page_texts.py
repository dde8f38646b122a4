"""What the pages say about errors, quality findings and audit entries, in the page's language.

The service's own sentences (``AppError.message``, a finding's ``message``) are English and stay
so in the API, where clients read the ``code``. A page shows people a sentence from the
catalogues instead: the message itself when it is a catalogued sentence, else the sentence for
its code filled from its details, else a general one for its status; English pages keep the
service's sentence, which is the most precise. Every text here is marked with ``N_`` so
``pybabel extract`` finds it; tests/views/test_admin_pages_i18n.py checks that every error code
the code base raises has its sentence and that Portuguese translates all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecogram.errors import AppError
from ecogram.i18n import DEFAULT_LANGUAGE, Localizer


def N_(message: str) -> str:  # the gettext convention: "mark, translate later"
    return message


# One sentence per error code, with %(name)s taken from the error's details. A code whose
# details lack a name falls back to the general sentence for its status.
ERRORS: dict[str, str] = {
    "archive_too_large": N_("The archive is larger than the limit."),
    "bad_multipart": N_("The upload could not be read; try again."),
    "bad_request": N_("The request could not be understood."),
    "conflict": N_("Something changed meanwhile; reload the page and try again."),
    "cross_site": N_("Requests from other sites are not accepted here."),
    "csrf_failed": N_("The form is missing its security token; reload the page and try again."),
    "damaged_image": N_("The file is damaged or incomplete and cannot be read as an image."),
    "damaged_member": N_("The archive entry is damaged and could not be read."),
    "duplicate": N_("This product already has this exact photo."),
    "edit_conflict": N_("The photo was changed meanwhile; reload the page and try again."),
    "email_taken": N_("An account with this e-mail address already exists."),
    "empty_file": N_("The file is empty."),
    "encrypted_member": N_("The archive entry is encrypted."),
    "fetch_failed": N_("The address could not be fetched."),
    "fetch_timeout": N_("The address did not answer in time."),
    "file_not_found": N_("The file named in the manifest was not found."),
    "file_too_large": N_("The file is larger than the upload limit."),
    "forbidden": N_("Your role does not allow this."),
    "http_error": N_("The request could not be carried out."),
    "internal_error": N_("Something went wrong on our side. Quote the request id when "
                         "reporting it."),
    "invalid_archive": N_("The ZIP file is damaged and cannot be read."),
    "invalid_credentials": N_("The e-mail address or the password is wrong."),
    "invalid_fields": N_("Some values are not acceptable."),
    "invalid_filename": N_("The file's name is not readable text; rename it and try again."),
    "invalid_form": N_("The form could not be read; reload the page and try again."),
    "invalid_json": N_("The request could not be understood."),
    "invalid_manifest": N_("The manifest is not a CSV file with a 'file' or 'url' column."),
    "invalid_multipart": N_("The upload could not be read; try again."),
    "invalid_parameter": N_("The address has a parameter that is not acceptable."),
    "invalid_signature": N_("The address's signature does not match it."),
    "invalid_url": N_("The address is not valid."),
    "last_admin": N_("This is the last active admin: promote another user to admin first."),
    "method_not_allowed": N_("This method is not allowed here."),
    "missing_file": N_("A row of the manifest names neither a file nor an address."),
    "no_code": N_("No product code was given and none could be read from the file name "
                  "%(filename)s; name files like SKU-123_2.jpg or type a code."),
    "no_files": N_("No file was sent."),
    "not_found": N_("There is nothing here."),
    "not_pending": N_("This photo is not pending any more; only pending photos can be "
                      "reviewed."),
    "overloaded": N_("The image server is busy; try again in a moment."),
    "position_conflict": N_("Positions changed meanwhile; try again."),
    "private_address": N_("The address points to a private network, which imports may not "
                          "reach."),
    "registration_closed": N_("Registration is closed; ask an admin for an account."),
    "render_failed": N_("The image could not be rendered."),
    "render_timeout": N_("Rendering this image took too long; try again later."),
    "request_timeout": N_("The request stopped arriving; check the connection and try again."),
    "too_large": N_("The request is too large."),
    "too_many_attempts": N_("Too many failed sign-in attempts. Try again later."),
    "too_many_exports": N_("Too many exports are running; try again in a moment."),
    "too_many_files": N_("Too many files at once; send fewer."),
    "too_many_frames": N_("The image has %(frames)s frames; the limit is %(max_frames)s."),
    "too_many_members": N_("The archive holds more entries than the limit."),
    "too_many_pixels": N_("The image is %(width)s × %(height)s pixels, more than the limit."),
    "too_many_redirects": N_("The address redirects too many times."),
    "too_many_requests": N_("Too many requests; try again in a moment."),
    "too_many_rows": N_("The manifest has more rows than the limit."),
    "too_small": N_("The image is %(width)s × %(height)s pixels; its shortest side must be at "
                    "least %(min_side)s pixels."),
    "unauthorized": N_("Sign in first."),
    "unavailable": N_("This is unavailable for a moment. Try again soon."),
    "unreadable_file": N_("The file could not be read."),
    "unsafe_path": N_("The archive entry has an absolute path or '..' in its name and was not "
                      "read."),
    "unsupported_type": N_("This is not an accepted type of file."),
    "unsupported_url": N_("Only http and https addresses can be imported."),
    "upload_gone": N_("The uploaded archive is no longer stored; send it again."),
}

# Field errors (code invalid_fields, which says little) with a fixed sentence: translated word
# for word. The test checks that every such sentence the code base raises is here, and each of
# these is still raised somewhere (a reworded message is noticed). Field errors built with
# f-strings show the general sentence and the fields' names.
MESSAGES = (
    N_("A name is required."),
    N_("A password is required."),
    N_("A product code cannot contain blanks, '/', '\\', '?', '#' or '%'."),
    N_("A product code is 1 to 100 characters without spaces, slashes, '?', '#', '%' or "
       "control characters."),
    N_("A rejection needs a reason."),
    N_("An e-mail address is required."),
    N_("Choose a status."),
    N_("Choose an export format."),
    N_("Choose what to do with the selected photos."),
    N_("Give at least one id."),
    N_("None of the selected photos exists any more."),
    N_("Nothing to change: give role and/or disabled."),
    N_("Only role and disabled can be changed here."),
    N_("Select at least one photo."),
    N_("Some export parameters are not acceptable."),
    N_("Some query parameters are not acceptable."),
    N_("The current password is required."),
    N_("The current password is wrong."),
    N_("The password must be a string."),
    N_("The password must not be the e-mail address."),
    N_("The CSV contains a NUL character."),
    N_("The CSV is not UTF-8 text."),
    N_("The CSV must start with the header line code,external_id."),
    N_("The product code is not acceptable."),
    N_("The product's id on the channel is not acceptable."),
    N_("This e-mail address is reserved for the demo."),
    N_("There is no image with this id."),
    N_("There is no import with this id."),
    N_("There is no such user."),
    N_("There is nothing at this address."),
    N_("This is not an e-mail address."),
    N_("position must be a whole number from 1."),
    N_("reason contains control characters."),
    N_("reason is too long."),
    N_("Nested multipart bodies are not accepted."),
    N_("Only code, product, position and alt can be edited."),
    N_("action must be approve or reject."),
    N_("disabled must be true or false."),
    N_("reason must be a string."),
    # the channels board's filters
    N_("Choose a channel to show only ready or not ready products."),
    N_("Choose one of the enabled channels."),
    N_("Choose which photos count."),
    N_("ready must be true or false."),
)

# The general sentence when a code has none (or its details lack a name it needs).
BY_STATUS: dict[int, str] = {
    400: N_("The request could not be understood."),
    401: N_("Sign in first."),
    403: N_("Your role does not allow this."),
    404: N_("There is nothing here."),
    409: N_("Something changed meanwhile; reload the page and try again."),
    413: N_("This is larger than the limit."),
    415: N_("This is not an accepted type of file."),
    422: N_("Some values are not acceptable."),
    429: N_("Too many requests; try again in a moment."),
}
SERVER_ERROR = N_("Something went wrong on our side. Quote the request id when reporting it.")

# Form and query fields, as a person calls them (error lists, audit details).
FIELDS: dict[str, str] = {
    "action": N_("action"),
    "alt": N_("alt text"),
    "code": N_("product code"),
    "current_password": N_("current password"),
    "disabled": N_("access"),
    "email": N_("e-mail address"),
    "file": N_("file"),
    "format": N_("format"),
    "ids": N_("selected photos"),
    "image_id": N_("photo id"),
    "name": N_("name"),
    "page": N_("page"),
    "password": N_("password"),
    "per_page": N_("per page"),
    "q": N_("text"),
    "channel": N_("channel"),
    "ready": N_("readiness"),
    "position": N_("position"),
    "product": N_("product name"),
    "reason": N_("reason"),
    "role": N_("role"),
    "since": N_("since"),
    "sort": N_("sort"),
    "status": N_("status"),
    "until": N_("until"),
    # what audit entries record
    "accepted": N_("files accepted"),
    "batch_id": N_("batch"),
    "codes": N_("product codes"),
    "count": N_("photos"),
    "deleted_at": N_("deleted"),
    "duplicate": N_("duplicate files"),
    "export_id": N_("export"),
    "file_size": N_("file size"),
    "filename": N_("file name"),
    "filters": N_("filters"),
    "first_user": N_("first account"),
    "height": N_("height"),
    "importer": N_("imported by"),
    "note": N_("note"),
    "rejected": N_("files refused"),
    "sha256": N_("fingerprint (SHA-256)"),
    "shifted": N_("photos moved down"),
    "source": N_("source"),
    "version": N_("version"),
    "warnings": N_("quality findings"),
    "width": N_("width"),
}

# Words the service records as values (audit details), as a person calls them.
VALUES: dict[str, dict[str, str]] = {
    "source": {"upload": N_("uploaded files"), "archive": N_("ZIP archive"),
               "manifest": N_("CSV manifest"), "demo": N_("demo catalogue")},
    "reason": {"unknown_email": N_("unknown e-mail address"),
               "wrong_password": N_("wrong password"), "disabled": N_("account disabled")},
}

# Quality findings: %(name)s from the finding and the photo's quality record (width, height,
# frames, long_side).
WARNINGS: dict[str, str] = {
    "animated": N_("The image has %(frames)s frames; only the first is used."),
    "background_not_white": N_("The background at the edges is not white."),
    "cmyk": N_("The image is CMYK (print colours); it is converted to sRGB for the web."),
    "exif_orientation": N_("The camera stored the image turned; it is served upright."),
    "low_resolution": N_("The long side is %(long_side)s pixels: too small for shops to offer "
                         "zoom."),
    "near_duplicate": N_("This looks like photo %(image_id)s of the same product."),
    "no_icc_profile": N_("The CMYK image has no colour profile; a generic one is assumed and "
                         "colours may shift."),
    "not_square": N_("The image is %(width)s × %(height)s pixels, not square."),
    "same_image_elsewhere": N_("The same file is already photo %(image_id)s of another "
                               "product."),
}
WARNING_OTHER = N_("A quality finding the page cannot describe.")
# The same findings in a word or two (lists of them: audit details).
WARNING_NAMES: dict[str, str] = {
    "animated": N_("animated"),
    "background_not_white": N_("background not white"),
    "cmyk": N_("CMYK colours"),
    "exif_orientation": N_("stored turned"),
    "low_resolution": N_("too small for zoom"),
    "near_duplicate": N_("looks like another photo"),
    "no_icc_profile": N_("no colour profile"),
    "not_square": N_("not square"),
    "same_image_elsewhere": N_("same file as another product's"),
}

# Who did something when no account did (cli.py and the use cases write these names).
ACTORS = {"command line": N_("command line"), "anonymous": N_("anonymous")}


class _Values(dict):
    """Details for %-formatting: a missing name is a KeyError the caller handles."""


def _fill(template: str, values: Mapping[str, Any]) -> str | None:
    try:
        return template % _Values(values)
    except (KeyError, TypeError, ValueError):
        return None


def field_name(i18n: Localizer, name: str) -> str:
    known = FIELDS.get(name)
    return i18n.gettext(known) if known else name


def value_name(i18n: Localizer, name: str, value: str) -> str:
    known = VALUES.get(name, {}).get(value)
    return i18n.gettext(known) if known else value


@dataclass(frozen=True)
class PageError:
    """An error as a page shows it: the sentence, and the fields it is about."""

    status: int
    code: str
    message: str
    details: Mapping[str, Any]
    fields: tuple[tuple[str, str | None], ...] = ()


def error_message(i18n: Localizer, code: str, message: str, status: int,
                  details: Mapping[str, Any]) -> str:
    if i18n.lang == DEFAULT_LANGUAGE:
        return message  # the service's own sentence: English, and the most precise
    translated = i18n.gettext(message)
    if translated != message:
        return translated
    template = ERRORS.get(code)
    if template:
        text = _fill(i18n.gettext(template), details)
        if text is not None:
            return text
    if status >= 500:
        return i18n.gettext(SERVER_ERROR)
    return i18n.gettext(BY_STATUS.get(status, BY_STATUS[400]))


def page_error(i18n: Localizer, error: AppError) -> PageError:
    details = error.details or {}
    problems = details.get("fields")
    named: list[tuple[str, str | None]] = []
    english = i18n.lang == DEFAULT_LANGUAGE
    if isinstance(problems, Mapping):
        for name, problem in problems.items():
            named.append((field_name(i18n, str(name)),
                          str(problem) if english and problem is not None else None))
    elif isinstance(details.get("field"), str):
        named.append((field_name(i18n, details["field"]), None))
    return PageError(error.status, error.code,
                     error_message(i18n, error.code, error.message, error.status, details),
                     details, tuple(named))


def js_errors(i18n: Localizer) -> dict[str, str]:
    """The import page's sentences by code; English pages use the API's own messages."""
    if i18n.lang == DEFAULT_LANGUAGE:
        return {}
    texts = {code: i18n.gettext(text) for code, text in ERRORS.items()}
    texts["*"] = i18n.gettext(BY_STATUS[422])
    return texts


def warning_text(i18n: Localizer, warning: Mapping[str, Any],
                 qc: Mapping[str, Any] | None = None) -> str:
    qc = qc or {}
    if i18n.lang == DEFAULT_LANGUAGE and warning.get("message"):
        return str(warning["message"])
    template = WARNINGS.get(str(warning.get("code")))
    values = {**qc, **warning}
    if isinstance(qc.get("width"), int) and isinstance(qc.get("height"), int):
        values["long_side"] = max(qc["width"], qc["height"])
    text = _fill(i18n.gettext(template), values) if template else None
    return text or i18n.gettext(WARNING_OTHER)


def warning_name(i18n: Localizer, code: str) -> str:
    known = WARNING_NAMES.get(code)
    return i18n.gettext(known) if known else i18n.gettext(WARNING_OTHER)


def js_warnings(i18n: Localizer) -> dict[str, str]:
    if i18n.lang == DEFAULT_LANGUAGE:
        return {}
    texts = {code: i18n.gettext(text) for code, text in WARNINGS.items()}
    texts["*"] = i18n.gettext(WARNING_OTHER)
    return texts


def actor_name(i18n: Localizer, name: str | None, actor_id: int | None = None) -> str:
    """Names written for no account ("command line (ana)", "anonymous") in the page's language."""
    if not name:
        return ""
    if actor_id is not None:
        return name
    base, sep, rest = name.partition(" (")
    if base in ACTORS:
        return i18n.gettext(ACTORS[base]) + (sep + rest if sep else "")
    return name
