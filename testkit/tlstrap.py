"""A man in the middle for tests: a TLS server on a free loopback port with a certificate of the test's
choosing, recording what each client sends once the handshake completes (what an attacker holding that
certificate's key would read). A client that verifies the broker never completes the handshake with it.

    with TlsTrap(cert) as trap:
        ... point a node at trap.port ...
    trap.received   # bytes each completed session carried (empty: nothing was sent)
"""

from __future__ import annotations

import socket
import ssl
import threading
from types import TracebackType

from testkit.certs import Cert


class TlsTrap:
    def __init__(self, cert: Cert) -> None:
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(str(cert.crt), str(cert.key))
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.handshakes = 0  # completed
        self.failures: list[str] = []  # handshakes the client broke off, and why
        self.received: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._sessions: list[threading.Thread] = []

    def __enter__(self) -> TlsTrap:
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._sock.close()
        self._thread.join(5)
        for session in self._sessions:  # each ends when its client has gone (or after its 10 s timeout)
            session.join(15)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed by __exit__
            t = threading.Thread(target=self._one, args=(conn,), daemon=True)
            self._sessions.append(t)
            t.start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            tls = self._ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError) as e:
            with self._lock:
                self.failures.append(str(e))
            conn.close()
            return
        got = b""
        with self._lock:
            self.handshakes += 1
        try:
            while chunk := tls.recv(4096):
                got += chunk
        except OSError:
            pass  # the client went away
        finally:
            tls.close()
            with self._lock:
                self.received.append(got)
