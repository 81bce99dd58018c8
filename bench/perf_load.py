"""HTTP clients for the performance benchmarks: one-at-a-time latency and concurrent load.

Both send `POST /v1/ask {"question": ...}` (extractive mode) to a server on this machine.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx

REQUEST_TIMEOUT = 120.0
STAGES = ("embed", "retrieve", "rerank", "answer", "total")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(ms: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p95, p99, mean and max of latencies in milliseconds."""
    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {"n": len(ms), "p50_ms": r(percentile(ms, 50)), "p95_ms": r(percentile(ms, 95)),
            "p99_ms": r(percentile(ms, 99)), "mean_ms": r(statistics.fmean(ms) if ms else None),
            "max_ms": r(max(ms) if ms else None)}


def _server_stage_medians(timings: list[dict[str, float]]) -> dict[str, float | None]:
    return {stage: (round(statistics.median(t[stage] for t in timings if stage in t), 2)
                    if any(stage in t for t in timings) else None) for stage in STAGES}


def warm_up(url: str, questions: Sequence[str]) -> None:
    """Ask each question once, ignoring the results (model, caches and indexes get loaded)."""
    # A new connection per question: with several workers each connection goes to one of
    # them, so every worker gets some and loads its indexes before anything is measured.
    for question in questions:
        httpx.post(f"{url}/v1/ask", json={"question": question}, timeout=REQUEST_TIMEOUT)


def sequential(url: str, questions: Sequence[str]) -> dict[str, Any]:
    """Ask the questions one after another over one keep-alive connection; latency stats."""
    latencies: list[float] = []
    timings: list[dict[str, float]] = []
    errors: Counter[str] = Counter()
    abstained = 0
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        for question in questions:
            started = time.perf_counter()
            try:
                response = client.post("/v1/ask", json={"question": question})
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                errors[f"HTTP {response.status_code}"] += 1
                continue
            latencies.append(elapsed)
            body = response.json()
            timings.append(body.get("timings_ms", {}))
            abstained += bool(body.get("abstained"))
    return {**latency_summary(latencies), "errors": sum(errors.values()),
            "error_kinds": dict(errors), "abstained": abstained,
            "server_stage_p50_ms": _server_stage_medians(timings)}


async def _client_loop(client: httpx.AsyncClient, questions: Sequence[str], turn: list[int],
                       deadline: float, latencies: list[float], errors: Counter[str]) -> None:
    while time.perf_counter() < deadline:
        question = questions[turn[0] % len(questions)]
        turn[0] += 1
        started = time.perf_counter()
        try:
            response = await client.post("/v1/ask", json={"question": question})
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
            continue
        if response.status_code == 200:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            errors[f"HTTP {response.status_code}"] += 1


async def _load(url: str, questions: Sequence[str], clients: int, seconds: float
                ) -> dict[str, Any]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    turn = [0]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_client_loop(client, questions, turn, deadline, latencies, errors)
                               for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "clients": clients, "duration_s": seconds, "elapsed_s": round(elapsed, 2),
        "requests": len(latencies) + sum(errors.values()), "ok": len(latencies),
        "errors": sum(errors.values()), "error_kinds": dict(errors),
        "throughput_rps": round(len(latencies) / elapsed, 2),
        **latency_summary(latencies),
    }


def load(url: str, questions: Sequence[str], *, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` concurrent clients asking in a loop for `seconds`; throughput and latency.

    A client starts no request after the deadline; requests under way then are waited for, so
    `elapsed_s` can exceed `duration_s` by up to one request's latency. An error is any
    exception or any status other than 200.
    """
    return asyncio.run(_load(url, questions, clients, seconds))
