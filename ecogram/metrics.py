"""Prometheus metrics, one registry per application (tests build many apps in one process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.requests = Counter(
            "ecogram_http_requests_total",
            "HTTP requests answered, by route name, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ecogram_http_request_duration_seconds",
            "Time to answer an HTTP request, by route name.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        # Delivery (/img): where answers came from, what renders cost, and what was refused.
        self.cache_lookups = Counter(
            "ecogram_img_cache_lookups_total",
            "Variant cache lookups by tier (memory, redis) and result (hit, miss, error).",
            ["tier", "result"],
            registry=self.registry,
        )
        self.img_served = Counter(
            "ecogram_img_served_total",
            "/img answers by where the bytes came from: memory, redis, render, or not_modified.",
            ["tier"],
            registry=self.registry,
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
        self.resolutions = Counter(
            "ecogram_img_resolution_lookups_total",
            "code/position resolutions by result: hit (in-process cache) or miss (database).",
            ["result"],
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
        """Count and time one request. The labelled children are kept: ``labels()`` takes a
        lock and builds a key each time, a cost every /img hit would pay twice."""
        children = self._request_children.get((route, method, status))
        if children is None:
            children = self._request_children[(route, method, status)] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
