"""Hook point: what other parts of the service want to hear about after a use case commits.

The delivery side registers callbacks here (eager rendering on approve, dropping an image's
entries from in-process caches on change); the management and review use cases fire them
*after* their transaction has committed, so a callback never sees a write that may still roll
back. One ``Events`` per application, found with ``events.of(app)``::

    events.of(app).on_approved.append(render_eagerly)    # async def render_eagerly(image_id)
    events.of(app).on_changed.append(forget_image)       # async def forget_image(image_id)

``on_approved`` fires for every image that became approved. ``on_changed`` fires when what an
image's address serves may have changed: edit of code/position, replacement of the photo,
un-publication (reject never publishes; delete and purge do un-publish). Cached variants are
keyed by (image id, version) and /img only serves approved live rows, so correctness never
depends on these callbacks; they are for freshness and memory. A failing callback is logged and
never fails the request that fired it; a slow one should start its own task instead of awaiting.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger("ecogram.events")

Callback = Callable[[int], Awaitable[None]]


@dataclass
class Events:
    on_approved: list[Callback] = field(default_factory=list)
    on_changed: list[Callback] = field(default_factory=list)

    async def approved(self, image_ids: Iterable[int]) -> None:
        await _fire("approved", self.on_approved, image_ids)

    async def changed(self, image_ids: Iterable[int]) -> None:
        await _fire("changed", self.on_changed, image_ids)


async def _fire(name: str, callbacks: list[Callback], image_ids: Iterable[int]) -> None:
    if not callbacks:
        return
    for image_id in image_ids:
        for callback in list(callbacks):
            try:
                await callback(image_id)
            except Exception:
                # The write has committed; a hook's failure must not turn it into an error.
                log.exception(json.dumps({"event": "hook_failed", "hook": name,
                                          "image_id": image_id}))


# Keyed weakly by the application object, so an app and its hooks go away together (tests
# create many apps) and no shared module (keys, app) has to know about this one.
_registry: weakref.WeakKeyDictionary[object, Events] = weakref.WeakKeyDictionary()


def of(app: object) -> Events:
    """The Events of this application (created on first use)."""
    events = _registry.get(app)
    if events is None:
        events = _registry[app] = Events()
    return events
