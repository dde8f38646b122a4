"""Prometheus metrics, one registry per application (tests build many apps in one process).

Most metrics are prometheus_client's own. The few bumped on every request — the request count
and latency, and the /img hit counters — are ``LoopCounter``/``LoopHistogram``: plain integers
bumped on the event loop's thread and turned into Prometheus families only when /metrics is
scraped. prometheus_client takes a lock on every ``inc``; a warm /img hit did five of them,
about a tenth of its whole cost (bench/README.md, "Delivery").
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "LoopCounter", "LoopHistogram", "Metrics"]

REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _Labelled(Collector):
    """A family of children by label values, registered as a collector of ``registry``.

    Only the event loop's thread may change a child: there is no lock, which is the point.
    Scrapes also run on the loop, so they never see half an update.
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], object] = {}
        registry.register(self)

    def _child(self, values: tuple[str, ...], make):
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            child = self._children[values] = make()
        return child


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class LoopCounter(_Labelled):
    """A labelled counter for the hot path. Keep the child: ``labels(...).inc()`` once per
    request still pays a dict lookup, ``child.inc()`` does not."""

    def labels(self, *values: str) -> _Count:
        return self._child(values, _Count)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._children.items():
            family.add_metric(values, child.value)
        yield family


class _Distribution:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le).
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value


class LoopHistogram(_Labelled):
    """A labelled histogram for the hot path (see LoopCounter)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self.bounds = tuple(sorted(float(b) for b in buckets))
        super().__init__(name, documentation, labelnames, registry)

    def labels(self, *values: str) -> _Distribution:
        return self._child(values, lambda: _Distribution(self.bounds))

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._children.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, self.bounds), "+Inf"), child.counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric(list(values), buckets, child.total)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_children: dict[tuple[str, str, int], tuple[_Count, _Distribution]] = {}
        self.requests = LoopCounter(
            "ecogram_http_requests",
            "HTTP requests answered, by route name, method and status.",
            ["route", "method", "status"],
            self.registry,
        )
        self.latency = LoopHistogram(
            "ecogram_http_request_duration_seconds",
            "Time to answer an HTTP request, by route name.",
            ["route"],
            REQUEST_BUCKETS,
            self.registry,
        )
        # Delivery (/img): where answers came from, what renders cost, and what was refused.
        self.cache_lookups = LoopCounter(
            "ecogram_img_cache_lookups",
            "Variant cache lookups by tier (memory, redis) and result (hit, miss, error).",
            ["tier", "result"],
            self.registry,
        )
        self.img_served = LoopCounter(
            "ecogram_img_served",
            "/img answers by where the bytes came from: memory, redis, render, or not_modified.",
            ["tier"],
            self.registry,
        )
        self.resolutions = LoopCounter(
            "ecogram_img_resolution_lookups",
            "code/position resolutions by result: hit (in-process cache) or miss (database).",
            ["result"],
            self.registry,
        )
        self.renders = Counter(
            "ecogram_img_renders_total",
            "Variants rendered, by output format and source (master or original).",
            ["format", "source"],
            registry=self.registry,
        )
        self.render_seconds = Histogram(
            "ecogram_img_render_seconds",
            "Time to render one variant in the libvips pool (queue wait excluded), by format.",
            ["format"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.render_queue = Gauge(
            "ecogram_img_render_queue_depth",
            "Renders submitted to the libvips pool and not finished (running or waiting).",
            registry=self.registry,
        )
        self.render_rejections = Counter(
            "ecogram_img_render_rejections_total",
            "Renders refused with 503, by reason (queue_full, timeout).",
            ["reason"],
            registry=self.registry,
        )
        self.masters_cache = Counter(
            "ecogram_img_masters_cache_lookups_total",
            "Source (master or original) lookups in the in-process masters cache, by result.",
            ["result"],
            registry=self.registry,
        )
        self.eager_renders = Counter(
            "ecogram_img_eager_total",
            "Preset variants handled after an approval, by outcome (rendered, cached, skipped, "
            "failed).",
            ["outcome"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count and time one request (the children are kept per route, method and status)."""
        children = self._request_children.get((route, method, status))
        if children is None:
            children = self._request_children[(route, method, status)] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def sample(self, name: str, **labels: str) -> float:
        """One sample's current value (0.0 when the labels were never used): for tests and
        the benchmark, reading loop and library metrics the same way."""
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def render(self) -> bytes:
        return generate_latest(self.registry)
