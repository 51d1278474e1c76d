"""An embedded pure-Python broker (amqtt) for `yiwang up` on a machine without Mosquitto.

Measured here at ~1.4k msgs/s with 20,000 QoS 1 messages delivered intact: plenty for the simulated
pilot community, not for production. It keeps no state across restarts; Mosquitto does.

It enforces the same accounts as Mosquitto: the password file and the per-role ACL of
``broker/accounts.py`` (read through two small amqtt plugins below, so one account store serves both
brokers and an account added while it runs takes effect at the next connect), and binds client ids
to accounts as Mosquitto's ``use_username_as_clientid`` does (broker/mosquitto.py says why):
:class:`AccountBroker` checks the login before it touches any session, keys the session by the user
name, and refuses a last will the account may not publish. Both brokers disconnect a client that
sends a packet larger than Mosquitto's ``max_packet_size`` (:class:`PacketSizeLimit`). A QoS 1
message a persistent session has not acknowledged stays in the session until it is
(:class:`KeepUnackedHandler`), and what it acknowledged to a publisher is sent on even when the
publisher disconnects or reconnects at once (:class:`DeliveringBroker`), as Mosquitto does both.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, StreamWriterAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import OUTGOING, Session

from broker.accounts import AccountStore, permissions
from broker.mosquitto import MosquittoConfig

log = logging.getLogger(__name__)
SHARED_PREFIX = "$share/"


def _mosquitto_max_packet_size() -> int:
    """Mosquitto's own limit, read from its configuration's default so the two brokers cannot drift."""
    default = next(f.default for f in fields(MosquittoConfig) if f.name == "max_packet_size")
    if not isinstance(default, int):
        raise TypeError("MosquittoConfig.max_packet_size has no integer default")
    return default


MAX_PACKET_BYTES = _mosquitto_max_packet_size()
MAX_FIXED_HEADER_BYTES = 5  # the packet type byte and at most four bytes of remaining length


def amqtt_config(host: str, port: int, *, accounts_dir: Path | None) -> dict[str, Any]:
    """Anonymous only when no account directory is given (a throw-away benchmark broker)."""
    plugins: dict[str, Any]
    if accounts_dir is None:
        plugins = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    else:
        settings = {"accounts_dir": str(accounts_dir)}
        plugins = {f"{__name__}.AccountAuthPlugin": settings, f"{__name__}.AccountAclPlugin": settings}
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 500}},
        "plugins": plugins,
    }


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT matching of ``topic`` (a name or, for subscriptions, a filter) against an ACL ``pattern``.

    A filter matches only if every topic it can receive is covered, so ``yiwang/v1/#`` is not allowed
    by ``yiwang/v1/c1/#``.
    """
    want, have = topic.split("/"), pattern.split("/")
    for i, level in enumerate(have):
        if level == "#":
            return True
        if i >= len(want):
            return False
        if level == "+":
            if want[i] == "#":
                return False
            continue
        if level != want[i]:
            return False
    return len(want) == len(have)


def allowed(username: str | None, topic: str, action: Action) -> bool:
    """What Mosquitto's ``acl_file`` generated from the same account's permissions allows."""
    if username is None:
        return False
    if topic.startswith(SHARED_PREFIX):  # $share/<group>/<filter>: the filter is what is read
        topic = topic[len(SHARED_PREFIX) :].partition("/")[2]
    wanted = "write" if action == Action.PUBLISH else "read"
    return any(
        access == wanted and topic_matches(pattern, topic) for access, pattern in permissions(username)
    )


class AccountAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type hints
    """Username and password checked against the account store's password file."""

    @dataclass
    class Config:
        accounts_dir: str = ""

    async def authenticate(self, *, session: Session) -> bool | None:
        store = AccountStore(Path(self.config.accounts_dir))
        username, password = session.username, session.password
        ok = bool(username and password) and await asyncio.to_thread(store.verify, username, password)
        if not ok:
            log.warning("refused MQTT connect of client %s (user %r)", session.client_id, username)
        return ok


class AccountAclPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """Publish, subscribe and delivery checked against the account's role ACL."""

    @dataclass
    class Config:
        accounts_dir: str = ""

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        if session is None or topic is None or action is None:
            return False
        ok = allowed(session.username, topic, action)
        if not ok and action != Action.RECEIVE:
            log.warning("refused %s of %s by user %r", action.value, topic, session.username)
        return ok


class OversizePacket(AMQTTError):  # type: ignore[misc]
    """A packet over the size limit, or a remaining length no packet can have: the client is dropped."""


class PacketSizeLimit(ReaderAdapter):  # type: ignore[misc]
    """A client's byte stream that refuses a packet over ``limit`` bytes once its fixed header is read.

    amqtt reads each packet's body with exact-size reads, which buffer it whole before anything looks at
    its size: a 5 MB PUBLISH costs 5 MB of memory, a hundred of them half a gigabyte. Following the
    MQTT framing here raises as soon as the remaining length is known, before a byte of the body is read;
    amqtt then closes the connection, as Mosquitto disconnects a client over its ``max_packet_size``.
    """

    def __init__(self, inner: ReaderAdapter, limit: int, peer: str) -> None:
        self._inner, self._limit, self._peer = inner, limit, peer
        self._header = bytearray()  # the current packet's fixed header while it is being read
        self._body_left = 0

    async def read(self, n: int = -1) -> bytes:
        data: bytes = await self._inner.read(n)
        self._follow(data)
        return data

    def feed_eof(self) -> None:
        self._inner.feed_eof()

    def _follow(self, data: bytes) -> None:
        at = 0
        while at < len(data):
            if self._body_left:
                step = min(self._body_left, len(data) - at)
                self._body_left, at = self._body_left - step, at + step
                continue
            self._header.append(data[at])
            at += 1
            if len(self._header) >= 2 and not self._header[-1] & 0x80:
                self._body_left = self._check_size()
            elif len(self._header) == MAX_FIXED_HEADER_BYTES:
                self._refuse(f"a remaining length longer than four bytes ({self._header.hex()})")

    def _check_size(self) -> int:
        """The body length of the packet whose fixed header is complete; raises if it is too large."""
        remaining = sum((byte & 0x7F) << (7 * i) for i, byte in enumerate(self._header[1:]))
        size = len(self._header) + remaining
        self._header.clear()
        if size > self._limit:
            self._refuse(f"a packet of {size} bytes (the limit is {self._limit})")
        return remaining

    def _refuse(self, what: str) -> None:
        log.warning("disconnected MQTT client %s: %s", self._peer, what)
        raise OversizePacket(what)


class DeliveringBroker(Broker):  # type: ignore[misc]
    """amqtt, except that what it acknowledged to a publisher is sent on whatever the publisher does next.

    amqtt acknowledges a QoS 1 PUBLISH when it queues it in the publisher's session, and the client's
    loop takes one queued message per pass. A DISCONNECT ended that loop with the rest still queued,
    and the publisher's next clean-session connect cleared the queue: a gateway that sent its last
    readings and stopped, or reconnected at once, lost readings the broker had acknowledged.
    """

    async def _client_message_loop(self, client_session: Session, handler: BrokerProtocolHandler) -> None:
        await super()._client_message_loop(client_session, handler)
        await self._send_on_queued(client_session, handler)

    async def _delete_session(self, client_id: str) -> None:
        session, handler = self._sessions.get(client_id, (None, None))
        if session is not None:
            await self._send_on_queued(session, handler)
        await super()._delete_session(client_id)

    async def _send_on_queued(self, session: Session, handler: BrokerProtocolHandler | None) -> None:
        queued = session.delivered_message_queue
        while not queued.empty():
            message: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            message.set_result(queued.get_nowait())
            await self._handle_message_delivery(session, handler, message)


class SizeLimitedBroker(DeliveringBroker):
    """amqtt reading every TCP client through :class:`PacketSizeLimit`."""

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        host, port, *_ = writer.get_extra_info("peername") or ("?", 0)
        limited = PacketSizeLimit(StreamReaderAdapter(reader), MAX_PACKET_BYTES, f"{host}:{port}")
        await self._client_connected(listener_name, limited, StreamWriterAdapter(writer))


class KeepUnackedHandler(BrokerProtocolHandler):  # type: ignore[misc]
    """amqtt's handler, except that a QoS 1 message sent and never acknowledged stays in flight.

    amqtt forgets an outgoing QoS 1 message when its PUBACK wait ends for any reason: a consumer slower
    than 5 s, or a connection that closes first (a service that stops, or is killed, between receiving
    and acknowledging). MQTT 3.1.1 (4.4) asks the broker to send it again when the session reconnects,
    and the services acknowledge only what they committed, so forgetting it loses it. Putting it back
    into the session's in-flight map lets amqtt's own reconnect retry (``_retry_deliveries``) resend it.
    """

    async def _handle_qos1_message_flow(self, app_message: Any) -> None:
        try:
            await super()._handle_qos1_message_flow(app_message)
        except BaseException:
            outgoing = app_message.direction == OUTGOING  # amqtt calls this for QoS 1 only
            if outgoing and app_message.puback_packet is None and self.session is not None:
                self.session.inflight_out[app_message.packet_id] = app_message
            raise

    async def handle_puback(self, puback: Any) -> None:
        """A late PUBACK (after the 5 s wait) settles a kept message instead of being ignored."""
        packet_id = puback.variable_header.packet_id if puback.variable_header else None
        kept = packet_id not in self._puback_waiters and self.session is not None
        if kept and self.session.inflight_out.pop(packet_id, None) is not None:
            return
        await super().handle_puback(puback)


class LoginRefused(AMQTTError):  # type: ignore[misc]
    """A CONNECT refused before any session was looked at."""


class AccountBroker(SizeLimitedBroker):
    """amqtt with sessions bound to accounts.

    amqtt itself keys sessions by the client id the client sends and, with clean session, deletes the
    stored one before it checks the login; a connected client is taken over before the login too.
    Here the login comes first, and the session is the user name's, so no account can reach another's.
    """

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            connect = KeepUnackedHandler.init_from_connect(reader, writer, self.plugins_manager)
            handler, session = await connect
        except (AMQTTError, MQTTError, NoDataError) as err:
            log.warning("unreadable CONNECT from %s:%d: %s", remote_address, remote_port, err)
            await writer.close()
            raise AMQTTError(err) from err
        if not await self._authenticate(session, None):
            await self._refuse(writer, f"login of user {session.username!r} from {remote_address}")
        if session.will_flag and not allowed(session.username, session.will_topic or "", Action.PUBLISH):
            await self._refuse(writer, f"last will on {session.will_topic} of user {session.username!r}")
        session.client_id = session.username
        if session.clean_session:
            await self._delete_session(session.client_id)
            session.parent = 0
        elif session.client_id in self._sessions:
            kept, _ = self._sessions[session.client_id]
            for attr in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain"):
                setattr(kept, attr, getattr(session, attr))
            kept.keep_alive, kept.password = session.keep_alive, session.password
            session, kept.parent = kept, 1
        else:
            session.parent = 0
        return handler, session

    async def _refuse(self, writer: WriterAdapter, what: str) -> None:
        log.warning("refused MQTT connect: %s", what)
        await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
        await writer.close()
        raise LoginRefused(what)


def run_embedded(host: str, port: int, stop: threading.Event, accounts_dir: Path | None = None) -> None:
    async def serve() -> None:
        config = amqtt_config(host, port, accounts_dir=accounts_dir)
        broker = SizeLimitedBroker(config) if accounts_dir is None else AccountBroker(config)
        await broker.start()
        log.info(
            "embedded broker (amqtt) listening on %s:%d, %s",
            host,
            port,
            f"accounts in {accounts_dir}" if accounts_dir else "ANONYMOUS (throw-away use only)",
        )
        try:
            await asyncio.to_thread(stop.wait)
        finally:
            await broker.shutdown()

    asyncio.run(serve())
