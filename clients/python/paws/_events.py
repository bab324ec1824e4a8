"""A session's Server-Sent Events, followed to its end and resumed with Last-Event-ID after a drop."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterable, Iterator

import httpx

from .errors import PawsApiError

TERMINAL = frozenset({"completed", "failed", "timeout", "cancelled"})


@dataclass(frozen=True)
class LogEvent:
    """One event: `event["_tag"]` is `status`, `output`, `audit` or `result`; `id` resumes after it."""

    id: str | None
    event: dict[str, Any]

    @property
    def tag(self) -> str:
        return str(self.event["_tag"])

    @property
    def ends_session(self) -> bool:
        return self.tag == "status" and self.event.get("status") in TERMINAL


class Frames:
    """Accumulates SSE lines into (id, data) frames; a blank line ends a frame."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.data: list[str] = []

    def feed(self, line: str) -> LogEvent | None:
        line = line.rstrip("\r\n")
        if line == "":
            if not self.data:
                return None
            event = LogEvent(self.id, json.loads("\n".join(self.data)))
            self.data = []
            return event
        if line.startswith("data:"):
            self.data.append(line[5:].removeprefix(" "))
        elif line.startswith("id:"):
            self.id = line[3:].strip()
        return None


def _lines(chunks: Iterable[str]) -> Iterator[str]:
    # httpx's line iterators differ between versions in keeping blank lines; split text ourselves.
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            yield line


def _retryable(error: Exception) -> bool:
    return isinstance(error, httpx.TransportError) or (isinstance(error, PawsApiError) and error.status >= 500) \
        or isinstance(error, EOFError)


def _delay(failures: int) -> float:
    return min(4.0, 0.25 * 2.0 ** (failures - 1))


def follow(open_stream: Callable[[str | None], Any], last_event_id: str | None, max_reconnects: int) -> Iterator[LogEvent]:
    """`open_stream(last_id)` is a context manager giving an httpx.Response (already checked for errors)."""
    last, failures = last_event_id, 0
    while True:
        try:
            with open_stream(last) as response:
                frames = Frames()
                for line in _lines(response.iter_text()):
                    event = frames.feed(line)
                    if event is None:
                        continue
                    failures = 0
                    last = event.id if event.id is not None else last
                    yield event
                    if event.ends_session:
                        return
            raise EOFError("the event stream ended before the session did")
        except Exception as error:  # noqa: BLE001 - sorted into retryable or not just below
            if not _retryable(error):
                raise
            failures += 1
            if failures > max_reconnects:
                raise
        time.sleep(_delay(failures))


async def _alines(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    buffer = ""
    async for chunk in chunks:
        buffer += chunk
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            yield line


async def afollow(
    open_stream: Callable[[str | None], Any], last_event_id: str | None, max_reconnects: int
) -> AsyncIterator[LogEvent]:
    last, failures = last_event_id, 0
    while True:
        try:
            async with open_stream(last) as response:
                frames = Frames()
                async for line in _alines(response.aiter_text()):
                    event = frames.feed(line)
                    if event is None:
                        continue
                    failures = 0
                    last = event.id if event.id is not None else last
                    yield event
                    if event.ends_session:
                        return
            raise EOFError("the event stream ended before the session did")
        except Exception as error:  # noqa: BLE001
            if not _retryable(error):
                raise
            failures += 1
            if failures > max_reconnects:
                raise
        await asyncio.sleep(_delay(failures))
