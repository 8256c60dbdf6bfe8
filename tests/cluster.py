"""A real 3-node JetStream cluster on loopback: three nats-server processes from the wheel, each
running the deployed deploy/nats/cluster.conf (with nats.conf's users), on free ports, with
routes to each other and its own temporary store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nats.js import JetStreamContext

from tests.deployed_nats import DEPLOY_NATS, PASSWORDS, ROUTE_PASSWORD, local_config
from tests.support import free_port
from translator.bus.embedded import EmbeddedNats

NODES = ("n1", "n2", "n3")


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
        store, its route port on loopback, and no fixed monitoring port."""
        node = self.root / name
        node.mkdir(parents=True, exist_ok=True)
        local_config(node)
        cluster = (DEPLOY_NATS / "cluster.conf").read_text()
        cluster = cluster.replace(
            "listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{self.route_ports[name]}"
        )
        (node / "cluster.conf").write_text(cluster)
        return node / "cluster.conf"

    def routes(self, password: str = ROUTE_PASSWORD) -> dict[str, str]:
        """The routes' URLs, as the environment gives them to cluster.conf."""
        return {
            f"NATS_ROUTE_{index}": f"nats-route://route:{password}@127.0.0.1:{self.route_ports[n]}"
            for index, n in enumerate(NODES, start=1)
        }

    def start(self, name: str, route_password: str = ROUTE_PASSWORD) -> None:
        env = {
            **PASSWORDS, **self.routes(route_password), "NATS_ROUTE_PASSWORD": route_password,
            "NATS_SERVER_NAME": name,
        }  # fmt: skip
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
