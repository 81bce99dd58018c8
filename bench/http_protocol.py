"""What h11 with a head deadline (`server.connections.GuardedH11Protocol`, what `citeqa serve`
uses) costs per request against httptools (uvicorn's pick when it is installed).

    python -m bench.http_protocol

One small ASGI app answering a 2 KB JSON body, one kept-alive httpx client, 1,000 POSTs per
protocol over loopback; prints the median of the last 900.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

import httpx
import uvicorn

from server.connections import GuardedH11Protocol

REQUESTS = 1000
WARM_UP = 100
ANSWER = b'{"answer": "' + b"x" * 2000 + b'"}'


async def _answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": ANSWER})


def median_ms(protocol: str | type[asyncio.Protocol], port: int) -> float:
    """Median milliseconds of one POST through a uvicorn using `protocol`."""
    server = uvicorn.Server(uvicorn.Config(_answer, host="127.0.0.1", port=port,
                                           log_level="warning", http=protocol))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    timings = []
    try:
        with httpx.Client() as client:
            for _ in range(REQUESTS):
                started = time.perf_counter()
                client.post(f"http://127.0.0.1:{port}/v1/ask",
                            json={"question": "Who co-leads the lab?"})
                timings.append(time.perf_counter() - started)
    finally:
        server.should_exit = True
        thread.join()
    return statistics.median(timings[WARM_UP:]) * 1000


def main() -> None:
    """Print each protocol's median."""
    for offset, protocol in enumerate(("httptools", GuardedH11Protocol)):
        name = protocol if isinstance(protocol, str) else protocol.__name__
        print(f"{name:20} p50 {median_ms(protocol, 8790 + offset):.3f} ms")


if __name__ == "__main__":
    main()
