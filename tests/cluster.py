"""A real 3-node JetStream cluster on loopback: three nats-server processes from the wheel, each
running the deployed deploy/nats/cluster.conf (with nats.conf's users), on free ports, with
routes to each other and its own temporary store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nats.js import JetStreamContext

from tests.support import ROOT, free_port
from translator.bus.embedded import EmbeddedNats

NODES = ("n1", "n2", "n3")
DEPLOY_NATS = ROOT / "deploy" / "nats"
PASSWORDS = {
    "TRANSLATOR_NATS_PASSWORD": "t-secret",
    "ZMQ_COMPAT_NATS_PASSWORD": "z-secret",
    "CLIENT_NATS_PASSWORD": "c-secret",
}


def as_user(env: dict[str, str], user: str) -> dict[str, str]:
    password = PASSWORDS[f"{user.upper()}_NATS_PASSWORD"]
    return {**env, "NATS_USER": user, "NATS_PASSWORD": password}


class NatsCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.client_ports = {name: free_port() for name in NODES}
        self.route_ports = {name: free_port() for name in NODES}
        self.nodes: dict[str, EmbeddedNats] = {}

    @property
    def url(self) -> str:
        """The server list, as NATS_URL takes it."""
        return ",".join(f"nats://127.0.0.1:{self.client_ports[n]}" for n in NODES)

    def _config(self, name: str) -> Path:
        """The deployed files (deploy/nats/cluster.conf including nats.conf), with this node's
        store, its route port and the routes on loopback, and no fixed monitoring port."""
        node = self.root / name
        node.mkdir(parents=True, exist_ok=True)
        single = (DEPLOY_NATS / "nats.conf").read_text()
        single = single.replace("store_dir: /data", f'store_dir: "{node / "jetstream"}"')
        (node / "nats.conf").write_text(single.replace("http_port: 8222", ""))
        cluster = (DEPLOY_NATS / "cluster.conf").read_text()
        cluster = cluster.replace(
            "listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{self.route_ports[name]}"
        )
        for index, other in enumerate(NODES, start=1):
            cluster = cluster.replace(
                f"nats-route://nats-{index}:6222",
                f"nats-route://127.0.0.1:{self.route_ports[other]}",
            )
        (node / "cluster.conf").write_text(cluster)
        return node / "cluster.conf"

    def start(self, name: str) -> None:
        env = {**PASSWORDS, "NATS_SERVER_NAME": name}
        node = EmbeddedNats(
            self.root / name, port=self.client_ports[name], config=self._config(name), env=env,
            timeout=60,
        )  # fmt: skip
        self.nodes[name] = node.start()

    def kill(self, name: str) -> None:
        self.nodes.pop(name).kill()

    def stop(self) -> None:
        for name in list(self.nodes):
            self.nodes.pop(name).stop()


@contextmanager
def nats_cluster(root: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(root)
    try:
        for name in NODES:
            cluster.start(name)
        yield cluster
    finally:
        cluster.stop()


async def leader(js: JetStreamContext, stream: str) -> str:
    """The name of the node that leads `stream`."""
    info = await js.stream_info(stream)
    assert info.cluster is not None, info
    assert info.cluster.leader, info
    return str(info.cluster.leader)
