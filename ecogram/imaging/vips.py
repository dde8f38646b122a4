"""libvips set-up for a server that decodes files from strangers.

``configure`` is called once per process (by the app factory, the CLI and the tests); calling it
again only updates the thread count. It keeps libvips' operation cache off (we decode each
upload once, and a cache of decoded images is memory an attacker can fill), bounds libvips'
worker threads, and blocks every loader except the formats we accept, so a file that sniffs as
SVG, PDF, MATLAB or ImageMagick-land never reaches a parser.

libvips' messages reach Python's logging through pyvips' logger ``pyvips``; importing this module
puts them at the right levels and in the service's JSON log shape (see ``LibvipsLogFilter``).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import ClassVar

import pyvips

# The loader classes (and their file/buffer/source subclasses) we accept. Uhdr is UltraHDR JPEG:
# libvips 8.18 routes JPEGs with a gain map to it, so blocking it would refuse modern phone photos.
ALLOWED_LOADERS = (
    "VipsForeignLoadJpeg",
    "VipsForeignLoadUhdr",
    "VipsForeignLoadPng",
    "VipsForeignLoadWebp",
    "VipsForeignLoadHeif",
    "VipsForeignLoadNsgif",
    "VipsForeignLoadTiff",
)

_lock = threading.Lock()
_configured = False


class LibvipsLogFilter(logging.Filter):
    """libvips' messages at the right level, as one JSON line each.

    libvips narrates its work through GLib's ``g_info`` ("threadpool completed with 1 workers",
    "reducev: 13 point mask"... hundreds per import) and pyvips logs those at INFO, so at the
    default log level they flooded stderr, the import's progress bar and the server's one JSON
    line per request. Here that chatter is DEBUG (shown only at ``ECOGRAM_LOG_LEVEL=debug``).
    libvips' warnings are about the image at hand ("error in tile 0 x 488" for a truncated
    JPEG), which the import already refuses and reports with its reason: INFO, a fact in the
    server's log. Errors keep their level.
    """

    LEVELS: ClassVar[dict[int, int]] = {logging.INFO: logging.DEBUG, logging.WARNING: logging.INFO}

    def filter(self, record: logging.LogRecord) -> bool:
        level = self.LEVELS.get(record.levelno, record.levelno)
        if level != record.levelno:
            record.levelno, record.levelname = level, logging.getLevelName(level)
            # The logger's level was checked at the old level: check again at the new one.
            if not logging.getLogger(record.name).isEnabledFor(level):
                return False
        message = record.getMessage()
        if message.startswith("VIPS: "):  # pyvips' prefix: the GLib domain
            message = message[len("VIPS: "):]
        record.msg, record.args = json.dumps({"event": "libvips", "message": message}), ()
        return True


_log_filter = LibvipsLogFilter()
logging.getLogger("pyvips").addFilter(_log_filter)  # once: addFilter ignores a second add


def configure(max_threads: int = 1) -> None:
    """Make libvips safe and predictable for this process. Idempotent.

    ``max_threads`` is libvips' threads per pipeline. Our callers run several pipelines at once
    in a thread pool (ECOGRAM_RENDER_THREADS), and one libvips thread per pool thread measured
    fastest, hence the default: every caller should keep it, or one caller's choice (say, an
    import) silently changes every render after it.
    """
    global _configured
    with _lock:
        # Threads per pipeline: the caller's thread pool already runs several renders at once.
        pyvips.concurrency_set(max(1, max_threads))
        if _configured:
            return
        pyvips.cache_set_max(0)
        pyvips.cache_set_max_mem(0)
        pyvips.cache_set_max_files(0)
        # Loaders flagged untrusted (ImageMagick, PDF, MATLAB, FITS...) go first; then every
        # loader, and back on only the ones we accept. Later calls override earlier ones for the
        # named class and its subclasses.
        pyvips.block_untrusted_set(True)
        pyvips.operation_block_set("VipsForeignLoad", True)
        for name in ALLOWED_LOADERS:
            pyvips.operation_block_set(name, False)
        _configured = True


def is_configured() -> bool:
    return _configured
