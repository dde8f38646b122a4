"""Every setting once: its environment variable, default, meaning and validation.

Settings are read from the environment once, validated, and frozen. ``SETTINGS_DOC`` is the table
docs/settings.md documents (a test fails when a setting or its default is missing there).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecogram import channels as channel_profiles


class SettingsError(ValueError):
    """A setting has a value the service cannot run with."""


# Each parser raises ValueError with the end of a sentence that starts with the variable's name:
# "ECOGRAM_MIN_SIDE must be a whole number (not 'abc')".


def _int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("must be a whole number") from None


def _float(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("must be a number") from None


def _port(raw: str) -> int:
    value = _int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _sizes(raw: str) -> tuple[int, ...] | None:
    """``*`` (any size, returned as None) or a comma-separated list of positive pixel sizes."""
    raw = raw.strip()
    if raw == "*":
        return None
    try:
        sizes = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError:
        sizes = ()
    if not sizes or any(size <= 0 for size in sizes):
        raise ValueError("must be '*' or whole numbers above zero separated by commas")
    return sizes


def _int_list(raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        values = (0,)
    if any(value <= 0 for value in values):
        raise ValueError("must be whole numbers above zero separated by commas")
    return values


def _quality_widths(raw: str) -> tuple[int, ...]:
    values = _int_list(raw)
    if not values:
        raise ValueError("must name at least one width")
    return values


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError("must be IP addresses or networks (10.0.0.0/8) separated by "
                             "commas") from None
    return tuple(networks)


def _quality_target(raw: str) -> float:
    value = _float(raw)
    if not 0 <= value <= 100:
        raise ValueError("must be a score from 0 (off) to 100")
    return value


def _quality_bounds(raw: str) -> dict[str, tuple[int, int]]:
    bounds: dict[str, tuple[int, int]] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        fmt, _, span = item.partition(":")
        low, _, high = span.partition("-")
        fmt = fmt.strip().lower()
        if fmt not in ("webp", "avif", "jpeg") or not low.strip().isdigit() or (
            not high.strip().isdigit()
        ) or not 1 <= int(low) <= int(high) <= 100:
            raise ValueError(
                "must be format:floor-ceiling items (webp, avif, jpeg; 1 <= floor <= ceiling "
                f"<= 100), not {item!r}")
        bounds[fmt] = (int(low), int(high))
    return bounds


def _word_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in raw.split(",") if part.strip())


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _regex(raw: str) -> str:
    try:
        compiled = re.compile(raw)
    except re.error as exc:
        raise ValueError(f"must be a regular expression ({exc})") from None
    if "code" not in compiled.groupindex:
        raise ValueError("must have a named group (?P<code>...)")
    return raw


def _positive(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def checked(raw: str) -> Any:
        value = parse(raw)
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    return checked


def _not_negative(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def checked(raw: str) -> Any:
        value = parse(raw)
        if value < 0:
            raise ValueError("must be zero or more")
        return value

    return checked


def _url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if value and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


def storage_location(raw: str | None) -> str:
    """Where originals and masters are written: ``postgres`` (unset) or ``s3://bucket/prefix``."""
    value = (raw or "").strip()
    if value in ("", "postgres"):
        return "postgres"
    if not value.startswith("s3://"):
        raise ValueError("must be unset, postgres, or s3://bucket/prefix")
    bucket, _, prefix = value[len("s3://"):].partition("/")
    prefix = prefix.strip("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ValueError("must name a bucket (3 to 63 lower-case letters, digits, '.' or '-'): "
                         "s3://bucket/prefix")
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


def served_url(host: str, port: int) -> str:
    """The URL of ``host:port`` as a browser on this machine reaches it."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - every address: this machine's is one of them
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def setting(env: str, default: str, help: str, parse: Callable[[str], Any] = str) -> Any:
    """Declare one setting: the raw default is parsed like any environment value."""
    return field(metadata={"env": env, "default": default, "help": help, "parse": parse})


DEFAULT_FILENAME_PATTERN = r"^(?P<code>.+?)(?:(?:_|(?<=\d)-)(?P<position>\d{1,3}))?$"
DEFAULT_ALLOWED_SIZES = (
    "48,64,96,100,120,150,160,200,240,300,320,360,400,480,500,600,640,720,750,800,"
    "960,1000,1024,1080,1200,1280,1440,1536,1600,1920,2048"
)


@dataclass(frozen=True)
class Settings:
    # --- service and storage -------------------------------------------------------------
    database_url: str | None = setting(
        "DATABASE_URL", "", "PostgreSQL URL (postgresql://...). Unset: embedded PostgreSQL "
        "(pgserver) in ECOGRAM_DATA_DIR.", _optional_str)
    data_dir: Path = setting(
        "ECOGRAM_DATA_DIR", ".ecogram", "Directory for the embedded database and the generated "
        "secret key.", lambda raw: Path(raw).expanduser())
    redis_url: str | None = setting(
        "REDIS_URL", "", "Redis URL (redis://host:6379/0). Set: rendered variants and login "
        "throttling are shared by every worker through Redis.", _optional_str)
    redis_timeout: float = setting(
        "ECOGRAM_REDIS_TIMEOUT", "0.5", "Longest wait for one Redis command (connecting "
        "included), in seconds. Past it, or on any Redis error, /img renders instead and sign-in "
        "counts failures in PostgreSQL; Redis is then left alone for 5 seconds.",
        _positive(float))
    secret_key: str | None = setting(
        "ECOGRAM_SECRET_KEY", "", "Key that signs tokens and image URLs, at least 32 bytes. "
        "Unset: a random key is generated once and kept in ECOGRAM_DATA_DIR/secret_key.",
        _optional_str)
    public_url: str = setting(
        "ECOGRAM_PUBLIC_URL", "", "Public base URL of the service (or of the CDN in front of "
        "it); image URLs in exports, records, snippets and `sign-url` are built on it. Unset: "
        "the address `ecogram serve` listens on (http://ECOGRAM_HOST:ECOGRAM_PORT, or what "
        "--host and --port say).", _url)
    host: str = setting("ECOGRAM_HOST", "127.0.0.1", "Address `ecogram serve` listens on.",
                        lambda raw: raw.strip())
    port: int = setting("ECOGRAM_PORT", "8080", "Port `ecogram serve` listens on.", _port)
    workers: int = setting(
        "ECOGRAM_WORKERS", "1", "Processes `ecogram serve` starts, sharing the port.",
        _positive(_int))
    header_timeout: float = setting(
        "ECOGRAM_HEADER_TIMEOUT", "10", "Seconds a client has to send a request's headers, "
        "from its first byte (or from connecting); a slower one is cut off (408).",
        _positive(_float))
    log_level: str = setting(
        "ECOGRAM_LOG_LEVEL", "info", "Log level: debug, info, warning or error.",
        _choice("debug", "info", "warning", "error"))
    db_pool_min: int = setting(
        "ECOGRAM_DB_POOL_MIN", "1", "Smallest database pool per worker.", _int)
    db_pool_max: int = setting(
        "ECOGRAM_DB_POOL_MAX", "10", "Largest database pool per worker.", _positive(_int))
    db_timeout: float = setting(
        "ECOGRAM_DB_TIMEOUT", "5", "Longest wait for a database connection (a free pool slot, "
        "or a new connection), in seconds; beyond it the request answers 503 `unavailable`.",
        _positive(_float))
    body_timeout: float = setting(
        "ECOGRAM_BODY_TIMEOUT", "30", "Seconds a request body may send nothing before the "
        "request is answered 408 and its connection closed.", _positive(_float))
    max_form_kb: int = setting(
        "ECOGRAM_MAX_FORM_KB", "64", "Largest page form or JSON request body, in KB (413 "
        "above); only upload routes take larger bodies.", _positive(_int))

    storage_url: str = setting(
        "ECOGRAM_STORAGE_URL", "", "Where originals and masters are written: unset (or "
        "`postgres`) keeps them in PostgreSQL; `s3://bucket/prefix` puts them in an "
        "S3-compatible object store, its endpoint and credentials from `AWS_ENDPOINT_URL`, "
        "`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION` (docs/storage.md).",
        storage_location)
    storage_timeout: float = setting(
        "ECOGRAM_STORAGE_TIMEOUT", "10", "Longest time one object-store call may take, in "
        "seconds; past it, or when the store refuses, the request answers 503 `unavailable`.",
        _positive(_float))
    storage_sweep_interval: int = setting(
        "ECOGRAM_STORAGE_SWEEP_INTERVAL", "3600", "Seconds between two sweeps by `ecogram serve` "
        "of stored objects no record names that are more than a day old (one process sweeps at "
        "a time); 0 turns it off.", _int)

    # --- accounts ---------------------------------------------------------------------------
    registration: str = setting(
        "ECOGRAM_REGISTRATION", "open", "`open`: anyone may register (as viewer; while no "
        "active admin exists, the first account becomes admin). `closed`: only admins create "
        "users (and, on a fresh install where no account but the demo's exists, the first "
        "account registered, who becomes admin).",
        _choice("open", "closed"))
    token_ttl: int = setting(
        "ECOGRAM_TOKEN_TTL", "3600", "Lifetime of an access token, in seconds.", _positive(_int))
    login_max_failures: int = setting(
        "ECOGRAM_LOGIN_MAX_FAILURES", "10", "Failed logins per e-mail or per client address "
        "allowed within the window before 429.", _positive(_int))
    login_window: int = setting(
        "ECOGRAM_LOGIN_WINDOW", "900", "Window for counting failed logins, in seconds.",
        _positive(_int))
    cookie_secure: str = setting(
        "ECOGRAM_COOKIE_SECURE", "auto", "Secure flag of the session cookie: `auto` (when the "
        "request came over HTTPS, X-Forwarded-Proto included), `true` or `false`.",
        _choice("auto", "true", "false"))
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = setting(
        "ECOGRAM_TRUSTED_PROXIES", "", "Addresses or networks (CIDR) of the load balancers "
        "and proxies in front of the service, comma-separated. A request from one of them "
        "counts (sign-in throttling, the audit trail) under the nearest address in "
        "X-Forwarded-For that is not one of them. Unset: the peer's address; X-Forwarded-For "
        "is ignored.", _networks)

    # --- import and quality control -------------------------------------------------------
    max_upload_mb: int = setting(
        "ECOGRAM_MAX_UPLOAD_MB", "25", "Largest accepted image file, in MB (413 above).",
        _positive(_int))
    max_request_mb: int = setting(
        "ECOGRAM_MAX_REQUEST_MB", "2048", "Largest request body (a ZIP upload), in MB.",
        _positive(_int))
    max_pixels: int = setting(
        "ECOGRAM_MAX_PIXELS", "50000000", "Largest accepted image, in pixels (width x height).",
        _positive(_int))
    max_frames: int = setting(
        "ECOGRAM_MAX_FRAMES", "500", "Most frames accepted in an animated image.", _positive(_int))
    min_side: int = setting(
        "ECOGRAM_MIN_SIDE", "500", "Shortest side in pixels below which an image is refused.", _int)
    zoom_side: int = setting(
        "ECOGRAM_ZOOM_SIDE", "1000", "Long side in pixels below which an image gets a warning "
        "(shops offer no zoom).", _int)
    near_duplicate_distance: int = setting(
        "ECOGRAM_NEAR_DUPLICATE_DISTANCE", "6", "Hamming distance between 64-bit perceptual "
        "hashes under which two images of the same code are near-duplicates.", _int)
    filename_pattern: str = setting(
        "ECOGRAM_FILENAME_PATTERN", DEFAULT_FILENAME_PATTERN, "Regular expression on the file "
        "name without extension, with groups `code` and optional `position`, used when no code "
        "is given.", _regex)
    zip_max_members: int = setting(
        "ECOGRAM_ZIP_MAX_MEMBERS", "10000", "Most members read from one ZIP.", _positive(_int))
    zip_max_total_mb: int = setting(
        "ECOGRAM_ZIP_MAX_TOTAL_MB", "4096", "Most bytes inflated from one ZIP, in MB.",
        _positive(_int))
    import_allow_private_urls: bool = setting(
        "ECOGRAM_IMPORT_ALLOW_PRIVATE_URLS", "false", "Allow manifest URLs that resolve to "
        "loopback, private or link-local addresses.", _bool)
    url_timeout: float = setting(
        "ECOGRAM_URL_TIMEOUT", "20", "Total time allowed to fetch one manifest URL, in seconds.",
        _positive(_float))

    import_async_files: int = setting(
        "ECOGRAM_IMPORT_ASYNC_FILES", "500", "`POST /api/v1/imports` with more files than this "
        "runs as a job (202 at once) even without `Prefer: respond-async`: 500 photos take "
        "15-40 s, inside a proxy's usual 60 s read timeout.", _positive(_int))
    import_async_mb: int = setting(
        "ECOGRAM_IMPORT_ASYNC_MB", "256", "`POST /api/v1/imports` with an archive larger than "
        "this, in MB, runs as a job even without `Prefer: respond-async` (about 500 photos of "
        "2 MP).", _positive(_int))
    job_workers: int = setting(
        "ECOGRAM_JOB_WORKERS", "1", "Import jobs each `ecogram serve` process runs at once; 0: "
        "none (leave them to `ecogram worker` processes). `ecogram worker` runs this many too, "
        "at least 1, unless --jobs says otherwise.", _int)
    job_stall_seconds: int = setting(
        "ECOGRAM_JOB_STALL_SECONDS", "30", "Seconds a running job may go without its "
        "heartbeat (sent every half of this) before another worker takes it over: how soon a "
        "job whose worker died is resumed.", _positive(_int))

    # --- export --------------------------------------------------------------------------------
    max_exports: int = setting(
        "ECOGRAM_MAX_EXPORTS", "4", "Exports streamed at once per worker; more answer 429 "
        "`too_many_exports` with Retry-After.", _positive(int))

    # --- delivery ------------------------------------------------------------------------------
    allowed_sizes: tuple[int, ...] | None = setting(
        "ECOGRAM_ALLOWED_SIZES", DEFAULT_ALLOWED_SIZES, "Widths and heights /img serves without "
        "a signature, comma-separated; `*` allows any size up to the original.", _sizes)
    cache_memory_mb: int = setting(
        "ECOGRAM_CACHE_MEMORY_MB", "256", "Rendered variants kept in process memory (LRU), in MB "
        "per worker.", _int)
    redis_prefix: str = setting(
        "ECOGRAM_REDIS_PREFIX", "ecogram", "Prefix of every key this service writes in Redis, "
        "so several deployments (or test runs) can share one Redis.",
        lambda raw: raw.strip() or "ecogram")
    cache_ttl: int = setting(
        "ECOGRAM_CACHE_TTL", "604800", "How long Redis keeps a rendered variant, in seconds.",
        _positive(_int))
    masters_cache_mb: int = setting(
        "ECOGRAM_MASTERS_CACHE_MB", "128", "Decoded-ready source masters kept in process memory, "
        "in MB per worker, so cold sizes of a hot photo skip the database.", _int)
    master_side: int = setting(
        "ECOGRAM_MASTER_SIDE", "2048", "Long side of the normalised master rendered once at "
        "import; /img renders from it (from the original when a larger size is asked).",
        _positive(_int))
    render_threads: int = setting(
        "ECOGRAM_RENDER_THREADS", "2", "Threads that run libvips work, per worker.",
        _positive(_int))
    render_queue: int = setting(
        "ECOGRAM_RENDER_QUEUE", "64", "Renders waiting for a thread before /img answers 503.",
        _positive(_int))
    render_timeout: float = setting(
        "ECOGRAM_RENDER_TIMEOUT", "15", "Longest time one render may take, in seconds.",
        _positive(_float))
    cache_max_age: int = setting(
        "ECOGRAM_CACHE_MAX_AGE", "86400", "Cache-Control max-age of /img answers without a "
        "matching `v`, in seconds.", _int)
    eager_widths: tuple[int, ...] = setting(
        "ECOGRAM_EAGER_WIDTHS", "400,800", "Widths rendered in the background when a photo is "
        "approved.", _int_list)
    eager_formats: tuple[str, ...] = setting(
        "ECOGRAM_EAGER_FORMATS", "avif,webp", "Formats rendered in the background when a photo "
        "is approved.", _word_list)
    quality_target: float = setting(
        "ECOGRAM_QUALITY_TARGET", "70", "SSIMULACRA2 score (0–100) each photo's calibrated "
        "quality must reach against its source at every ECOGRAM_QUALITY_WIDTHS, found per photo "
        "and format at approval and used when a URL has no `q` (docs/delivery.md); 70 is "
        "SSIMULACRA2's \"high quality\": artefacts hard to notice without the original beside "
        "it (bench/README.md). 0 turns calibration off: the fixed defaults apply.",
        _quality_target)
    quality_bounds: dict[str, tuple[int, int]] = setting(
        "ECOGRAM_QUALITY_BOUNDS", "webp:30-90,avif:20-90,jpeg:55-90", "Lowest and highest q "
        "the calibration may choose, per format (`format:floor-ceiling`, comma-separated); "
        "only these formats are calibrated.", _quality_bounds)
    quality_widths: tuple[int, ...] = setting(
        "ECOGRAM_QUALITY_WIDTHS", "400,800", "Output widths (pixels) whose delivered render the "
        "calibration scores against the original at that size; each gets its own q per format, "
        "and a render of another width takes the nearest one's (between two, the higher of "
        "theirs) (docs/delivery.md).", _quality_widths)

    analytics_flush: float = setting(
        "ECOGRAM_ANALYTICS_FLUSH", "10", "Seconds between a worker's writes of its delivery "
        "counts (requests, bytes, hits and renders per photo) to PostgreSQL "
        "([analytics.md](analytics.md)); 0 turns the counting off.", _not_negative(_float))

    # --- sales channels ------------------------------------------------------------------------
    channels: tuple[str, ...] = setting(
        "ECOGRAM_CHANNELS", channel_profiles.DEFAULT_ENABLED, "Sales channels the shop sells on, "
        "comma-separated channel ids (docs/channels.md): their renditions are made eagerly and "
        "they are the readiness board's columns. The default is the Brazilian marketplaces and "
        "Google Shopping; add the shop's own platform (vtex, nuvemshop, shopify, woocommerce, "
        "magento). An unknown id stops the service at start.", _word_list)
    channels_file: Path | None = setting(
        "ECOGRAM_CHANNELS_FILE", "", "A TOML file of channel profiles that adds channels or "
        "overrides fields of the shipped ones (docs/channels.md). An invalid file stops the "
        "service at start.", lambda raw: Path(raw.strip()).expanduser() if raw.strip() else None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``env`` (default: the process environment).

        ``overrides`` win over the environment (the command line's --host, --port...); an unset
        ECOGRAM_PUBLIC_URL follows the host and port in force.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        errors: list[str] = []
        for item in dataclasses.fields(cls):
            meta = item.metadata
            if item.name in overrides:
                values[item.name] = overrides[item.name]
                continue
            raw = env.get(meta["env"], meta["default"])
            try:
                values[item.name] = meta["parse"](raw)
            except ValueError as exc:
                errors.append(f"{meta['env']} {exc} (not {raw!r})")
        if errors:
            raise SettingsError("; ".join(errors))
        if not values["public_url"]:
            values["public_url"] = served_url(values["host"], values["port"])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.secret_key is not None and len(self.secret_key.encode()) < 32:
            raise SettingsError("ECOGRAM_SECRET_KEY must be at least 32 bytes long")
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise SettingsError("DATABASE_URL must be a postgresql:// URL")
        if self.job_workers < 0:
            raise SettingsError("ECOGRAM_JOB_WORKERS must be 0 or more")
        if self.db_pool_min > self.db_pool_max:
            raise SettingsError("ECOGRAM_DB_POOL_MIN must not exceed ECOGRAM_DB_POOL_MAX")
        # Read and checked once, here: a file edited while the service runs changes nothing
        # until the next start (as for every setting), and can never fail a request.
        profiles = self._read_channel_profiles()
        object.__setattr__(self, "_channel_profiles", profiles)
        unknown = [name for name in self.channels if name not in profiles]
        if unknown:
            raise SettingsError(
                f"ECOGRAM_CHANNELS names {unknown[0]!r}, which is not a channel; the channels "
                f"are {', '.join(profiles)}")

    @property
    def channel_profiles(self) -> dict[str, channel_profiles.Profile]:
        """Every channel profile: the shipped ones with ECOGRAM_CHANNELS_FILE merged over them,
        as read when these settings were validated."""
        profiles = self.__dict__.get("_channel_profiles")
        return dict(profiles) if profiles is not None else self._read_channel_profiles()

    def _read_channel_profiles(self) -> dict[str, channel_profiles.Profile]:
        try:
            return channel_profiles.load_profiles(self.channels_file)
        except channel_profiles.ChannelsError as exc:
            raise SettingsError(f"ECOGRAM_CHANNELS_FILE: {exc}") from None

    def replace(self, **changes: Any) -> Settings:
        updated = dataclasses.replace(self, **changes)
        updated.validate()
        return updated

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


SETTINGS_DOC: list[tuple[str, str, str]] = [
    (f.metadata["env"], f.metadata["default"], f.metadata["help"])
    for f in dataclasses.fields(Settings)
]
