"""Who may connect to the gateway's sockets: ZMQ_ALLOWED_PEERS (networks), checked through ZAP
(ZeroMQ's authentication protocol, RFC 27) for every connection to PULL and PUB, with the
gateway's protocol unchanged (its NULL mechanism, no credentials). PUB hands every result to
every subscriber, and results are taken from JetStream while one is there: a stranger's
subscription would read every translation, and take the ones a reconnecting gateway waits for.

pyzmq's authenticator serves ZAP; it knows single addresses, so this one checks networks and
hands the rest of the protocol to it. A refused address is counted and said once a minute."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable

import zmq
import zmq.asyncio
from pydantic import IPvAnyNetwork
from zmq.auth.asyncio import AsyncioAuthenticator

log = logging.getLogger(__name__)
DOMAIN = b"meeshy-gateway"  # a ZAP domain: without one, libzmq asks nobody for NULL sockets
_SAY_EVERY = 60.0


class Peers(AsyncioAuthenticator):
    """`Peers(context, networks).start()`, then `guard(socket)` before binding it."""

    def __init__(self, context: zmq.asyncio.Context, networks: Iterable[IPvAnyNetwork]) -> None:
        super().__init__(context, log=log)
        self.networks = tuple(networks)
        self.refused = 0  # connections refused, all addresses together
        self._said: dict[str, float] = {}  # when each address was last logged

    @staticmethod
    def guard(socket: zmq.asyncio.Socket) -> None:
        socket.setsockopt(zmq.ZAP_DOMAIN, DOMAIN)

    def allows(self, address: str) -> bool:
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
            peer = peer.ipv4_mapped
        return any(peer in network for network in self.networks)

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        if len(msg) >= 6 and not self.allows(msg[3].decode("utf-8", "replace")):
            self._refuse(msg[3].decode("utf-8", "replace"), msg[1])
            return
        await super().handle_zap_message(msg)

    def _refuse(self, address: str, request_id: bytes) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._said.get(address, -_SAY_EVERY) >= _SAY_EVERY:
            if len(self._said) > 1_000:  # many addresses: forget who was said when
                self._said.clear()
            self._said[address] = now
            log.warning(
                "zmq_compat: refused a connection from %s, not in ZMQ_ALLOWED_PEERS"
                " (%d refused so far)", address, self.refused,
            )  # fmt: skip
        self._send_zap_reply(request_id, b"400", b"address not allowed")
