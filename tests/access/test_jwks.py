"""access.jwks: ES256 public keys from a JWKS served by a test aiohttp server on 127.0.0.1: fetched at
start, fetched again on an unknown kid (rotation) but not more than the cooldown allows, kept when the
server fails; a node publishing and playing on JWKS tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from authkit import running, token, ws_url
from rtcdn.access import TokenVerifier
from rtcdn.stream import AccessDenied
from testkit import free_port, make_settings
from wcs_client import WcsClient


def jwk(kid: str, key: ec.EllipticCurvePrivateKey, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, **extra}


class JwksServer:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.hits = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/jwks.json", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/jwks.json"

    async def _serve(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response({"keys": self.keys}, status=self.status)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    server = JwksServer()
    await server.start()
    yield server
    await server.close()


async def test_keys_fetched_rotated_and_kept(jwks: JwksServer) -> None:
    a, b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    jwks.keys = [
        jwk("a", a),
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},
        jwk("p384", ec.generate_private_key(ec.SECP384R1())),
    ]
    v = TokenVerifier(jwks_url=jwks.url, algorithms=["ES256"])
    assert v.jwks is not None
    v.start()
    try:
        assert (await v.verify(token(["cam"], key=a, alg="ES256", kid="a"))).allows("publish", "cam")
        assert sorted(v.jwks.keys) == ["a"]  # an oct key, and a P-384 key ES256 cannot use, are left out
        fetched = jwks.hits
        # rotation: the identity server signs with b now; the unknown kid fetches the set again
        jwks.keys = [jwk("b", b)]
        v.jwks.cooldown = 0
        await v.verify(token(["cam"], key=b, alg="ES256", kid="b"))
        assert jwks.hits == fetched + 1
        with pytest.raises(AccessDenied, match="unknown key id 'a'"):
            await v.verify(token(["cam"], key=a, alg="ES256", kid="a"))  # a is gone from the set
        # within the cooldown made-up kids cost no fetch
        v.jwks.cooldown = 60
        hits = jwks.hits
        for n in range(5):
            with pytest.raises(AccessDenied, match="unknown key id"):
                await v.verify(token(["cam"], key=b, alg="ES256", kid=f"made-up-{n}"))
        assert jwks.hits == hits
        # the server fails: the keys known are kept
        jwks.status = 500
        await v.jwks.fetch()
        assert jwks.hits == hits + 1 and sorted(v.jwks.keys) == ["b"]
        await v.verify(token(["cam"], key=b, alg="ES256", kid="b"))
    finally:
        await v.close()


async def test_concurrent_unknown_kids_share_one_fetch(jwks: JwksServer) -> None:
    a = ec.generate_private_key(ec.SECP256R1())
    v = TokenVerifier(jwks_url=jwks.url, algorithms=["ES256"])
    assert v.jwks is not None
    v.jwks.cooldown = 0
    v.start()
    try:
        await v.jwks.fetch()  # nothing there yet
        jwks.keys = [jwk("a", a)]
        hits = jwks.hits
        tok = token(["*"], key=a, alg="ES256", kid="a")
        grants = await asyncio.gather(*(v.verify(tok) for _ in range(10)))
        assert all(g.allows("publish", "x") for g in grants)
        assert jwks.hits == hits + 1
    finally:
        await v.close()


async def test_unreachable_jwks_refuses() -> None:
    v = TokenVerifier(jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json", algorithms=["ES256"])
    v.start()
    try:
        with pytest.raises(AccessDenied, match="unknown key id"):
            await v.verify(token(["*"], key=ec.generate_private_key(ec.SECP256R1()), alg="ES256", kid="a"))
    finally:
        await v.close()


async def test_a_node_on_jwks_tokens(jwks: JwksServer, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwks.keys = [jwk("idp-1", key, alg="ES256", use="sig")]
    settings = make_settings(
        auth_jwt_jwks_url=jwks.url,
        auth_jwt_algorithms=["ES256"],
        auth_jwt_issuer="idp",
        auth_failure_delay_ms=(0, 0),
    )
    async with running(settings, tmp_path / "s") as server:
        custom = {"token": token(["cam"], ["cam"], key=key, alg="ES256", kid="idp-1", iss="idp")}
        async with WcsClient(ws_url(server), custom=custom) as client:
            _, _, status = await client.publish("cam")
            assert status is not None and status["status"] == "PUBLISHING", status
            _, _, status = await client.publish("other")
            assert status is not None and (status["status"], status["info"]) == (
                "FAILED",
                "Restricted access",
            )
            _, _, status = await client.play("cam")
            assert status is not None and status["status"] == "PLAYING", status
