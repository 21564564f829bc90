"""REST API users (``rest_users_file``) and ``python -m rtcdn.api.users``, the tool that writes them.

The file has one user a line, ``NAME:scrypt$n=16384,r=8,p=1$SALT$HASH``: ``SALT`` and ``HASH`` are
standard base64 (padded), ``HASH = hashlib.scrypt(password as UTF-8, salt=SALT, n, r, p,
dklen=len(HASH))``. Blank lines and lines starting with ``#`` are ignored; a name has no ``:`` and no
white space. The server re-reads the file when it changes (a malformed new version is logged and the
previous users are kept).

    python -m rtcdn.api.users add NAME --file conf/rest_users     # add or replace NAME (mode 0600)
    python -m rtcdn.api.users add NAME                            # print the line instead
    python -m rtcdn.api.users remove NAME --file conf/rest_users

``add`` asks for the password twice on a terminal and otherwise reads one line from stdin
(``echo "$PW" | python -m rtcdn.api.users add ops --file conf/rest_users``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import hashlib
import hmac
import logging
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SCHEME = "scrypt"
N, R, P = 1 << 14, 8, 1
"Defaults for new hashes: 16 MiB and about 50 ms per check on this class of machine (RFC 7914 §2)."
SALT_BYTES, HASH_BYTES = 16, 32
MAX_N, MAX_R, MAX_P, MAX_MEMORY = 1 << 20, 32, 16, 1 << 28
"Bounds on parameters read from a file (memory: ``128 * r * n`` bytes), so a typo cannot ask for gigabytes."
NAME = re.compile(r"[^:\s]+")


@dataclass(frozen=True)
class ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    def __str__(self) -> str:
        salt, digest = (base64.b64encode(b).decode() for b in (self.salt, self.digest))
        return f"{SCHEME}$n={self.n},r={self.r},p={self.p}${salt}${digest}"

    def compute(self, password: str) -> bytes:
        maxmem = 128 * self.r * (self.n + self.p + 2) + (1 << 20)
        return hashlib.scrypt(
            password.encode("utf-8"),
            salt=self.salt,
            n=self.n,
            r=self.r,
            p=self.p,
            maxmem=maxmem,
            dklen=len(self.digest),
        )

    def verify(self, password: str) -> bool:
        """Constant-time comparison; costs one scrypt (run it off the event loop)."""
        return hmac.compare_digest(self.compute(password), self.digest)


def hash_password(password: str, n: int = N, r: int = R, p: int = P) -> ScryptHash:
    """A fresh hash (random salt) of ``password``."""
    blank = ScryptHash(n, r, p, os.urandom(SALT_BYTES), bytes(HASH_BYTES))
    return ScryptHash(n, r, p, blank.salt, blank.compute(password))


def dummy_hash() -> ScryptHash:
    """What an unknown name is checked against, so that it costs as much as a known one."""
    return ScryptHash(N, R, P, os.urandom(SALT_BYTES), os.urandom(HASH_BYTES))


def parse_hash(text: str) -> ScryptHash:
    """``scrypt$n=..,r=..,p=..$SALT$HASH``; ValueError says what is wrong."""
    parts = text.strip().split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise ValueError("expected scrypt$n=N,r=R,p=P$SALT$HASH")
    try:
        params = dict(item.split("=", 1) for item in parts[1].split(","))
        n, r, p = int(params.pop("n")), int(params.pop("r")), int(params.pop("p"))
    except (KeyError, ValueError):
        raise ValueError(f"bad scrypt parameters {parts[1]!r} (expected n=N,r=R,p=P)") from None
    if params:
        raise ValueError(f"unknown scrypt parameter(s) {', '.join(sorted(params))}")
    power_of_2 = 1 < n <= MAX_N and n & (n - 1) == 0
    if not power_of_2 or not 1 <= r <= MAX_R or not 1 <= p <= MAX_P or 128 * r * n > MAX_MEMORY:
        raise ValueError(
            f"scrypt parameters out of range: n={n}, r={r}, p={p} (n a power of 2, 128*r*n <= 256 MiB)"
        )
    try:
        salt = base64.b64decode(parts[2], validate=True)
        digest = base64.b64decode(parts[3], validate=True)
    except binascii.Error:
        raise ValueError("salt and hash must be base64") from None
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        raise ValueError("salt must be 8 bytes or more and the hash 16 to 64 bytes")
    return ScryptHash(n, r, p, salt, digest)


def parse_users(text: str, source: str = "users") -> dict[str, ScryptHash]:
    """Name -> hash; ValueError lists every bad line as ``source:line: problem``."""
    users: dict[str, ScryptHash] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not NAME.fullmatch(name):
            problems.append(f"{source}:{number}: expected NAME:scrypt$...")
            continue
        if name in users:
            problems.append(f"{source}:{number}: user {name!r} listed twice")
            continue
        try:
            users[name] = parse_hash(stored)
        except ValueError as exc:
            problems.append(f"{source}:{number}: {name}: {exc}")
    if problems:
        raise ValueError("\n".join(problems))
    return users


class UsersFile:
    """The users of ``path``, re-read when the file changes. Built at start-up, where a missing or
    malformed file raises ValueError; later a bad version is logged and the last good one is kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._stat()
        self._users = self._read()

    def _stat(self) -> tuple[int, int, int]:
        st = self.path.stat()
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _read(self) -> dict[str, ScryptHash]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{self.path}: cannot read: {exc}") from None
        return parse_users(text, str(self.path))

    def get(self, name: str) -> ScryptHash | None:
        try:
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                self._users = self._read()
                logger.info("%s: reloaded, %d user(s)", self.path, len(self._users))
        except (OSError, ValueError) as exc:
            logger.error("%s: not reloaded, keeping the previous users: %s", self.path, exc)
        return self._users.get(name)

    def __len__(self) -> int:
        return len(self._users)


# --- the tool -------------------------------------------------------------------------------------


def set_user(path: Path, name: str, hashed: ScryptHash | None) -> bool:
    """Add, replace (or with ``hashed=None`` remove) ``name`` in ``path``, keeping the other lines;
    the file is replaced atomically with mode 0600. Returns whether ``name`` was there before."""
    if not NAME.fullmatch(name):
        raise ValueError(f"bad user name {name!r}: no ':' and no white space")
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [line for line in lines if line.strip().partition(":")[0] != name]
    existed = len(kept) != len(lines)
    if hashed is not None:
        kept.append(f"{name}:{hashed}")
    parse_users("\n".join(kept), str(path))  # never write a file the server would refuse
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in kept))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return existed


def read_password() -> str:
    """Twice from the terminal, or one line from stdin when it is not one."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Manage the users of ``rest_users_file`` (REST API HTTP Basic auth)."""
    parser = argparse.ArgumentParser(prog="python -m rtcdn.api.users", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add or replace a user (password from the terminal or stdin)")
    add.add_argument("name")
    add.add_argument("--file", type=Path, help="the users file to update (else the line is printed)")
    remove = commands.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    remove.add_argument("--file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "remove":
            if not set_user(args.file, args.name, None):
                print(f"{args.file}: no user {args.name!r}", file=sys.stderr)
                return 1
            print(f"{args.file}: removed {args.name!r}", file=sys.stderr)
            return 0
        if not NAME.fullmatch(args.name):
            raise ValueError(f"bad user name {args.name!r}: no ':' and no white space")
        password = read_password()
        if not password:
            raise ValueError("empty password")
        hashed = hash_password(password)
        if args.file is None:
            print(f"{args.name}:{hashed}")
            return 0
        existed = set_user(args.file, args.name, hashed)
        print(f"{args.file}: {'replaced' if existed else 'added'} {args.name!r}", file=sys.stderr)
        return 0
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
