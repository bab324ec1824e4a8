"""Errors raised for non-2xx answers, carrying the API's problem body (`{"_tag": ..., "message": ...}`)."""
from __future__ import annotations

from typing import Any

from .models import FieldIssue


class PawsApiError(Exception):
    """A non-2xx answer. `status` is the HTTP status, `tag` the problem's `_tag`, `problem` its whole body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.problem: dict[str, Any] | None = (
            body if isinstance(body, dict) and isinstance(body.get("_tag"), str) else None
        )
        self.tag: str = self.problem["_tag"] if self.problem else "HttpError"
        text = f": {body}" if isinstance(body, str) and body else ""
        self.message: str = str(self.problem.get("message")) if self.problem else f"HTTP {status}{text}"
        super().__init__(self.message)


class InvalidRequestError(PawsApiError):
    """400: the request did not match the API; `issues` names each bad field."""

    @property
    def issues(self) -> list[FieldIssue]:
        return [FieldIssue.from_dict(i) for i in (self.problem or {}).get("issues", [])]


class UnauthorizedError(PawsApiError):
    """401: the API key is missing, unknown or revoked."""


class ForbiddenError(PawsApiError):
    """403: the API key lacks the scope this call needs."""


class NotFoundError(PawsApiError):
    """404: no such session, snapshot, key or token."""


class ConflictError(PawsApiError):
    """409: the state forbids it (cancelling a finished session, an idempotency key reused, ...)."""


_BY_STATUS: dict[int, type[PawsApiError]] = {
    400: InvalidRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
}


def api_error(status: int, body: Any) -> PawsApiError:
    return _BY_STATUS.get(status, PawsApiError)(status, body)
