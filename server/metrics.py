"""Prometheus metrics: requests by route, ingestion counters, and the size of each collection."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.documents import IngestReport

if TYPE_CHECKING:
    from fastapi import FastAPI


class Metrics:
    """One registry per app, so several apps in one process (tests) do not collide."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "citeqa_requests_total", "HTTP requests by method, route and status.",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "citeqa_request_seconds", "Time to answer HTTP requests, by method and route.",
            ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.ingested = Counter(
            "citeqa_ingested_documents_total",
            "Documents sent for ingestion over the API, by outcome.", ["outcome"],
            registry=self.registry)
        self.index_size = _IndexSize(app)
        self.registry.register(self.index_size)

    def exposition(self) -> bytes:
        """Everything in Prometheus text format; with several workers, summed over them all."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(self.registry)
        # Each worker writes its counters to files in that folder; read them all.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self.index_size)
        return generate_latest(registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def count_ingest(self, report: IngestReport) -> None:
        """Count what one ingestion did."""
        for outcome, items in (("added", report.added), ("updated", report.updated),
                               ("unchanged", report.unchanged), ("skipped", report.skipped)):
            if items:
                self.ingested.labels(outcome).inc(len(items))


class _IndexSize(Collector):
    """Documents and chunks per collection, read from the catalog at scrape time."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The current sizes (nothing before the application is built)."""
        documents = GaugeMetricFamily("citeqa_documents", "Documents per collection.",
                                      labels=["collection"])
        chunks = GaugeMetricFamily("citeqa_chunks", "Chunks per collection.",
                                   labels=["collection"])
        citeqa = getattr(self.app.state, "citeqa", None)
        if citeqa is not None:
            for size in citeqa.store.sizes():
                documents.add_metric([size.name], size.documents)
                chunks.add_metric([size.name], size.chunks)
        yield documents
        yield chunks
