"""access.hooks: the WCS REST hooks against a real aiohttp backend on 127.0.0.1 that records every call
and answers per test: refusals, backend errors under rest_on_error LOG and FAIL, the WCS HMAC header,
queued status events, keep-alive stopping a live stream, WCS-shaped payloads."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from authkit import HookBackend, hook_backend, running, ws_url
from rtcdn.access import HookConfig, RestHooks, sign
from rtcdn.access import hooks as hooks_module
from rtcdn.wcs.client import AgentError
from testkit import free_port, make_settings
from wcs_client import WcsClient


async def slow(body: dict[str, Any]) -> int:
    await asyncio.sleep(1)
    return 200


async def ask_all(backend: HookBackend, fail_on_error: bool, url: str | None = None) -> dict[str, bool]:
    hooks = RestHooks(HookConfig(url or backend.url, timeout=0.3, fail_on_error=fail_on_error))
    hooks.start()
    try:
        methods = ["ok", "forbidden", "redirect", "broken", "slow"]
        results = await asyncio.gather(*(hooks.ask(m, {"name": m}) for m in methods))
        big = await hooks.ask("ok", {"name": "x" * (130 * 1024)})  # the echo is over 128 KiB
        return {**dict(zip(methods, results, strict=True)), "big": big}
    finally:
        await hooks.close()


async def test_answers_refusals_and_backend_errors() -> None:
    async with hook_backend(forbidden=403, redirect=302, broken=500) as backend:
        backend.answers["slow"] = slow
        # LOG: only the backend's own refusals refuse; errors (5xx, timeout, oversize) allow
        assert await ask_all(backend, fail_on_error=False) == {
            "ok": True, "forbidden": False, "redirect": False, "broken": True, "slow": True, "big": True,
        }  # fmt: skip
        assert await ask_all(backend, fail_on_error=True) == {
            "ok": True, "forbidden": False, "redirect": False, "broken": False, "slow": False, "big": False,
        }  # fmt: skip
    closed = f"http://127.0.0.1:{free_port()}/hooks"  # nothing listens there
    for fail, expected in ((False, True), (True, False)):
        hooks = RestHooks(HookConfig(closed, timeout=2, fail_on_error=fail))
        hooks.start()
        try:
            assert await hooks.ask("connect", {}) is expected
            assert hooks.stats.errors == 1
        finally:
            await hooks.close()


async def test_hmac_header_is_wcs_hmac_md5_of_the_body() -> None:
    async with hook_backend() as backend:
        hooks = RestHooks(HookConfig(backend.url, secret=b"1234567890"))
        hooks.start()
        try:
            assert await hooks.ask("connect", {"name": "cam", "custom": {"token": "t"}})
        finally:
            await hooks.close()
        call = backend.calls[0]
        expected = "WCS " + hmac.new(b"1234567890", call.raw, hashlib.md5).hexdigest()
        assert call.headers["Authorization"] == expected == sign(b"1234567890", call.raw)
        assert call.headers["Content-Type"] == "application/json" and call.body["custom"] == {"token": "t"}


async def test_notifications_are_queued_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks_module, "QUEUE_SIZE", 3)
    async with hook_backend() as backend:
        hooks = RestHooks(HookConfig(backend.url))
        for n in range(5):  # not started yet: nothing is sent, the queue keeps 3
            hooks.notify("StreamStatusEvent", {"n": n})
        assert hooks.stats.dropped == 2
        hooks.start()
        await backend.wait_call("StreamStatusEvent", lambda c: c.body["n"] == 2)
        await hooks.close()
        assert sorted(c.body["n"] for c in backend.of("StreamStatusEvent")) == [0, 1, 2]


def hooked(backend: HookBackend, **overrides: Any) -> Any:
    return make_settings(
        rest_hooks_url=backend.url, auth_failure_delay_ms=(0, 0), node_id="node-a", **overrides
    )


async def test_connect_publish_and_play_hooks(tmp_path: Path) -> None:
    async with hook_backend() as backend, running(hooked(backend), tmp_path / "s") as server:
        async with WcsClient(ws_url(server), custom={"login": "alice"}) as client:
            connect = backend.of("connect")[0].body
            assert connect["nodeId"] == "node-a" and connect["appKey"] == "defaultApp"
            assert connect["sessionId"] == client.user_data["sessionId"]  # type: ignore[index]
            assert connect["custom"] == {"login": "alice"} and connect["mediaProviders"] == ["WebRTC"]
            assert connect["useWsTunnel"] is False and "clientVersion" in connect
            msid, _, status = await client.publish("cam", custom={"room": "1"})
            assert status is not None and status["status"] == "PUBLISHING"
            publish = backend.of("publishStream")[0].body
            assert (publish["mediaSessionId"], publish["name"], publish["published"]) == (msid, "cam", True)
            assert publish["custom"] == {"room": "1"} and publish["sdp"].startswith("v=0")
            assert publish["sessionId"] == connect["sessionId"] and publish["nodeId"] == "node-a"
            event = await backend.wait_call("StreamStatusEvent", lambda c: c.body["status"] == "PUBLISHING")
            assert (event.body["mediaSessionId"], event.body["name"], event.body["nodeId"]) == (
                msid,
                "cam",
                "node-a",
            )
            pid, _, status = await client.play("cam")
            assert status is not None and status["status"] == "PLAYING"
            play = backend.of("playStream")[0].body
            assert (play["mediaSessionId"], play["name"], play["published"]) == (pid, "cam", False)
            # refused by the backend: the stream fails with WCS's string
            backend.status.update(publishStream=403, playStream=403)
            _, _, status = await client.publish("cam2")
            assert status is not None and (status["status"], status["info"]) == (
                "FAILED",
                "Restricted access",
            )
            _, _, status = await client.play("cam")
            assert status is not None and (status["status"], status["info"]) == (
                "FAILED",
                "Restricted access",
            )
            assert server.streams.find("cam2") is None
        await backend.wait_call("StreamStatusEvent", lambda c: c.body["status"] == "UNPUBLISHED")


async def test_a_refused_connect_fails_the_session(tmp_path: Path) -> None:
    async with hook_backend(connect=403) as backend, running(hooked(backend), tmp_path / "s") as server:
        client = WcsClient(ws_url(server))
        with pytest.raises(AgentError):
            await client.connect()
        fail = await client.wait_message("fail", timeout=5)
        assert fail["data"][0] == {
            "apiMethod": "ConnectionStatusEvent",
            "status": "FAILED",
            "info": "Restricted access",
        }
        await asyncio.wait_for(client.closed.wait(), 5)
        await client.close()
        assert len(backend.of("connect")) == 1 and server.sessions == {}


@pytest.mark.parametrize("on_error", ["LOG", "FAIL"])
async def test_a_backend_timeout_follows_rest_on_error(tmp_path: Path, on_error: str) -> None:
    async with hook_backend() as backend:
        backend.answers["publishStream"] = slow
        settings = hooked(backend, rest_request_timeout=0.3, rest_on_error=on_error)
        async with running(settings, tmp_path / "s") as server, WcsClient(ws_url(server)) as client:
            _, _, status = await client.publish("cam")
            assert status is not None
            if on_error == "LOG":
                assert status["status"] == "PUBLISHING", status
            else:
                assert (status["status"], status["info"]) == ("FAILED", "Restricted access")


async def test_keep_alive_refusal_stops_a_live_stream(tmp_path: Path) -> None:
    async with hook_backend() as backend:
        settings = hooked(
            backend,
            keep_alive_streaming_sessions_enabled=True,
            streaming_sessions_keep_alive_interval=200,
            rest_hook_send_hash=True,
            rest_hook_secret_key="s3cret",
        )
        async with running(settings, tmp_path / "s") as server:
            async with WcsClient(ws_url(server)) as publisher, WcsClient(ws_url(server)) as viewer:
                msid, _, status = await publisher.publish("cam")
                assert status is not None and status["status"] == "PUBLISHING"
                pid, _, status = await viewer.play("cam")
                assert status is not None and status["status"] == "PLAYING"
                alive = await backend.wait_call(
                    "StreamKeepAliveEvent", lambda c: c.body["mediaSessionId"] == msid
                )
                assert alive.body["status"] == "PUBLISHING" and alive.body["name"] == "cam"
                assert alive.body["published"] is True and alive.body["nodeId"] == "node-a"
                assert alive.headers["Authorization"] == sign(b"s3cret", alive.raw)
                await backend.wait_call("StreamKeepAliveEvent", lambda c: c.body["mediaSessionId"] == pid)
                backend.status["StreamKeepAliveEvent"] = 403
                status = await publisher.wait_status(msid, timeout=5)
                assert (status["status"], status["info"]) == ("UNPUBLISHED", "Terminated by keep-alive")
                status = await viewer.wait_status(pid, timeout=5)
                assert status["status"] == "STOPPED", status
                assert server.streams.find("cam") is None
