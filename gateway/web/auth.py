"""Accounts, sessions, CSRF tokens and the login rate limit, all in the store (OWASP cheat sheets: password
storage, session management, CSRF prevention).

- Passwords: argon2id (argon2-cffi's defaults, RFC 9106's low-memory choice); an unknown user name is checked
  against a dummy hash so it takes as long as a wrong password.
- Sessions: a random 256-bit token in an HttpOnly, SameSite=Strict cookie; the store keeps only its keyed hash
  (HMAC-SHA256 with the secret in [web] session_secret_file), with an absolute expiry. Disabling a user or
  resetting a password ends their sessions.
- CSRF: a per-session synchronizer token, in a hidden field of every form, compared in constant time.
- Rate limit: failed logins in the last 15 minutes, per account and per address, from the store (every web
  process sees the same counts). Checked before the password is hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import argon2

from gateway import audit
from gateway.errors import ConfigError
from gateway.store.base import SessionRow, Store, UserRow

ROLES = ("medic", "coordinator", "admin")
COOKIE = "checkpoint_session"
WINDOW_MS = 15 * 60_000
MAX_FAILURES_ACCOUNT = 5
MAX_FAILURES_ADDRESS = 20
MIN_PASSWORD = 10

_hasher = argon2.PasswordHasher()
_DUMMY = _hasher.hash("not a password of anyone")


class LoginRefused(Exception):
    """Wrong credentials (`limited` False) or too many failures (`limited` True)."""

    def __init__(self, limited: bool) -> None:
        super().__init__("too many failed logins" if limited else "wrong user name or password")
        self.limited = limited


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        return False


def load_secret(path: Path) -> bytes:
    """The session key, made (32 random bytes, mode 0600) when the file does not exist."""
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        key = path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"web.session_secret_file: cannot use {path}: {e.strerror}") from None
    if len(key) < 32:
        raise ConfigError(f"web.session_secret_file: {path} holds fewer than 32 characters")
    return key.encode()


@dataclass(frozen=True)
class Visitor:
    """A logged-in user on a request: who, the session, and the sites they may see (None: all)."""

    user: UserRow
    session: SessionRow
    sites: frozenset[str] | None

    @property
    def actor(self) -> str:
        return f"{self.user.role}:{self.user.username}"

    def sees(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    def acts_on(self, site: str) -> bool:
        """Only a medic of the site changes its alerts; coordinators and admins read."""
        return self.user.role == "medic" and self.sees(site)


class Sessions:
    def __init__(self, store: Store, secret: bytes, hours: float) -> None:
        self._store, self._secret, self._ttl_ms = store, secret, int(hours * 3_600_000)

    def _id(self, token: str) -> str:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    def login(self, username: str, password: str, address: str, now: int, via: str = "page") -> tuple[str, SessionRow]:
        """A new session's cookie token and row; raises LoginRefused. Either way an audit line (gateway/audit.py)
        names the account (only if it exists), the address and `via` (page or api), never the password."""
        by_account, by_address = self._store.login_failures(username, address, now - WINDOW_MS)
        user = self._store.user(username)
        target = user.username if user else ""
        if by_account >= MAX_FAILURES_ACCOUNT or by_address >= MAX_FAILURES_ADDRESS:
            with self._store.transaction() as tx:
                audit.record(tx, now, target, "login_refused", target, address, f"{via}: too many failed logins")
            raise LoginRefused(limited=True)
        good = _verify(user.password_hash if user else _DUMMY, password)
        if user is None or not good or user.disabled:
            why = "unknown user name" if user is None else "wrong password" if not good else "account disabled"
            with self._store.transaction() as tx:
                tx.record_login_failure(username, address, now)
                tx.forget_login_failures(now - WINDOW_MS)
                audit.record(tx, now, target, "login_refused", target, address, f"{via}: {why}")
            raise LoginRefused(limited=False)
        token = secrets.token_urlsafe(32)
        row = SessionRow(self._id(token), username, secrets.token_urlsafe(32), now, now + self._ttl_ms, address)
        with self._store.transaction() as tx:
            tx.save_session(row)
            audit.record(tx, now, f"{user.role}:{username}", "login", username, address, via)
        return token, row

    def visitor(self, token: str | None, now: int) -> Visitor | None:
        if not token:
            return None
        session = self._store.session(self._id(token), now)
        user = self._store.user(session.username) if session else None
        if session is None or user is None or user.disabled:
            return None
        return Visitor(user, session, self.visible_sites(user))

    def logout(self, visitor: Visitor, address: str, now: int) -> None:
        """End the visitor's session, with an audit line."""
        with self._store.transaction() as tx:
            tx.delete_sessions(session_id=visitor.session.session_id)
            audit.record(tx, now, visitor.actor, "logout", visitor.user.username, address)

    def visible_sites(self, user: UserRow) -> frozenset[str] | None:
        if user.role == "admin":
            return None
        mine = {s for s in user.sites.split(",") if s}
        if user.county:
            mine |= {s.site for s in self._store.sites() if s.county == user.county}
        return frozenset(mine)


def csrf_ok(visitor: Visitor, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(visitor.session.csrf.encode(), (sent or "").encode())
