"""The base of every error: each failure a user can cause or fix is a `CiteqaError`.

Each error carries an HTTP status and a machine-readable code, so the API maps them in one
exception handler and the CLI prints them in one place. The errors every layer raises are
here; an error only one layer raises lives in that layer (`index.errors.UnreadableFile`,
`qa.generate.LLMUnavailable`, `server.security.Unauthorized`).
"""

from __future__ import annotations


class CiteqaError(Exception):
    """Base error: a message for people, a `code` for programs, an HTTP `status`."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class InvalidInput(CiteqaError):
    """The request or its arguments are wrong; the message says how to fix them."""

    status = 400
    code = "invalid_input"


class Conflict(CiteqaError):
    """The thing to create exists already."""

    status = 409
    code = "conflict"


class NotFound(CiteqaError):
    """An unknown document or collection."""

    status = 404
    code = "not_found"


class TooLarge(CiteqaError):
    """An upload or question over the configured limit."""

    status = 413
    code = "too_large"



class ConfigurationError(CiteqaError):
    """Settings that cannot work together, such as a model that differs from the collection's."""

    status = 500
    code = "configuration_error"
