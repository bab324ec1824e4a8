"""HTTP for the generated operations: auth, JSON, typed errors, and retries of 429/503 honouring Retry-After."""
from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx

from ._model import to_json
from .errors import api_error

RETRYABLE = (429, 503)


def retry_after_seconds(header: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if header is None or not header.strip():
        return None
    if header.strip().isdigit():
        return float(header.strip())
    try:
        at = email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, at - (time.time() if now is None else now))


class Settings:
    def __init__(self, base_url: str, api_key: str, retries: int, backoff: float, max_wait: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait

    def wait(self, response: httpx.Response, attempt: int) -> float:
        told = retry_after_seconds(response.headers.get("retry-after"))
        return min(self.max_wait, told if told is not None else self.backoff * 2.0**attempt * (0.5 + random.random() / 2))

    def build(self, method: str, template: str, path: dict[str, Any], query: dict[str, Any],
              headers: dict[str, Any], body: Any) -> dict[str, Any]:
        url = self.base_url + template.format(**{k: quote(str(v), safe="") for k, v in path.items()})
        sent = {k: str(v) for k, v in headers.items() if v is not None}
        # A create that declares an idempotency key always sends one, so a retried create never makes two.
        if "idempotency-key" in headers and headers["idempotency-key"] is None:
            sent["idempotency-key"] = str(uuid.uuid4())
        sent["authorization"] = f"Bearer {self.api_key}"
        request: dict[str, Any] = {
            "method": method,
            "url": url,
            "params": {k: str(v) for k, v in query.items() if v is not None},
            "headers": sent,
        }
        if body is not None:
            request["content"] = json.dumps(to_json(body)).encode()
            sent["content-type"] = "application/json"
        return request


def result(response: httpx.Response, expect: str | None) -> Any:
    if response.status_code >= 400:
        raise api_error(response.status_code, body_of(response))
    if expect is None:
        return None
    return response.json() if expect == "application/json" else response.text


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class SyncOperations:
    def __init__(self, settings: Settings, http: httpx.Client) -> None:
        self._settings = settings
        self._http = http

    def _call(self, method: str, template: str, *, path: dict[str, Any], query: dict[str, Any],
              headers: dict[str, Any], body: Any, expect: str | None) -> Any:
        request = self._settings.build(method, template, path, query, headers, body)
        for attempt in range(self._settings.retries + 1):
            response = self._http.request(**request)
            if response.status_code not in RETRYABLE or attempt == self._settings.retries:
                break
            time.sleep(self._settings.wait(response, attempt))
        return result(response, expect)


class AsyncOperations:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    async def _call(self, method: str, template: str, *, path: dict[str, Any], query: dict[str, Any],
                    headers: dict[str, Any], body: Any, expect: str | None) -> Any:
        request = self._settings.build(method, template, path, query, headers, body)
        for attempt in range(self._settings.retries + 1):
            response = await self._http.request(**request)
            if response.status_code not in RETRYABLE or attempt == self._settings.retries:
                break
            await asyncio.sleep(self._settings.wait(response, attempt))
        return result(response, expect)
