"""API keys: with keys configured, every /v1 route wants `Authorization: Bearer <key>`."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header

from index.errors import Unauthorized
from server.deps import ServicesDep


def require_api_key(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """Refuse the request unless the API is open or it carries one of the keys."""
    keys = services.api_keys
    if not keys:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("this server needs an API key: send 'Authorization: Bearer <key>'")
    candidate = given.strip().encode()
    # Compare with every key, in constant time, so timing tells nothing about any of them.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode())
    if not matched:
        raise Unauthorized("the API key is not valid for this server")


ApiKeyRequired = Depends(require_api_key)
