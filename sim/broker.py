"""Start and stop a private Mosquitto from the project's own config, on a free loopback port.

Used by the tests (one broker per test session or per test), the simulator's broker faults and `make demo`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sim import process

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "local.conf"


class BrokerError(RuntimeError):
    """Mosquitto could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if found is None:
        raise BrokerError("mosquitto not found: run `make setup` (or `sudo apt-get install -y mosquitto`)")
    return found


class Broker:
    """A Mosquitto process on 127.0.0.1:port, configured from `config` plus a listener line."""

    def __init__(
        self,
        config: Path = DEFAULT_CONFIG,
        port: int | None = None,
        workdir: Path | None = None,
        persistent: bool = False,
    ):
        self.config = config
        self.persistent = persistent
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="checkpoint-mosquitto-") if workdir is None else None
        self.workdir = Path(self._tmp.name) if self._tmp else Path(workdir)  # type: ignore[arg-type]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        text = self.config.read_text()
        text += f"\nlistener {self.port} 127.0.0.1\n"
        if self.persistent:
            # Sessions and queued QoS 1 messages survive a clean restart (saved at shutdown); not a SIGKILL.
            text += f"persistence true\npersistence_location {self.workdir}/\n"
        conf.write_text(text)
        return conf

    def start(self, timeout: float = 10.0) -> Broker:
        if self.proc is not None and self.proc.poll() is None:
            return self
        conf = self._write_config()
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self.proc.returncode}; see {self.workdir}/mosquitto.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)  # polling for the port to open, not synchronising a test
        self.stop()
        raise BrokerError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        process.stop(self.proc)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash: no persistence is saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
