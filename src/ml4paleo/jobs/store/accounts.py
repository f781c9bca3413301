"""Accounts (``ML4PALEO_AUTH=accounts``): users and their passwords, sign-in with its rate limit,
sessions that expire, and per-user API tokens.

Passwords are hashed with werkzeug's scrypt (salted, memory-hard). Session, API-token and link
secrets are 256 random bits, so the database keeps only their SHA-256: a copy of the database
signs no one in, and a look-up is one indexed equality.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from ml4paleo.errors import ArtifactNotFound, InputError, NotSignedIn, TooManyAttempts
from ml4paleo.jobs.store._base import Database, iso
from ml4paleo.jobs.tables import ApiToken, AuthSession, Job, LoginFailure, Share, ShareLink, User

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1000
LOGIN_WINDOW = 15 * 60.0
"""Seconds over which wrong passwords are counted (``Settings.login_limit`` per account and address)."""
ADDRESS_FACTOR = 6
"""An address may get this many times the per-account limit: several members behind one address."""
MAX_DELAY = 60.0
"""The longest wait the sign-in throttle asks for after a wrong password."""
TOKEN_PREFIX = "m4p_"
_HASH_METHOD = "scrypt"
_DUMMY_HASH = generate_password_hash("not a password of anyone", method=_HASH_METHOD)
"""Checked against when the user does not exist, so that timing does not tell who does."""


def throttle_wait(failures: list[float], allowed: int, now: float) -> float:
    """Seconds a sign-in must still wait after ``failures`` (times of wrong passwords, oldest
    first): none for the first ``allowed``, then 1 s after the last one, doubling with each
    further one up to :data:`MAX_DELAY`."""
    extra = len(failures) - allowed
    if extra < 0:
        return 0.0
    return max(0.0, failures[-1] + min(2.0 ** min(extra, 16), MAX_DELAY) - now)


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Viewer:
    """Who a request acts for: a user (``user_id``; an admin sees every job), or a reviewer who
    opened a share link (``link_id`` on ``link_job_id``, read-only, that job only)."""

    user_id: int | None = None
    name: str = ""
    is_admin: bool = False
    link_id: int | None = None
    link_job_id: str | None = None

    @property
    def actor(self) -> str:
        """The name the audit trail records."""
        return self.name if self.user_id is not None else f"link:{self.link_id}"


def check_user_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RULE.match(name.strip()):
        raise InputError("a user name is 1 to 64 letters, digits or . _ @ - (starting with a letter or digit); "
                         f"got {str(name)[:70]!r}")
    return name.strip()


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InputError(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


@dataclass(frozen=True)
class SignedIn:
    """A session as the web layer needs it: who, and the CSRF token its pages must send back."""

    viewer: Viewer
    csrf: str


class Accounts:
    """Users, passwords, sign-in, sessions and API tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- users (the ``ml4paleo user`` commands) ----------------------------------------------

    def add_user(self, name: str, password: str, *, admin: bool = False) -> dict[str, Any]:
        name, password = check_user_name(name), check_password(password)
        hashed = generate_password_hash(password, method=_HASH_METHOD)
        with self.db.session() as s:
            if s.scalar(select(User.id).where(User.name == name)) is not None:
                raise InputError(f"user {name!r} exists already (ml4paleo user passwd changes a password)")
            s.add(User(name=name, password_hash=hashed, is_admin=admin, created_at=time.time()))
        return {"name": name, "admin": admin}

    def remove_user(self, name: str, *, transfer_to: str | None = None) -> dict[str, Any]:
        """Remove a user with their sessions, tokens and shares. Their jobs go to ``transfer_to``,
        or are kept without an owner (admins still see them): nothing is deleted on disk."""
        with self.db.session() as s:
            user = self._user(s, name)
            heir = self._user(s, transfer_to).id if transfer_to else None
            if heir == user.id:
                raise InputError("--transfer-to must name another user")
            moved = s.execute(update(Job).where(Job.owner_id == user.id).values(owner_id=heir)).rowcount
            for table, column in ((AuthSession, AuthSession.user_id), (ApiToken, ApiToken.user_id),
                                  (Share, Share.user_id)):
                s.execute(delete(table).where(column == user.id))
            s.delete(user)
            return {"name": name, "jobs": moved, "transferred_to": transfer_to}

    def set_password(self, name: str, password: str, *, revoke_tokens: bool = False) -> dict[str, int]:
        """A new password; the user's sessions end (whoever knew the old password is signed out),
        and with ``revoke_tokens`` their API tokens too (a script's token may be all a thief kept).
        Says how many of each ended."""
        hashed = generate_password_hash(check_password(password), method=_HASH_METHOD)
        with self.db.session() as s:
            user = self._user(s, name)
            user.password_hash = hashed
            sessions = s.execute(delete(AuthSession).where(AuthSession.user_id == user.id)).rowcount
            tokens = s.execute(delete(ApiToken).where(ApiToken.user_id == user.id)).rowcount if revoke_tokens else 0
            s.execute(delete(LoginFailure).where(LoginFailure.account == user.name))
            return {"sessions": sessions, "tokens": tokens}

    def users(self) -> list[dict[str, Any]]:
        with self.db.session() as s:
            counts = dict(s.execute(select(Job.owner_id, func.count()).group_by(Job.owner_id)).all())
            return [{"name": u.name, "admin": u.is_admin, "created_at": iso(u.created_at), "jobs": counts.get(u.id, 0)}
                    for u in s.scalars(select(User).order_by(User.name))]

    def user_id(self, name: str) -> int:
        with self.db.session() as s:
            return self._user(s, name).id

    @staticmethod
    def _user(s, name: str | None) -> User:
        user = s.scalar(select(User).where(User.name == name)) if isinstance(name, str) else None
        if user is None:
            raise InputError(f"no user {str(name)[:70]!r}")
        return user

    # -- sign-in ---------------------------------------------------------------------------------

    def authenticate(self, name: Any, password: Any, address: str, *, limit: int, limit_address: bool = True,
                     now: float | None = None) -> Viewer:
        """The user whose name and password these are, or :class:`NotSignedIn`.

        Wrong passwords slow the next try instead of locking the account: after ``limit`` of them
        for this account from this address in :data:`LOGIN_WINDOW` (or ``ADDRESS_FACTOR`` times
        that from the address over all accounts, unless ``limit_address`` is off: a trusted proxy),
        each try waits :func:`throttle_wait` after the last wrong one, refused with
        :class:`TooManyAttempts` before the password is checked. So a stranger who knows a
        member's name cannot lock the member out from elsewhere, and the owner waits a minute at most."""
        now = time.time() if now is None else now
        account = str(name or "")[:64]
        address = (address or "")[:64]
        since = now - LOGIN_WINDOW
        with self.db.session() as s:
            s.execute(delete(LoginFailure).where(LoginFailure.at < since))
            checks = [((LoginFailure.account == account) & (LoginFailure.address == address), limit)]
            if limit_address:
                checks.append((LoginFailure.address == address, limit * ADDRESS_FACTOR))
            wait = max(throttle_wait(s.scalars(select(LoginFailure.at).where(where, LoginFailure.at >= since)
                                               .order_by(LoginFailure.at)).all(), allowed, now)
                       for where, allowed in checks)
            if wait > 0:
                seconds = math.ceil(wait)
                raise TooManyAttempts(f"too many wrong passwords; try again in {seconds} s", seconds)
            user = s.scalar(select(User).where(User.name == account))
            given = password if isinstance(password, str) else ""
            if check_password_hash(user.password_hash if user else _DUMMY_HASH, given) and user is not None:
                s.execute(delete(LoginFailure).where(LoginFailure.account == account, LoginFailure.address == address))
                return Viewer(user_id=user.id, name=user.name, is_admin=user.is_admin)
            s.add(LoginFailure(account=account, address=address, at=now))
        raise NotSignedIn("wrong user name or password")

    # -- sessions --------------------------------------------------------------------------------

    def start_session(self, *, user_id: int | None = None, link_id: int | None = None, hours: float,
                      now: float | None = None) -> tuple[str, str]:
        """A new session for a user or a share link: ``(secret for the cookie, CSRF token)``."""
        now = time.time() if now is None else now
        secret, csrf = new_secret(), secrets.token_urlsafe(24)
        with self.db.session() as s:
            s.execute(delete(AuthSession).where(AuthSession.expires_at < now))
            s.add(AuthSession(digest=digest(secret), user_id=user_id, link_id=link_id, csrf=csrf, created_at=now,
                              expires_at=now + hours * 3600.0))
        return secret, csrf

    def session(self, secret: str, *, now: float | None = None) -> SignedIn | None:
        """The live session of a cookie, or None (unknown, expired, or its link revoked)."""
        if not secret:
            return None
        now = time.time() if now is None else now
        with self.db.session() as s:
            row = s.get(AuthSession, digest(secret))
            if row is None or row.expires_at <= now:
                return None
            if row.user_id is not None:
                user = s.get(User, row.user_id)
                if user is None:
                    return None
                return SignedIn(Viewer(user_id=user.id, name=user.name, is_admin=user.is_admin), row.csrf)
            link = s.get(ShareLink, row.link_id) if row.link_id is not None else None
            return SignedIn(Viewer(link_id=link.id, link_job_id=link.job_id), row.csrf) if link else None

    def end_session(self, secret: str) -> None:
        with self.db.session() as s:
            s.execute(delete(AuthSession).where(AuthSession.digest == digest(secret or "")))

    # -- API tokens ------------------------------------------------------------------------------

    def new_token(self, user_id: int, name: Any) -> dict[str, Any]:
        """A new API token; its secret is in the answer only (it is not stored)."""
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise InputError("a token needs a name of 1 to 100 characters (what it is for)")
        secret = new_secret(TOKEN_PREFIX)
        with self.db.session() as s:
            row = ApiToken(user_id=user_id, name=name.strip(), digest=digest(secret), created_at=time.time())
            s.add(row)
            s.flush()
            return {**_token_doc(row), "token": secret}

    def tokens(self, user_id: int) -> list[dict[str, Any]]:
        with self.db.session() as s:
            return [_token_doc(t) for t in s.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                                                     .order_by(ApiToken.id))]

    def revoke_token(self, user_id: int, token_id: int) -> None:
        with self.db.session() as s:
            if not s.execute(delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)).rowcount:
                raise ArtifactNotFound(f"no token {token_id} of yours")

    def token_viewer(self, secret: str, *, now: float | None = None) -> Viewer | None:
        """The user an API token acts for, or None; notes when it was last used (once a minute at most)."""
        if not secret:
            return None
        now = time.time() if now is None else now
        with self.db.session() as s:
            token = s.scalar(select(ApiToken).where(ApiToken.digest == digest(secret)))
            user = s.get(User, token.user_id) if token else None
            if user is None:
                return None
            if token.last_used_at is None or now - token.last_used_at > 60:
                token.last_used_at = now
            return Viewer(user_id=user.id, name=user.name, is_admin=user.is_admin)


def _token_doc(t: ApiToken) -> dict[str, Any]:
    return {"token_id": t.id, "name": t.name, "created_at": iso(t.created_at), "last_used_at": iso(t.last_used_at)}
