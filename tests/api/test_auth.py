"""REST API auth (disable_rest_auth=false): HTTP Basic, Bearer tokens, the JWT seam, which paths are
guarded, the failure delay, config problems and the start-up warning for an open API."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from rtcdn.api.auth import CHALLENGE, RestAuth, Verdict, exposure_warning, warn_if_exposed
from rtcdn.api.users import ScryptHash, UsersFile, hash_password, set_user
from rtcdn.config import ConfigError, load
from rtcdn.server import Server
from testkit import make_settings

FAST = 1 << 10
"scrypt n for test users: a millisecond instead of 50."


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    users = tmp_path / "rest_users"
    set_user(users, "ops", hash_password("s3cret:with colon", n=FAST))
    settings = make_settings(
        disable_rest_auth=False,
        rest_users_file=str(users),
        rest_api_tokens=["tok-A", "tok-B"],
        rest_auth_failure_delay_ms=(0, 0),
        metrics_auth=True,
    )
    server = Server(settings, tmp_path / "state")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield f"http://127.0.0.1:{settings.http_ports[0]}", http
    finally:
        await server.close()


async def status_of(
    http: aiohttp.ClientSession, url: str, headers: Mapping[str, str] | None = None, method: str = "POST"
) -> tuple[int, Any, Mapping[str, str]]:
    async with http.request(method, url, headers=headers or {}) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, resp.headers


async def test_basic_ok_missing_wrong(guarded: tuple[str, aiohttp.ClientSession]) -> None:
    base, http = guarded
    url = f"{base}/rest-api/stream/find_all"
    code, body, headers = await status_of(http, url)
    assert (code, headers["WWW-Authenticate"]) == (401, CHALLENGE) == (401, 'Basic realm="rtcdn"')
    assert body["error"] == "Unauthorized"
    assert (await status_of(http, url, basic("ops", "s3cret:with colon")))[0] == 404  # in: no streams
    assert (await status_of(http, url, basic("ops", "s3cret:with colon"), "GET"))[0] == 404
    for wrong in (basic("ops", "nope"), basic("nobody", "s3cret:with colon"), {"Authorization": "Basic !!"}):
        code, body, headers = await status_of(http, url, wrong)
        assert (code, body["error"]) == (403, "Forbidden") and "WWW-Authenticate" not in headers
    assert (await status_of(http, url, {"Authorization": "Digest x"}))[0] == 401
    # an unknown method is 401 too: nothing is learnt without credentials
    assert (await status_of(http, f"{base}/rest-api/nope"))[0] == 401
    assert (await status_of(http, f"{base}/rest-api/nope", bearer("tok-A")))[0] == 404


async def test_bearer_tokens(guarded: tuple[str, aiohttp.ClientSession]) -> None:
    base, http = guarded
    url = f"{base}/rest-api/pull/find_all"
    assert (await status_of(http, url, bearer("tok-A")))[0] == 404
    assert (await status_of(http, url, bearer("tok-B")))[0] == 404
    for token in ("tok-C", "tok-", "tok-AA", "", "tok-A.x.y"):
        code, body, headers = await status_of(http, url, bearer(token))
        assert (code, body["error"]) == (403, "Forbidden") and "WWW-Authenticate" not in headers, token


async def test_open_paths_and_metrics(guarded: tuple[str, aiohttp.ClientSession]) -> None:
    base, http = guarded
    code, doc, _ = await status_of(http, f"{base}/rest-api/openapi.json", method="GET")
    assert code == 200 and doc["openapi"].startswith("3.1")
    assert (await status_of(http, f"{base}/rest-api/pull/push", method="OPTIONS"))[0] == 204  # preflight
    code, stat, _ = await status_of(http, f"{base}/?action=stat", method="GET")  # CDN balancers probe it
    assert code == 200 and "publishers" in stat
    assert (await status_of(http, f"{base}/metrics", method="GET"))[0] == 401  # metrics_auth=true
    code, text, _ = await status_of(http, f"{base}/metrics", bearer("tok-A"), "GET")
    assert code == 200 and "rtcdn_" in text


async def test_metrics_stay_open_by_default(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        code, _, _ = await status_of(
            http, f"http://127.0.0.1:{server.settings.http_ports[0]}/metrics", method="GET"
        )
    assert code == 200


def _users(tmp_path: Path, **hashes: ScryptHash) -> UsersFile:
    path = tmp_path / "users"
    for name, hashed in hashes.items():
        set_user(path, name, hashed)
    return UsersFile(path)


async def test_good_passwords_are_remembered_and_the_file_reloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = _users(tmp_path, ops=hash_password("pw", n=FAST))
    auth = RestAuth(users, failure_delay=(0, 0))
    calls: list[int] = []
    verify = ScryptHash.verify

    def counting(self: ScryptHash, password: str) -> bool:
        calls.append(self.n)
        return verify(self, password)

    monkeypatch.setattr(ScryptHash, "verify", counting)
    header = basic("ops", "pw")["Authorization"]
    assert (await auth.check(header)).verdict is Verdict.OK
    assert (await auth.check(header)).verdict is Verdict.OK
    assert len(calls) == 1  # the second check skipped scrypt
    assert (await auth.check(basic("ops", "PW")["Authorization"])).verdict is Verdict.WRONG
    assert (await auth.check(basic("ghost", "pw")["Authorization"])).verdict is Verdict.WRONG
    assert len(calls) == 3  # an unknown user costs a scrypt too
    set_user(users.path, "ops", hash_password("new", n=FAST))  # changed while running
    set_user(users.path, "dev", hash_password("pw2", n=FAST))
    assert (await auth.check(header)).verdict is Verdict.WRONG  # the remembered pair is stale
    assert (await auth.check(basic("ops", "new")["Authorization"])).verdict is Verdict.OK
    assert (await auth.check(basic("dev", "pw2")["Authorization"])).verdict is Verdict.OK
    users.path.write_text("garbage\n")  # a bad new version keeps the previous users
    assert (await auth.check(basic("dev", "pw2")["Authorization"])).verdict is Verdict.OK


async def test_jwt_seam() -> None:
    async def verify(token: str) -> Mapping[str, Any] | None:
        if token == "a.b.c":
            return {"sub": "svc", "rtcdn": {"api": True}}
        if token == "a.b.d":
            return {"sub": "player", "rtcdn": {"play": ["*"]}}
        if token == "a.b.e":
            raise RuntimeError("verifier down")
        return None

    auth = RestAuth(tokens=["static"], verify_jwt=verify, failure_delay=(0, 0))
    outcome = await auth.check("Bearer a.b.c")
    assert (outcome.verdict, outcome.who) == (Verdict.OK, "svc")
    for token in ("a.b.d", "a.b.e", "x.y.z", "not-a-jwt"):
        assert (await auth.check(f"Bearer {token}")).verdict is Verdict.WRONG, token
    assert (await auth.check("Bearer static")).verdict is Verdict.OK
    assert (await RestAuth().check("Basic " + base64.b64encode(b"a:b").decode())).verdict is Verdict.WRONG


async def test_failures_are_delayed_and_logged_sparingly(caplog: pytest.LogCaptureFixture) -> None:
    auth = RestAuth(tokens=["t"], failure_delay=(0.05, 0.06))
    caplog.set_level(logging.WARNING, "rtcdn.api.auth")
    start = time.monotonic()
    for _ in range(3):
        await auth.refuse(await auth.check("Bearer guess-42"), "127.0.0.1", "/rest-api/x")
    assert time.monotonic() - start >= 0.15
    warnings = [r for r in caplog.records if "REST auth refused" in r.getMessage()]
    assert len(warnings) == 1 and "unknown token" in warnings[0].getMessage()
    assert "guess-42" not in warnings[0].getMessage()  # a token is never logged


def write_props(tmp_path: Path, text: str) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "flashphoner.properties").write_text(text)
    return conf


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "disable_rest_auth=false\n",
            "disable_rest_auth: false needs rest_users_file, rest_api_tokens or JWT keys",
        ),
        ("disable_rest_auth=false\nrest_users_file=missing\n", "rest_users_file: "),
        ("metrics_auth=true\n", "metrics_auth: true needs disable_rest_auth=false"),
        ("rest_auth_failure_delay_ms=500-100\n", "flashphoner.properties:1: rest_auth_failure_delay_ms"),
        ("rest_max_body_bytes=0\n", "flashphoner.properties:1: rest_max_body_bytes"),
    ],
)
def test_config_problems(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(write_props(tmp_path, text))
    assert any(p.startswith(problem) or problem in p for p in info.value.problems), info.value.problems


def test_config_keys(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    set_user(tmp_path / "conf" / "users", "ops", hash_password("pw", n=FAST))
    text = (
        "disable_rest_auth=false\nrest_users_file=users\nrest_api_tokens=a, b\nrest_cors_origins=\n"
        "rest_auth_failure_delay_ms=0\nrest_max_body_bytes=1024\nrelay_allowed_hosts=203.0.113.0/24, edge:8080\n"
    )
    s = load(write_props(tmp_path, text))
    assert (s.disable_rest_auth, s.rest_users_file, s.rest_api_tokens) == (False, "users", ["a", "b"])
    assert (s.rest_cors_origins, s.rest_auth_failure_delay_ms, s.rest_max_body_bytes) == ([], (0, 0), 1024)
    assert s.relay_allowed_hosts == ["203.0.113.0/24", "edge:8080"]
    assert load(None).rest_cors_origins == ["*"] and load(None).disable_rest_auth is True


async def test_a_bad_users_file_stops_the_start(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("ops:scrypt$n=3,r=8,p=1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==\n")
    with pytest.raises(ConfigError, match=r"rest_users_file: .*users:1: ops: scrypt parameters out of range"):
        Server(make_settings(disable_rest_auth=False, rest_users_file=str(users)), tmp_path / "state")


def test_exposure_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "rtcdn.api.auth")
    for bind in ("0.0.0.0", "", "::", "192.0.2.7"):
        assert exposure_warning(bind, False, [8081]) is not None, bind
    for bind, auth, ports in (
        ("127.0.0.1", False, [8081]),
        ("127.0.0.5", False, [1]),
        ("::1", False, [1]),
        ("localhost", False, [1]),
        ("0.0.0.0", True, [8081]),
        ("0.0.0.0", False, []),
    ):
        assert exposure_warning(bind, auth, ports) is None, (bind, auth, ports)
    message = warn_if_exposed("0.0.0.0", False, [8081, 8444])
    assert message is not None and "8081, 8444 on every interface" in message
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "disable_rest_auth=true" in record.getMessage()


async def test_a_loopback_server_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    server = Server(make_settings(), tmp_path / "state")
    await server.start()
    await server.close()
    assert not [r for r in caplog.records if "REST API open" in r.getMessage()]
    assert [r for r in caplog.records if r.getMessage().startswith("rtcdn listening")]


async def test_scrypt_runs_off_the_event_loop(tmp_path: Path) -> None:
    users = _users(tmp_path, ops=hash_password("pw"))  # the real cost, ~50 ms
    auth = RestAuth(users, failure_delay=(0, 0))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    start = time.monotonic()
    results = await asyncio.gather(*(auth.check(basic("ops", f"pw{i}")["Authorization"]) for i in range(4)))
    elapsed = time.monotonic() - start
    task.cancel()
    assert all(r.verdict is Verdict.WRONG for r in results)
    assert ticks >= elapsed / 0.005 / 4  # the loop kept turning while scrypt ran


def _jwt(secret: bytes, **claims: Any) -> str:
    return jwt.encode(
        {"exp": int(time.time()) + 60, **claims}, secret, algorithm="HS256", headers={"kid": "k1"}
    )


@pytest.fixture
async def jwt_server(tmp_path: Path) -> AsyncIterator[tuple[str, bytes]]:
    secret = b"k" * 32
    settings = make_settings(
        disable_rest_auth=False,
        rest_api_tokens=["static"],
        rest_auth_failure_delay_ms=(0, 0),
        auth_jwt_keys=(("k1", secret),),
    )
    server = Server(settings, tmp_path / "state")
    await server.start()
    try:
        yield f"http://127.0.0.1:{settings.http_ports[0]}/rest-api/stream/find_all", secret
    finally:
        await server.close()


async def test_jwts_without_the_api_grant_are_refused(jwt_server: tuple[str, bytes]) -> None:
    url, secret = jwt_server
    async with aiohttp.ClientSession() as http:
        for token in (
            _jwt(secret, sub="player", rtcdn={"play": ["*"]}),
            _jwt(b"x" * 32, rtcdn={"api": True}),
            _jwt(secret, sub="node:edge1", rtcdn={"api": False}),
        ):
            assert (await status_of(http, url, bearer(token)))[0] == 403


async def test_a_jwt_with_the_api_grant_is_let_in(jwt_server: tuple[str, bytes]) -> None:
    url, secret = jwt_server
    async with aiohttp.ClientSession() as http:
        assert (await status_of(http, url, bearer(_jwt(secret, sub="ops", rtcdn={"api": True}))))[0] == 404


async def test_a_refusal_behind_a_trusted_proxy_names_the_forwarded_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        disable_rest_auth=False,
        rest_api_tokens=["tok-A"],
        rest_auth_failure_delay_ms=(0, 0),
        trusted_proxies=["127.0.0.1"],
    )
    caplog.set_level(logging.WARNING, "rtcdn.api.auth")
    server = Server(settings, tmp_path / "state")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{settings.http_ports[0]}/rest-api/stream/find_all"
            headers = {**bearer("guess"), "X-Forwarded-For": "127.0.0.5, 127.0.0.9"}
            assert (await status_of(http, url, headers))[0] == 403
    finally:
        await server.close()
    (warning,) = [r.getMessage() for r in caplog.records if "REST auth refused" in r.getMessage()]
    assert "from 127.0.0.9" in warning, warning
