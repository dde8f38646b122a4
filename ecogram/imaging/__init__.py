"""libvips layer: set-up and limits, probe (inspect + quality checks), options, pipeline, hashes.

Pure, synchronous functions on bytes: callers run them in a thread pool (libvips releases the
GIL). Nothing here knows about HTTP, settings or the database; limits are passed in.

Import from the modules (``from ecogram.imaging.probe import probe, QCLimits``): re-exporting
the ``probe`` function here would shadow the ``probe`` module.
"""
