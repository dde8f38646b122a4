"""libvips set-up for a server that decodes files from strangers.

``configure`` is called once per process (by the app factory, the CLI and the tests); calling it
again only updates the thread count. It keeps libvips' operation cache off (we decode each
upload once, and a cache of decoded images is memory an attacker can fill), bounds libvips'
worker threads, and blocks every loader except the formats we accept, so a file that sniffs as
SVG, PDF, MATLAB or ImageMagick-land never reaches a parser.
"""

from __future__ import annotations

import threading

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
