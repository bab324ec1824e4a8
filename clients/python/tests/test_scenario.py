"""The SDK scenario against a running control plane: PAWS_URL and PAWS_API_KEY (admin) must be set.

clients/test/python-sdk.test.ts starts a real control plane with an in-process node and runs this with Debian's python3.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
import unittest
from typing import Iterator, cast

import httpx

from paws import (
    AsyncPawsClient,
    ConflictError,
    CredentialRule,
    CronTrigger,
    InvalidRequestError,
    Network,
    NotFoundError,
    PawsClient,
    ScriptWorkload,
    UnauthorizedError,
    WebhookTrigger,
    retry_after_seconds,
)

URL = os.environ["PAWS_URL"]
KEY = os.environ["PAWS_API_KEY"]
SECRET = "sk-python-test-never-shown"
MISSING = "0190a8a8-0000-7000-8000-000000000000"


class CutAfterTwoFrames(httpx.SyncByteStream):
    """Passes on the first two SSE frames of a response, then ends it as a dropped connection would."""

    def __init__(self, inner: httpx.SyncByteStream) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[bytes]:
        seen = b""
        for chunk in self.inner:
            seen += chunk
            if seen.count(b"\n\n") >= 2:
                end = seen.index(b"\n\n", seen.index(b"\n\n") + 2) + 2
                yield seen[:end]
                break
        self.inner.close()


class Recording(httpx.BaseTransport):
    """A real transport that records requests and can cut the first event stream or hide the first create's answer."""

    def __init__(self, cut_first_stream: bool = False, lose_first_create: bool = False) -> None:
        self.inner = httpx.HTTPTransport()
        self.cut_first_stream = cut_first_stream
        self.lose_first_create = lose_first_create
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        streams = [r for r in self.requests if r.url.path.endswith("/events")]
        if self.cut_first_stream and request.url.path.endswith("/events") and len(streams) == 1:
            return httpx.Response(response.status_code, headers=response.headers,
                                  stream=CutAfterTwoFrames(cast(httpx.SyncByteStream, response.stream)))
        creates = [r for r in self.requests if r.method == "POST"]
        if self.lose_first_create and request.method == "POST" and len(creates) == 1:
            response.read()
            return httpx.Response(503, headers={"retry-after": "1"})
        return response


class SyncScenario(unittest.TestCase):
    def setUp(self) -> None:
        self.client = PawsClient(URL, KEY)

    def tearDown(self) -> None:
        self.client.close()

    def test_create_with_credentials_and_follow_logs(self) -> None:
        accepted = self.client.sessions.create(
            workload=ScriptWorkload(script="echo hi"),
            network=Network(allow_out=["api.example.com"],
                            credentials={"api.example.com": CredentialRule(headers={"x-api-key": SECRET})}),
        )
        self.assertEqual(accepted.status, "pending")
        events = list(self.client.sessions.logs(accepted.session_id))
        tags = [e.event["status"] if e.tag == "status" else e.tag for e in events]
        self.assertEqual(tags, ["pending", "starting", "running", "output", "output", "audit", "result", "completed"])
        self.assertIn("hello from", events[3].event["data"])
        session = self.client.sessions.wait(accepted.session_id)
        self.assertEqual(session.status, "completed")
        self.assertEqual(session.result.exit_code if session.result else None, 0)
        network = session.spec.network
        credentials = network.credentials if network else None
        self.assertEqual(credentials["api.example.com"].headers if credentials else None, ["x-api-key"])
        self.assertNotIn(SECRET, json.dumps(session.to_dict()))
        rest = list(self.client.sessions.logs(accepted.session_id, last_event_id=events[2].id))
        self.assertEqual([e.id for e in rest], [e.id for e in events[3:]])

    def test_reconnects_a_dropped_stream_with_last_event_id(self) -> None:
        transport = Recording(cut_first_stream=True)
        with PawsClient(URL, KEY, http=httpx.Client(transport=transport)) as client:
            session_id = client.sessions.create(workload={"type": "script", "script": "slow"}).session_id
            events = list(client.sessions.logs(session_id))
        streams = [r for r in transport.requests if r.url.path.endswith("/events")]
        self.assertEqual(len(streams), 2)
        self.assertNotIn("last-event-id", streams[0].headers)
        self.assertEqual(streams[1].headers["last-event-id"], events[1].id)
        ids = [e.id for e in events]
        self.assertEqual(len(set(ids)), len(ids))
        self.assertTrue(events[-1].ends_session)
        self.assertEqual(events[-1].event["status"], "completed")

    def test_cancel_a_running_session(self) -> None:
        session_id = self.client.sessions.create(workload=ScriptWorkload(script="hang")).session_id
        for event in self.client.sessions.logs(session_id):
            if event.tag == "status" and event.event["status"] == "running":
                break
        self.client.sessions.cancel(session_id)
        self.assertEqual(self.client.sessions.wait(session_id, interval=0.05, timeout=10).status, "cancelled")

    def test_list_with_paging(self) -> None:
        created = [self.client.sessions.create(workload=ScriptWorkload(script=f"py page {i}")).session_id
                   for i in range(5)]
        first = self.client.sessions.list(limit=2)
        self.assertEqual(len(first.sessions), 2)
        self.assertIsNotNone(first.next_cursor)
        ids = [s.id for s in self.client.sessions.list_all(limit=2)]
        self.assertEqual(len(set(ids)), len(ids))
        self.assertEqual([i for i in ids if i in created], list(reversed(created)))

    def test_typed_errors(self) -> None:
        with self.assertRaises(InvalidRequestError) as bad:
            self.client.sessions.create(workload=ScriptWorkload(script=""))
        self.assertEqual(bad.exception.status, 400)
        self.assertEqual(bad.exception.tag, "InvalidRequest")
        self.assertIn("workload.script", [i.path for i in bad.exception.issues])
        with PawsClient(URL, "paws_not-a-key") as stranger:
            with self.assertRaises(UnauthorizedError) as denied:
                stranger.sessions.list()
            self.assertEqual(denied.exception.problem["_tag"] if denied.exception.problem else None, "Unauthorized")
            with self.assertRaises(UnauthorizedError):
                list(stranger.sessions.logs(MISSING))
        with self.assertRaises(NotFoundError) as missing:
            self.client.sessions.get(MISSING)
        self.assertEqual(missing.exception.tag, "SessionNotFound")

    def test_retries_a_lost_create_with_the_same_idempotency_key(self) -> None:
        transport = Recording(lose_first_create=True)
        with PawsClient(URL, KEY, http=httpx.Client(transport=transport)) as client:
            started = time.monotonic()
            session_id = client.sessions.create(workload=ScriptWorkload(script="py once")).session_id
            self.assertGreaterEqual(time.monotonic() - started, 0.99)
            keys = [r.headers.get("idempotency-key") for r in transport.requests if r.method == "POST"]
            self.assertEqual(len(keys), 2)
            self.assertRegex(keys[0] or "", r"^[0-9a-f-]{36}$")
            self.assertEqual(keys[0], keys[1])
            onces = [
                s.id
                for s in client.sessions.list(limit=200).sessions
                if isinstance(s.spec.workload, ScriptWorkload) and s.spec.workload.script == "py once"
            ]
            self.assertEqual(onces, [session_id])

    def test_snapshots_build_list_and_delete(self) -> None:
        accepted = self.client.snapshots.create(name="py-sdk", setup="apt-get install -y jq")
        self.assertEqual(accepted.status, "building")
        deadline = time.monotonic() + 10
        while (snapshot := self.client.snapshots.get("py-sdk")).status != "ready":
            self.assertLess(time.monotonic(), deadline, f"still {snapshot.status}")
            time.sleep(0.05)
        self.assertEqual(snapshot.manifest.image.name if snapshot.manifest else None, "default")
        self.assertIn("py-sdk", [s.name for s in self.client.snapshots.list()])
        self.client.snapshots.delete("py-sdk")
        with self.assertRaises(NotFoundError) as gone:
            self.client.snapshots.get("py-sdk")
        self.assertEqual(gone.exception.tag, "SnapshotNotFound")

    def test_daemons_define_run_and_list_invocations(self) -> None:
        saved = self.client.daemons.create(
            name="py-daemon",
            workload=ScriptWorkload(script="echo py daemon"),
            network=Network(allow_out=["api.example.com"],
                            credentials={"api.example.com": CredentialRule(headers={"x-api-key": SECRET})}),
            triggers=[WebhookTrigger(name="hook"), CronTrigger(name="nightly", schedule="0 3 * * *")],
        )
        self.assertEqual(list(saved.secrets), ["hook"])
        self.assertEqual(saved.daemon.concurrency, "queue")
        with self.assertRaises(ConflictError):
            self.client.daemons.create(name="py-daemon", workload=ScriptWorkload(script="x"))
        updated = self.client.daemons.update("py-daemon", concurrency="skip")
        self.assertEqual(updated.daemon.concurrency, "skip")
        self.assertIn("py-daemon", [d.name for d in self.client.daemons.list()])
        invoked = self.client.daemons.run("py-daemon")
        session = self.client.sessions.wait(invoked.session_id, timeout=10)
        self.assertEqual(session.daemon, "py-daemon")
        self.assertEqual(session.trigger.kind if session.trigger else None, "manual")
        self.assertEqual([s.id for s in self.client.sessions.list(daemon="py-daemon").sessions], [invoked.session_id])
        shown = json.dumps(self.client.daemons.get("py-daemon").to_dict())
        self.assertNotIn(SECRET, shown)
        self.assertNotIn(saved.secrets["hook"], shown)
        self.client.daemons.delete("py-daemon")
        with self.assertRaises(NotFoundError) as gone:
            self.client.daemons.get("py-daemon")
        self.assertEqual(gone.exception.tag, "DaemonNotFound")

    def test_retry_after_forms(self) -> None:
        self.assertEqual(retry_after_seconds("3"), 3.0)
        self.assertEqual(retry_after_seconds("Thu, 01 Jan 1970 00:00:10 GMT", now=8.0), 2.0)
        self.assertIsNone(retry_after_seconds("soon"))


class AsyncScenario(unittest.IsolatedAsyncioTestCase):
    async def test_the_scenario_with_the_async_client(self) -> None:
        async with AsyncPawsClient(URL, KEY) as client:
            accepted = await client.sessions.create(
                workload=ScriptWorkload(script="echo async"),
                network={"allowOut": ["api.example.com"],
                         "credentials": {"api.example.com": {"headers": {"x-api-key": SECRET}}}},
            )
            tags = [e.tag async for e in client.sessions.logs(accepted.session_id)]
            self.assertEqual(tags[-2:], ["result", "status"])
            self.assertEqual((await client.sessions.wait(accepted.session_id)).status, "completed")

            hanging = (await client.sessions.create(workload=ScriptWorkload(script="hang"))).session_id
            async for event in client.sessions.logs(hanging):
                if event.tag == "status" and event.event["status"] == "running":
                    break
            await client.sessions.cancel(hanging)
            self.assertEqual((await client.sessions.wait(hanging, interval=0.05, timeout=10)).status, "cancelled")

            ids = [s.id async for s in client.sessions.list_all(limit=3)]
            self.assertIn(accepted.session_id, ids)
            self.assertEqual(len(set(ids)), len(ids))

            with self.assertRaises(InvalidRequestError):
                await client.sessions.create(workload={"type": "script", "script": ""})
        async with AsyncPawsClient(URL, "paws_not-a-key") as stranger:
            with self.assertRaises(UnauthorizedError):
                await stranger.sessions.get(MISSING)


if __name__ == "__main__":
    unittest.main()
