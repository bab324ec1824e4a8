"""paws: the paws control API from Python (models and operations generated from spec/openapi.json)."""
from ._client import AsyncPawsClient, PawsClient
from ._events import LogEvent
from ._transport import retry_after_seconds
from .errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    PawsApiError,
    UnauthorizedError,
)
from . import models as _models
from .models import *  # noqa: F403

__all__ = [
    "AsyncPawsClient",
    "ConflictError",
    "ForbiddenError",
    "InvalidRequestError",
    "LogEvent",
    "NotFoundError",
    "PawsApiError",
    "PawsClient",
    "UnauthorizedError",
    "retry_after_seconds",
    *_models.__all__,
]
