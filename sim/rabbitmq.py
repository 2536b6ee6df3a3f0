"""A three-member RabbitMQ cluster on this machine, for the simulator's cluster path (`checkpoint-sim run
--cluster`, `make demo CLUSTER=3`), the tests and the benches: Debian's rabbitmq-server (3.10) with its MQTT
plugin, every member on 127.0.0.1 with ports of its own, in one temporary directory.

Members: node names `ck<N>-<letter>@localhost` (N: this process's id, so two sessions on one machine do not meet
in the shared epmd), each with its own AMQP port, MQTT port, distribution port and data directory under the
cluster's directory, configured by a rabbitmq.conf of its own (loopback listeners only; MQTT sessions in quorum
queues: `mqtt.durable_queue_type = quorum`, which 3.10's plugin schema has; an AMQP-over-TLS listener when
given a certificate). The members run the package's scripts from /usr/lib/rabbitmq/bin directly (the /usr/sbin
wrappers switch to the rabbitmq user and its /var/lib/rabbitmq), with HOME set to the cluster's directory, where
the Erlang cookie is: the packaged service, if apt started it, keeps its own cookie, node name and ports and is
not touched; only epmd (port 4369) is shared.

Joining: the members start at the same time, then each other member is joined to the first with
`rabbitmqctl stop_app; join_cluster; start_app`, one after the other (two at once can fail in mnesia). Then
the users: `guest` removed, `gateway` (AMQP: declares and reads its work queues `checkpoint-*`, writes
amq.topic) and `node` (MQTT: its session queues `mqtt-subscription-*`, amq.topic under `checkpoint.` routing
keys only). Passwords are random per cluster.

`python -m sim.rabbitmq` keeps one up until Ctrl-C and prints the commands that use it (docs/scale.md).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sim.broker import free_port

BIN = Path("/usr/lib/rabbitmq/bin")
QUEUE_PREFIX = "checkpoint-"  # the gateway's work queues (gateway/amqp.py)


@dataclass(frozen=True)
class TlsFiles:
    """The certificate every member shows on its AMQP-over-TLS listener, and the CA that signed it."""

    ca: Path
    crt: Path
    key: Path


class RabbitError(RuntimeError):
    """The cluster could not be made or started."""


@dataclass
class Member:
    name: str  # Erlang node name, e.g. ck123-a@localhost
    amqp_port: int
    mqtt_port: int
    dist_port: int
    base: Path  # data, logs, config
    amqps_port: int = 0  # AMQP over TLS (the cluster's test CA: RabbitCluster.ca)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class RabbitCluster:
    """`with RabbitCluster() as rmq:` three joined members; `rmq.members[i].mqtt_port`, `rmq.amqp_url()`.

    `startup_s`: how long start() took (members up, joined, users made)."""

    def __init__(self, size: int = 3, tls: TlsFiles | None = None) -> None:
        """`tls`: each member also listens for AMQP over TLS (`amqps_port`) with this certificate."""
        if not (BIN / "rabbitmq-server").exists():
            raise RabbitError(
                "RabbitMQ is not installed: run `make setup` (or `sudo apt-get install -y rabbitmq-server`)"
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="checkpoint-rabbitmq-")
        self.root = Path(self._tmp.name)
        tag = f"ck{os.getpid()}"
        names = [chr(97 + i) for i in range(size)]
        self.members = [
            Member(f"{tag}-{n}@localhost", free_port(), free_port(), free_port(), self.root / n, free_port())
            for n in names
        ]
        self.tls = tls
        self.gateway_password = secrets.token_hex(12)
        self.node_password = secrets.token_hex(12)
        self.startup_s = 0.0
        (self.root / ".erlang.cookie").write_text(secrets.token_hex(16))
        (self.root / ".erlang.cookie").chmod(0o600)

    # Addresses.

    @property
    def mqtt_ports(self) -> list[int]:
        return [m.mqtt_port for m in self.members]

    def amqp_url(self, members: list[int] | None = None, tls: bool = False) -> str:
        """The gateway's broker URL: every member (or the chosen ones) as host:port, comma-separated; `tls`:
        amqps:// to their TLS listeners (verify with the CA of `self.tls`)."""
        chosen = [self.members[i] for i in (members if members is not None else range(len(self.members)))]
        if tls:
            return "amqps://" + ",".join(f"127.0.0.1:{m.amqps_port}" for m in chosen) + "/"
        return "amqp://" + ",".join(f"127.0.0.1:{m.amqp_port}" for m in chosen) + "/"

    # Processes.

    def _env(self, m: Member) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HOME=str(self.root),
            RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"),  # not /etc/rabbitmq's
            RABBITMQ_NODENAME=m.name,
            RABBITMQ_USE_LONGNAME="false",
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(m.amqp_port),
            RABBITMQ_DIST_PORT=str(m.dist_port),
            RABBITMQ_BASE=str(m.base),
            RABBITMQ_MNESIA_BASE=str(m.base / "data"),
            RABBITMQ_LOG_BASE=str(m.base / "log"),
            RABBITMQ_PID_FILE=str(m.base / "server.pid"),
            RABBITMQ_CONFIG_FILE=str(m.base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(m.base / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    def _write_config(self, m: Member) -> None:
        m.base.mkdir(parents=True, exist_ok=True)
        (m.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{m.amqp_port}\n"
            f"mqtt.listeners.tcp.1 = 127.0.0.1:{m.mqtt_port}\n"
            "mqtt.allow_anonymous = false\n"
            "mqtt.durable_queue_type = quorum\n"
            "mqtt.prefetch = 100\n"
            "log.file.level = info\n"
            "log.console = false\n"
            "cluster_partition_handling = pause_minority\n" + self._tls_lines(m)
        )
        (m.base / "advanced.config").write_text("[].\n")

    def _tls_lines(self, m: Member) -> str:
        if self.tls is None:
            return ""
        return (
            f"listeners.ssl.1 = 127.0.0.1:{m.amqps_port}\n"
            f"ssl_options.cacertfile = {self.tls.ca}\n"
            f"ssl_options.certfile = {self.tls.crt}\n"
            f"ssl_options.keyfile = {self.tls.key}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
        )

    def _ctl(self, m: Member, *args: str, timeout: float = 60.0) -> str:
        done = subprocess.run([str(BIN / "rabbitmqctl"), "-n", m.name, *args], env=self._env(m), capture_output=True,
                              text=True, timeout=timeout, check=False, cwd=self.root)  # fmt: skip
        if done.returncode != 0:
            raise RabbitError(f"rabbitmqctl {' '.join(args)} on {m.name} failed ({done.returncode}): "
                              f"{(done.stderr or done.stdout).strip()[-400:]}; logs in {m.base / 'log'}")  # fmt: skip
        return done.stdout

    def start_member(self, i: int, timeout: float = 60.0) -> None:
        """Start member i (again after kill(): same data, ports and name) and wait until its app runs."""
        m = self.members[i]
        if m.running:
            return
        self._write_config(m)
        (m.base / "server.pid").unlink(missing_ok=True)
        out = open(m.base / "server.out", "ab")  # noqa: SIM115 - lives as long as the process
        m.proc = subprocess.Popen([str(BIN / "rabbitmq-server")], env=self._env(m), stdout=out, stderr=out,
                                  start_new_session=True, cwd=self.root)  # fmt: skip
        # `wait`: until the pid file is written, then until the app runs (await_startup fails before epmd knows it)
        self._ctl(m, "wait", "--timeout", str(int(timeout)), str(m.base / "server.pid"), timeout=timeout + 10)

    def kill(self, i: int) -> None:
        """SIGKILL member i's Erlang VM (and the script around it), as a crash."""
        m = self.members[i]
        if m.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(m.proc.pid, signal.SIGKILL)
        m.proc.wait(10)

    def start(self) -> RabbitCluster:
        started = time.monotonic()
        (self.root / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (self.root / "rabbitmq-env.conf").write_text("")
        first, rest = self.members[0], range(1, len(self.members))
        with ThreadPoolExecutor(len(self.members)) as pool:
            list(pool.map(self.start_member, range(len(self.members))))
        for i in rest:  # one at a time: two members joining at once can fail in mnesia's start
            self._join(self.members[i], first)
        self._users(first)
        self.startup_s = time.monotonic() - started
        return self

    def _join(self, m: Member, first: Member) -> None:
        self._ctl(m, "stop_app")
        self._ctl(m, "join_cluster", first.name)
        self._ctl(m, "start_app")

    def _users(self, m: Member) -> None:
        self._ctl(m, "delete_user", "guest")
        self._ctl(m, "add_user", "gateway", self.gateway_password)
        # configure: its work queues; write: those queues (bindings) and amq.topic; read: the queues, amq.topic
        q = f"^{QUEUE_PREFIX}.*"
        self._ctl(m, "set_permissions", "-p", "/", "gateway", q, f"{q}|^amq\\.topic$", f"{q}|^amq\\.topic$")
        self._ctl(m, "add_user", "node", self.node_password)
        s = "^mqtt-subscription-.*"
        self._ctl(m, "set_permissions", "-p", "/", "node", s, f"{s}|^amq\\.topic$", f"{s}|^amq\\.topic$")
        self._ctl(m, "set_topic_permissions", "-p", "/", "node", "amq.topic", "^checkpoint\\.", "^checkpoint\\.")

    def delete_work_queues(self) -> list[str]:
        """Delete the gateways' work queues (`checkpoint-*`) with what they hold, so what one test left unconsumed
        cannot reach the next test's gateways; returns their names. Needs every member running."""
        names = self._ctl(self.members[0], "list_queues", "name", "--quiet", "--no-table-headers").split()
        work = [n for n in names if n.startswith(QUEUE_PREFIX)]
        for name in work:
            self._ctl(self.members[0], "delete_queue", name)
        return work

    def queues(self) -> str:
        """Every queue with its type, leader, members, the members online and its messages (a failing test's
        message: which replicas a queue that refuses publishes has)."""
        alive = next(m for m in self.members if m.running)
        cols = ("name", "type", "leader", "members", "online", "messages")
        return self._ctl(alive, "list_queues", *cols, "--quiet", "--no-table-headers", timeout=30).strip()

    def log_lines(self, i: int, *words: str, last: int = 20) -> list[str]:
        """The last `last` lines of member i's log that contain any of `words` (for a failing test's message)."""
        lines: list[str] = []
        for log in sorted((self.members[i].base / "log").glob("*.log")):
            lines += [ln for ln in log.read_text(errors="replace").splitlines() if any(w in ln for w in words)]
        return lines[-last:]

    def cluster_status(self) -> str:
        alive = next(m for m in self.members if m.running)
        return self._ctl(alive, "cluster_status")

    def close(self) -> None:
        for i in range(len(self.members)):
            self.kill(i)
        shutil.rmtree(self.root, ignore_errors=True)
        self._tmp.cleanup()

    def __enter__(self) -> RabbitCluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> int:
    """`python -m sim.rabbitmq`: a cluster on this machine until Ctrl-C, with the commands that use it."""
    with RabbitCluster() as rmq:
        print(f"rabbitmq: {len(rmq.members)} members joined in {rmq.startup_s:.1f} s (data and logs in {rmq.root})")
        print(f"nodes (MQTT, user node, password {rmq.node_password}): 127.0.0.1 ports {rmq.mqtt_ports}")
        print("a gateway on the cluster path:")
        print(f"  CHECKPOINT_MQTT_USERNAME=gateway CHECKPOINT_MQTT_PASSWORD={rmq.gateway_password} \\\n"
              f"  .venv/bin/checkpoint-gateway run --broker {rmq.amqp_url()} --db sqlite:///var/c.db")  # fmt: skip
        print("Ctrl-C stops the cluster", flush=True)
        stops = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # taken by sigwait, so the cluster is closed after
        signal.sigwait(stops)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
