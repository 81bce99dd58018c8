"""What `citeqa serve` allows one connection: a request head of bounded size that must arrive
in bounded time, and a short keep-alive. A stalled body is the app's to answer (408, in
`server.middleware.BodyGuard`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("citeqa.access")

# Seconds from a connection's first byte (or from its opening) until its request line and
# headers are complete. nginx allows 60 s; browsers and SDKs send a head in one packet.
HEAD_SECONDS = 10.0
# Bytes of request line and headers; a browser's head with its cookies is a few KB.
MAX_HEAD_BYTES = 16 * 1024
# Seconds a kept-alive connection may sit idle after a response.
KEEP_ALIVE_SECONDS = 5

_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
              b"connection: close\r\ncontent-length: 44\r\n\r\n"
              b"the request line and headers took too long\r\n")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request head.

    uvicorn times out neither the request line nor the headers, so a client that trickles a
    header byte now and then holds its connection, and a worker's file descriptor, forever.
    h11 also bounds the head's size (`h11_max_incomplete_event_size`), which httptools,
    uvicorn's pick when it is installed, does not.
    """

    head_seconds: float = HEAD_SECONDS
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's head."""
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        """Feed h11; keep the clock running only while a head is incomplete."""
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            # Part of a head is waiting in h11's buffer (or a pipelined one after a response).
            self._arm_head_deadline()
        else:
            self._disarm_head_deadline()

    def on_response_complete(self) -> None:
        """The next request's head gets its own clock, started by its first byte; until then
        the keep-alive timeout applies."""
        super().on_response_complete()
        self._disarm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock with the connection."""
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.head_seconds, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        began, _ = self.conn.trailing_data  # what h11 holds of a head not yet complete
        if began:
            # A client that began a request is told why it ends; a silent connection (a
            # browser's preconnect) is just closed, as a browser expects.
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
            log.info("%s request head not complete after %g s: closed", client,
                     self.head_seconds)
            self.transport.write(_TIMED_OUT)
        self.transport.close()


def connection_limits() -> dict[str, Any]:
    """uvicorn options that bound each connection's head, in size and time, and its idle
    keep-alive."""
    return {"http": GuardedH11Protocol, "timeout_keep_alive": KEEP_ALIVE_SECONDS,
            "h11_max_incomplete_event_size": MAX_HEAD_BYTES}
