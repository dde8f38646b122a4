"""The hot-path metrics: plain counters on the event loop, exposed through prometheus_client."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ecogram.metrics import LoopCounter, LoopHistogram, Metrics


def _families(registry: CollectorRegistry) -> dict[str, object]:
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_a_loop_counter_is_exposed_as_a_prometheus_counter():
    registry = CollectorRegistry()
    served = LoopCounter("demo_served", "Answers by tier.", ["tier"], registry)
    memory = served.labels("memory")
    memory.inc()
    memory.inc(2)
    served.labels("render").inc()
    family = _families(registry)["demo_served"]
    assert family.type == "counter"
    assert family.documentation == "Answers by tier."
    values = {s.labels["tier"]: s.value for s in family.samples if s.name == "demo_served_total"}
    assert values == {"memory": 3.0, "render": 1.0}
    assert registry.get_sample_value("demo_served_total", {"tier": "memory"}) == 3.0


def test_a_loop_counter_child_is_the_same_object_for_the_same_labels():
    served = LoopCounter("demo_same", "Same child.", ["tier"], CollectorRegistry())
    assert served.labels("memory") is served.labels("memory")


def test_a_loop_counter_refuses_the_wrong_number_of_labels():
    served = LoopCounter("demo_labels", "Labels.", ["tier", "result"], CollectorRegistry())
    with pytest.raises(ValueError):
        served.labels("memory")


def test_a_loop_counter_refuses_a_negative_increment():
    child = LoopCounter("demo_negative", "Negative.", ["x"], CollectorRegistry()).labels("a")
    with pytest.raises(ValueError):
        child.inc(-1)


def test_a_loop_histogram_exposes_cumulative_buckets_count_and_sum():
    registry = CollectorRegistry()
    latency = LoopHistogram("demo_seconds", "Time.", ["route"], (0.01, 0.1, 1.0), registry)
    child = latency.labels("img")
    for seconds in (0.001, 0.01, 0.05, 0.5, 3.0):
        child.observe(seconds)
    family = _families(registry)["demo_seconds"]
    assert family.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name == "demo_seconds_bucket"}
    # A value equal to a bound falls in that bucket (le = less than or equal).
    assert buckets == {"0.01": 2.0, "0.1": 3.0, "1.0": 4.0, "+Inf": 5.0}
    assert registry.get_sample_value("demo_seconds_count", {"route": "img"}) == 5.0
    assert registry.get_sample_value("demo_seconds_sum", {"route": "img"}) == pytest.approx(3.561)


def test_metrics_sample_reads_loop_and_library_metrics_alike():
    metrics = Metrics()
    metrics.img_served.labels("memory").inc()
    metrics.renders.labels("webp", "master").inc()
    assert metrics.sample("ecogram_img_served_total", tier="memory") == 1.0
    assert metrics.sample("ecogram_img_renders_total", format="webp", source="master") == 1.0
    assert metrics.sample("ecogram_img_served_total", tier="redis") == 0.0


def test_request_metrics_count_and_time_each_route():
    metrics = Metrics()
    metrics.observe_request("img", "GET", 200, 0.002)
    metrics.observe_request("img", "GET", 200, 0.004)
    metrics.observe_request("img", "GET", 304, 0.001)
    assert metrics.sample("ecogram_http_requests_total", route="img", method="GET",
                          status="200") == 2.0
    assert metrics.sample("ecogram_http_request_duration_seconds_count", route="img") == 3.0
    assert metrics.sample("ecogram_http_request_duration_seconds_bucket", route="img",
                          le="0.0025") == 2.0
