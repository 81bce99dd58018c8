"""API keys, and who may reach the server: with keys configured, every /v1 route, /metrics
and the API docs want `Authorization: Bearer <key>`; a server beyond loopback needs keys or
an explicit opt-in."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, Header, Request

from core.errors import CiteqaError, ConfigurationError
from server.options import ServerOptions

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


class Unauthorized(CiteqaError):
    """A missing or wrong API key."""

    status = 401
    code = "invalid_api_key"


def key_refusal(keys: list[str], authorization: str | None) -> str | None:
    """Why a request with this `Authorization` header is refused, or None if it may pass."""
    if not keys:
        return None
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return "this server needs an API key: send 'Authorization: Bearer <key>'"
    candidate = given.strip().encode()
    # Compare with every key, in constant time, so timing tells nothing about any of them.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode())
    return None if matched else "the API key is not valid for this server"


def require_api_key(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """Refuse the request unless the API is open or it carries one of the keys."""
    refusal = key_refusal(getattr(request.app.state, "api_keys", None) or [], authorization)
    if refusal is not None:
        raise Unauthorized(refusal)


ApiKeyRequired = Depends(require_api_key)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1), bracketed or not."""
    name = host.strip().lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        # Any other name may resolve anywhere: treat it as reachable from outside.
        return False


def loopback_hosts(bind_host: str) -> str:
    """The default CITEQA_ALLOWED_HOSTS of a server bound to loopback address `bind_host`."""
    name = bind_host.strip().lower()
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"  # a bare IPv6 address, written as it appears in a Host header
    return ",".join(dict.fromkeys((*LOOPBACK_NAMES, name)))


def refuse_open_server(host: str, options: ServerOptions) -> None:
    """Raise unless serving on `host` is safe: loopback, keys configured, or opted in."""
    if is_loopback(host) or options.allow_open or options.api_keys:
        return
    raise ConfigurationError(
        f"refusing to serve on {host} without API keys: anyone who can reach it could read, "
        "add and delete documents. Set CITEQA_API_KEYS (or CITEQA_API_KEYS_FILE), serve on "
        "127.0.0.1, or pass --allow-open (CITEQA_ALLOW_OPEN=true) if an open server is what "
        "you mean", code="open_server")
