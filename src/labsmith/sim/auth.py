"""Who is calling: API tokens, and tickets with their CSRF token, as pveproxy checks them.

Tickets are ``PVE:<userid>:<hex time>::<signature>`` signed here with HMAC (PVE signs with
the cluster's RSA key; clients treat the ticket as opaque). Passwords are kept as salted
scrypt hashes in PHC string form (``$scrypt$ln=14,r=8,p=1$<salt>$<hash>``), so a leaked
``--state`` file does not give them away to a dictionary; token secrets are random UUIDs
the simulator generates, for which a plain SHA-256 digest is as good as a slow hash.
"""

import base64
import hashlib
import hmac
import http.cookies
import secrets
import time
from collections.abc import Mapping

from labsmith.sim.handlers.base import ApiError
from labsmith.sim.privileges import Principal
from labsmith.sim.state import ClusterState, Token, User

TICKET_LIFETIME = 2 * 3600  # PVE tickets are valid for two hours
ROOT = "root@pam"


# scrypt's cost: 2**14 rounds, 16 MiB of memory, about 40 ms a password (the RFC 7914
# interactive-login parameters). Stored with each hash, so a change keeps old hashes valid.
SCRYPT_LOG2_N = 14
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32


def digest(secret: str) -> str:
    """A token secret's digest (the secret is random, so it needs no salt)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(_SALT_BYTES)
    hashed = _scrypt(password, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    return (
        f"$scrypt$ln={SCRYPT_LOG2_N},r={SCRYPT_R},p={SCRYPT_P}"
        f"${_b64encode(salt)}${_b64encode(hashed)}"
    )


def password_matches(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` (from :func:`hash_password`) was made of."""
    try:
        _, scheme, parameters, salt, hashed = stored.split("$")
        cost = dict(item.split("=", 1) for item in parameters.split(","))
        log2_n, r, p = int(cost["ln"]), int(cost["r"]), int(cost["p"])
        expected = _b64decode(hashed)
        computed = _scrypt(password, _b64decode(salt), log2_n, r, p)
    except (ValueError, KeyError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(computed, expected)


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=1 << log2_n, r=r, p=p, maxmem=256 << 20, dklen=_HASH_BYTES
    )


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def add_token(state: ClusterState, full_token_id: str, secret: str, *, privsep: bool) -> None:
    """Register ``user@realm!name`` with its secret, creating the user if needed."""
    userid, _, name = full_token_id.partition("!")
    user = state.users.setdefault(userid, User(userid=userid))
    user.tokens[name] = Token(secret_sha256=digest(secret), privsep=privsep)


def set_password(state: ClusterState, userid: str, password: str) -> None:
    user = state.users.setdefault(userid, User(userid=userid))
    user.password_hash = hash_password(password)


class Authenticator:
    def __init__(self, state: ClusterState, *, secret: bytes | None = None) -> None:
        self.state = state
        self._key = secret or secrets.token_bytes(32)

    def authenticate(self, http_method: str, headers: Mapping[str, str]) -> Principal:
        """The caller of a request, or 401 as pveproxy answers it (pve-http-server
        AnyEvent.pm ``authenticate_and_handle_request``, pve-manager HTTPServer.pm
        ``auth_handler``): the cookie first, then the Authorization header."""
        authorization = headers.get("Authorization", "")
        cookie = _cookie(headers.get("Cookie", ""))
        if cookie is None and authorization.startswith("PVEAuthCookie="):
            cookie = authorization.removeprefix("PVEAuthCookie=")
        if cookie is None and authorization.startswith("PVEAPIToken"):
            return self._token(authorization)
        if cookie is None:
            raise ApiError(401, "No ticket", bare=True)
        userid = self.verify_ticket(cookie)
        if userid is None:
            raise ApiError(401, "Authentication failed!", bare=True)
        # API tokens need no CSRF token; a ticket's write does.
        csrf = headers.get("CSRFPreventionToken", "")
        if http_method != "GET" and not self._csrf_ok(userid, csrf):
            raise ApiError(401, "Permission denied - invalid csrf token", bare=True)
        return Principal(userid=userid, token=None, privsep=False)

    def _token(self, authorization: str) -> Principal:
        value = authorization[len("PVEAPIToken") :].lstrip(" =")
        full_id, separator, secret = value.partition("=")
        userid, bang, name = full_id.partition("!")
        user = self.state.users.get(userid)
        token = user.tokens.get(name) if user is not None and bang else None
        if (
            not separator
            or user is None
            or not user.enable
            or token is None
            or not hmac.compare_digest(token.secret_sha256, digest(secret))
            or (token.expire and token.expire < time.time())
        ):
            raise ApiError(401, "Authentication failed!", bare=True)
        return Principal(userid=userid, token=name, privsep=token.privsep)

    def login(self, username: str, password: str) -> tuple[str, str]:
        """A ticket and CSRF token for a valid password, else the failed-login 401."""
        user = self.state.users.get(username)
        if (
            user is None
            or not user.enable
            or user.password_hash is None
            or not password_matches(user.password_hash, password)
        ):
            raise ApiError(401, "authentication failure")
        return self.ticket(username), self.csrf_token(username)

    def ticket(self, userid: str, now: int | None = None) -> str:
        payload = f"PVE:{userid}:{(now or int(time.time())):08X}"
        return f"{payload}::{self._sign(payload)}"

    def verify_ticket(self, ticket: str) -> str | None:
        payload, separator, signature = ticket.partition("::")
        if not separator or not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            _, userid, stamp = payload.split(":")
            issued = int(stamp, 16)
        except ValueError:
            return None
        if not 0 <= time.time() - issued <= TICKET_LIFETIME:
            return None
        user = self.state.users.get(userid)
        return userid if user is not None and user.enable else None

    def csrf_token(self, userid: str) -> str:
        stamp = f"{int(time.time()):08X}"
        return f"{stamp}:{self._sign(f'{stamp}:{userid}')}"

    def _csrf_ok(self, userid: str, token: str) -> bool:
        stamp, _, signature = token.partition(":")
        return bool(stamp) and hmac.compare_digest(self._sign(f"{stamp}:{userid}"), signature)

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _cookie(header: str) -> str | None:
    cookies = http.cookies.SimpleCookie()
    try:
        cookies.load(header)
    except http.cookies.CookieError:
        return None
    morsel = cookies.get("PVEAuthCookie")
    return morsel.value if morsel is not None else None
