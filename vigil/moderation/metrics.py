"""Prometheus metrics of the scoring service (one registry per app, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "vigil_serve_requests", "HTTP requests", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "vigil_serve_request_seconds",
            "Time to answer, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.feature_read = Histogram(
            "vigil_serve_feature_read_seconds",
            "Online feature read (post and author)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "vigil_serve_decisions", "Decisions made", ["decision", "trigger"], registry=r
        )
        self.heavy_calls = Counter(
            "vigil_serve_heavy_model_calls", "Posts scored by the heavy model", registry=r
        )
        self.embedding_cache = Counter(
            "vigil_serve_embedding_cache", "Embedding lookups", ["result"], registry=r
        )
        self.model_info = Gauge(
            "vigil_serve_model_info", "The model serving (value 1)", ["model_id"], registry=r
        )

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
