"""PawsClient and AsyncPawsClient: the generated operations plus waiting, paging and log streaming."""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator, Iterator

import httpx

from . import _operations as ops
from ._events import TERMINAL, LogEvent, afollow, follow
from ._transport import Settings, body_of
from .errors import api_error
from .models import Session, SessionPage, SessionStatus


def _events_request(settings: Settings, session_id: str, last: str | None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {settings.api_key}", "accept": "text/event-stream"}
    if last is not None:
        headers["last-event-id"] = last
    return {"method": "GET", "url": f"{settings.base_url}/v1/sessions/{session_id}/events", "headers": headers}


class Sessions(ops.SessionsOperations):
    def list(self, *, status: SessionStatus | None = None, limit: int | str | None = None,
             cursor: str | None = None, daemon: str | None = None, node: str | None = None) -> SessionPage:
        """One page of sessions (optionally one daemon's or node's), newest first; pass `next_cursor` back as `cursor`."""
        return super().list(status=status, limit=None if limit is None else str(limit), cursor=cursor, daemon=daemon,
                            node=node)

    def list_all(self, *, status: SessionStatus | None = None, limit: int | None = None) -> Iterator[Session]:
        """Every session (optionally with `status`), following the cursor page by page."""
        cursor: str | None = None
        while True:
            page = self.list(status=status, limit=limit, cursor=cursor)
            yield from page.sessions
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def wait(self, session_id: str, *, interval: float = 0.5, timeout: float | None = None) -> Session:
        """Polls until the session reaches a terminal status and returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            session = self.get(session_id)
            if session.status in TERMINAL:
                return session
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"session {session_id} still {session.status} after {timeout} s")
            time.sleep(interval)

    def logs(self, session_id: str, *, last_event_id: str | None = None, max_reconnects: int = 10) -> Iterator[LogEvent]:
        """The session's events as they happen, to its end; a dropped stream resumes with Last-Event-ID."""

        @contextlib.contextmanager
        def open_stream(last: str | None) -> Iterator[httpx.Response]:
            with self._http.stream(**_events_request(self._settings, session_id, last)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise api_error(response.status_code, body_of(response))
                yield response

        return follow(open_stream, last_event_id, max_reconnects)


class AsyncSessions(ops.AsyncSessionsOperations):
    async def list(self, *, status: SessionStatus | None = None, limit: int | str | None = None,
                   cursor: str | None = None, daemon: str | None = None, node: str | None = None) -> SessionPage:
        return await super().list(status=status, limit=None if limit is None else str(limit), cursor=cursor,
                                  daemon=daemon, node=node)

    async def list_all(self, *, status: SessionStatus | None = None, limit: int | None = None) -> AsyncIterator[Session]:
        cursor: str | None = None
        while True:
            page = await self.list(status=status, limit=limit, cursor=cursor)
            for session in page.sessions:
                yield session
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def wait(self, session_id: str, *, interval: float = 0.5, timeout: float | None = None) -> Session:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            session = await self.get(session_id)
            if session.status in TERMINAL:
                return session
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"session {session_id} still {session.status} after {timeout} s")
            await asyncio.sleep(interval)

    def logs(self, session_id: str, *, last_event_id: str | None = None,
             max_reconnects: int = 10) -> AsyncIterator[LogEvent]:
        @contextlib.asynccontextmanager
        async def open_stream(last: str | None) -> AsyncIterator[httpx.Response]:
            async with self._http.stream(**_events_request(self._settings, session_id, last)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise api_error(response.status_code, body_of(response))
                yield response

        return afollow(open_stream, last_event_id, max_reconnects)


class PawsClient:
    """The paws control API over a synchronous httpx client.

    `PawsClient(base_url, api_key)`; then `client.sessions`, `client.snapshots`, `client.daemons`, `client.nodes`,
    `client.keys`,
    `client.node_tokens`, `client.metrics`, `client.health`. 429 and 503 answers are retried (`retries`), after
    Retry-After when sent. Use as a context manager, or call `close()`.
    """

    def __init__(self, base_url: str, api_key: str, *, retries: int = 4, backoff: float = 0.25,
                 max_wait: float = 30.0, timeout: float = 30.0, http: httpx.Client | None = None) -> None:
        settings = Settings(base_url, api_key, retries, backoff, max_wait)
        # Reads on the event stream wait as long as a session is quiet; connects and writes still time out.
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout, read=None))
        self.sessions = Sessions(settings, self._http)
        self.snapshots = ops.SnapshotsOperations(settings, self._http)
        self.daemons = ops.DaemonsOperations(settings, self._http)
        self.nodes = ops.NodesOperations(settings, self._http)
        self.node_tokens = ops.NodeTokensOperations(settings, self._http)
        self.keys = ops.KeysOperations(settings, self._http)
        self.metrics = ops.MetricsOperations(settings, self._http)
        self.health = ops.HealthOperations(settings, self._http)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PawsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPawsClient:
    """The same API over `httpx.AsyncClient`: every call is awaited, `logs` is an async iterator."""

    def __init__(self, base_url: str, api_key: str, *, retries: int = 4, backoff: float = 0.25,
                 max_wait: float = 30.0, timeout: float = 30.0, http: httpx.AsyncClient | None = None) -> None:
        settings = Settings(base_url, api_key, retries, backoff, max_wait)
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout, read=None))
        self.sessions = AsyncSessions(settings, self._http)
        self.snapshots = ops.AsyncSnapshotsOperations(settings, self._http)
        self.daemons = ops.AsyncDaemonsOperations(settings, self._http)
        self.nodes = ops.AsyncNodesOperations(settings, self._http)
        self.node_tokens = ops.AsyncNodeTokensOperations(settings, self._http)
        self.keys = ops.AsyncKeysOperations(settings, self._http)
        self.metrics = ops.AsyncMetricsOperations(settings, self._http)
        self.health = ops.AsyncHealthOperations(settings, self._http)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncPawsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
