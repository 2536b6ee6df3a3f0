"""Real notification receivers on loopback, for tests, benches and the demo: an HTTP webhook (what Apprise's
json:// posts) and an SMTP server (aiosmtpd, what mailto:// speaks). Each records what arrives and lets a test
wait for it on a condition (never a sleep). The webhook can hold a request open until the test releases it,
so a test can act (SIGKILL the notifier) while a delivery is in flight."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sim.broker import free_port


class _Waitable:
    def __init__(self) -> None:
        self.cond = threading.Condition()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise TimeoutError(f"{type(self).__name__}: waited {timeout} s for {what or predicate}")


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return f"{self.body.get('title', '')}\n{self.body.get('message', '')}"


class Webhook(_Waitable):
    """An HTTP server on 127.0.0.1 recording each JSON POST. `hold_from`: requests from this index on (0-based)
    are held open until `release()`; `status`: the reply code (500 makes the sender fail)."""

    def __init__(self, port: int | None = None, status: int = 200) -> None:
        super().__init__()
        self.port = port or free_port()
        self.status = status
        self.posts: list[Post] = []
        self.hold_from: int | None = None
        self.held = 0
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def start(self) -> Webhook:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.cond:
                    index = len(owner.posts)
                    owner.posts.append(Post(self.path, dict(self.headers), json.loads(raw or b"{}")))
                    hold = owner.hold_from is not None and index >= owner.hold_from
                    owner.held += hold
                    release = owner._release
                    owner.cond.notify_all()
                if hold:
                    release.wait(60)
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def hold(self, from_index: int | None) -> None:
        """Hold requests from this index on (None: none), releasing any held now."""
        self._release.set()
        with self.cond:
            self.hold_from, self.held = from_index, 0
            self._release = threading.Event()

    def release(self) -> None:
        self._release.set()

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Webhook:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler:
    def __init__(self, owner: Mailbox) -> None:
        self.owner = owner

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self.owner.cond:
            self.owner.mails.append((envelope.rcpt_tos, msg))
            self.owner.cond.notify_all()
        return "250 OK"


class Mailbox(_Waitable):
    """An SMTP server (aiosmtpd) on 127.0.0.1 that takes AUTH LOGIN/PLAIN without TLS for `user`/`password`
    and keeps every message."""

    def __init__(self, user: str, password: str) -> None:
        super().__init__()
        self.user, self.password = user, password
        self.port = free_port()
        self.mails: list[tuple[list[str], EmailMessage]] = []
        self.logins: list[str] = []
        self._controller: Controller | None = None

    def url(self, password_ref: str, to: str, sender: str = "gateway@checkpoint.example") -> str:
        return (f"mailto://{self.user}:{password_ref}@127.0.0.1:{self.port}?mode=insecure&from={sender}"
                f"&to={to}")  # fmt: skip

    def _auth(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == self.user
        ok = ok and data.password.decode() == self.password
        self.logins.append(data.login.decode() if isinstance(data, LoginPassword) else "?")
        return AuthResult(success=ok, handled=False)

    def start(self) -> Mailbox:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                      authenticator=self._auth, auth_require_tls=False)  # fmt: skip
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def texts(self) -> list[str]:
        """Subject and plain-text body of each mail."""
        out = []
        for _, msg in self.mails:
            part = msg.get_body(preferencelist=("plain",))
            out.append(f"{msg['Subject']}\n{part.get_content() if part is not None else ''}")
        return out

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
