"""access.tokens: what a valid token grants, every way a token is refused, service tokens, the
configuration keys that declare keys and algorithms."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authkit import KEYS, SECRET, token
from rtcdn.access import Grant, TokenVerifier
from rtcdn.config import ConfigError, Settings, cross_problems, load
from rtcdn.config.keys import _jwt_algorithms, _jwt_keys
from rtcdn.stream import AccessDenied


def verifier(**kwargs: object) -> TokenVerifier:
    return TokenVerifier(**{"hmac_keys": KEYS, **kwargs})  # type: ignore[arg-type]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def refused(v: TokenVerifier, tok: str, why: str) -> None:
    with pytest.raises(AccessDenied) as caught:
        await v.verify(tok)
    assert why in str(caught.value), caught.value


async def test_a_valid_token_grants_its_globs() -> None:
    grant = await verifier().verify(token(["live/*", "cam"], ["*"]))
    assert grant == Grant("user-1", ("live/*", "cam"), ("*",))
    assert grant.allows("publish", "live/a") and grant.allows("publish", "cam")
    assert not grant.allows("publish", "camera") and not grant.allows("publish", "other/live/a")
    assert grant.allows("play", "anything") and not grant.service
    empty = await verifier().verify(token())
    assert not empty.allows("publish", "cam") and not empty.allows("play", "cam")  # missing = denied
    odd = await verifier().verify(token(rtcdn={"publish": "cam", "play": [1, "x"]}))
    assert odd.publish == () and odd.play == ("x",)  # not a list / not strings: ignored


async def test_time_claims_with_30_s_leeway() -> None:
    v = verifier()
    await v.verify(token(["*"], ttl=-20))  # expired 20 s ago: within the leeway
    await refused(v, token(["*"], ttl=-60), "ExpiredSignatureError")
    await refused(v, token(["*"], nbf=int(time.time()) + 120), "ImmatureSignatureError")
    await refused(v, token(["*"], exp=None), "MissingRequiredClaimError")  # exp is required


async def test_audience_and_issuer() -> None:
    v = verifier(audience="rtcdn", issuer="https://id.example")
    await v.verify(token(["*"], aud="rtcdn", iss="https://id.example"))
    await refused(v, token(["*"], aud="other", iss="https://id.example"), "InvalidAudienceError")
    await refused(v, token(["*"], iss="https://id.example"), 'missing the "aud" claim')
    await refused(v, token(["*"], aud="rtcdn", iss="https://evil.example"), "InvalidIssuerError")
    # no audience configured: a token meant for another audience is refused, one without passes
    await refused(verifier(), token(["*"], aud="other"), "InvalidAudienceError")


async def test_wrong_key_unknown_kid_and_missing_kid() -> None:
    v = verifier()
    await refused(v, token(["*"], key=b"x" * 32), "InvalidSignatureError")
    await refused(v, token(["*"], kid="k9"), "unknown key id 'k9'")
    await v.verify(token(["*"], kid=None))  # one key: the kid may be left out
    two = verifier(hmac_keys=[*KEYS, ("k2", b"y" * 32)])
    await refused(two, token(["*"], kid=None), "no kid")
    await two.verify(token(["*"], key=b"y" * 32, kid="k2"))  # rotation: both keys verify
    await refused(v, "not-a-token", "malformed token")


async def test_the_algorithm_is_never_the_tokens_choice() -> None:
    v = verifier()
    header = b64(json.dumps({"alg": "none", "kid": "k1"}).encode())
    body = b64(json.dumps({"exp": int(time.time()) + 60, "rtcdn": {"publish": ["*"]}}).encode())
    await refused(v, f"{header}.{body}.", "'none' is not accepted")
    # the right secret, but HS512: only HS256 is accepted
    await refused(v, token(["*"], key=SECRET * 2, alg="HS512"), "'HS512' is not accepted")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await refused(v, token(["*"], key=rsa_key, alg="RS256"), "'RS256' is not accepted")
    # RS256 accepted too: a token signed with some RSA key under the HMAC key's kid is still refused
    both = verifier(algorithms=["HS256", "RS256"])
    await refused(both, token(["*"], key=rsa_key, alg="RS256"), "does not go with key 'k1'")


async def test_an_hmac_token_under_a_public_keys_kid_is_refused() -> None:
    """Algorithm confusion: an HS256 token naming the kid of a JWKS (EC) key."""
    from rtcdn.access.jwks import PublicKey

    private = ec.generate_private_key(ec.SECP256R1())
    v = TokenVerifier(jwks_url="http://127.0.0.1:9/jwks.json", algorithms=["ES256", "HS256"])
    assert v.jwks is not None
    v.jwks.keys["e1"] = PublicKey("e1", private.public_key(), ("ES256",))
    await v.verify(token(["*"], key=private, alg="ES256", kid="e1"))
    await refused(v, token(["*"], key=SECRET, alg="HS256", kid="e1"), "does not go with key 'e1'")


async def test_service_tokens() -> None:
    v = verifier(audience="rtcdn", node_id="origin-1")
    minted = v.service_token()
    assert minted is not None
    assert jwt.get_unverified_header(minted) == {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"], audience="rtcdn")
    assert claims["sub"] == "node:origin-1" and claims["exp"] - claims["iat"] == 60
    grant = await v.verify(minted)
    assert grant.service and grant.allows("publish", "any") and grant.allows("play", "thing")
    other = verifier(hmac_keys=[("k1", b"z" * 32)])
    await refused(other, minted, "InvalidSignatureError")  # a node with other keys refuses it
    assert TokenVerifier(jwks_url="http://127.0.0.1:9/", algorithms=["ES256"]).service_token() is None


def test_key_and_algorithm_syntax() -> None:
    assert _jwt_keys("a:" + "s" * 32) == (("a", b"s" * 32),)
    encoded = base64.urlsafe_b64encode(b"\xfb" * 40).decode()
    assert _jwt_keys(f"a:{'t' * 32}, b:base64:{encoded.rstrip('=')}") == (
        ("a", b"t" * 32),
        ("b", b"\xfb" * 40),
    )
    assert _jwt_keys("a:" + ":" * 32) == (("a", b":" * 32),)  # the secret may hold colons
    for bad, why in [
        ("a:short", "at least 32"),
        ("nocolon", "colon"),
        (":" + "s" * 32, "kid"),
        ("a:base64:!!!", "not base64"),
        (f"a:{'s' * 32},a:{'t' * 32}", "twice"),
    ]:
        with pytest.raises(ValueError, match=why) as caught:
            _jwt_keys(bad)
        assert "s" * 32 not in str(caught.value)  # a secret is never echoed
    assert _jwt_algorithms("hs256, es256,EDDSA") == ["HS256", "ES256", "EdDSA"]
    for bad in ("none", "HS1", ""):
        with pytest.raises(ValueError):
            _jwt_algorithms(bad)


def test_settings_that_do_not_fit(tmp_path: Path) -> None:
    assert cross_problems(Settings(auth_jwt_keys=KEYS, auth_jwt_algorithms=["ES256"])) == [
        "auth_jwt_keys: set, but auth_jwt_algorithms accepts no HS256/HS384/HS512"
    ]
    assert cross_problems(Settings(auth_jwt_keys=KEYS, auth_jwt_algorithms=["HS512"])) == [
        f"auth_jwt_keys: key 'k1' has {len(SECRET)} bytes, HS512 needs 64"
    ]
    assert cross_problems(Settings(auth_jwt_jwks_url="http://127.0.0.1:9/")) == [
        "auth_jwt_jwks_url: set, but auth_jwt_algorithms accepts no public-key algorithm"
    ]
    assert cross_problems(Settings(rest_hook_send_hash=True)) == [
        "rest_hook_send_hash: true needs rest_hook_secret_key"
    ]
    (tmp_path / "flashphoner.properties").write_text(
        f"auth_jwt_keys=k1:{SECRET.decode()}\nauth_jwt_audience=rtcdn\nrest_on_error=fail\n"
        "rest_request_timeout=0.5\nallow_domains=*.example.com, !evil.example.com\nlimits_exempt_ips=\n"
        "auth_failure_delay_ms=100-300\nmax_players_per_stream=3\n"
    )
    s = load(tmp_path)
    assert (s.auth_jwt_keys, s.auth_jwt_audience, s.rest_on_error) == (KEYS, "rtcdn", "FAIL")
    assert (s.rest_request_timeout, s.auth_failure_delay_ms, s.max_players_per_stream) == (0.5, (100, 300), 3)
    assert s.allow_domains == ["*.example.com", "!evil.example.com"] and s.limits_exempt_ips == []
    (tmp_path / "flashphoner.properties").write_text(
        "limits_exempt_ips=203.0.113.0/33\nrest_on_error=MAYBE\n"
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    assert [p.split(": ", 2)[1] for p in caught.value.problems] == ["limits_exempt_ips", "rest_on_error"]
