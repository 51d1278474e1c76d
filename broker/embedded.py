"""An embedded pure-Python broker (amqtt) for `yiwang up` on a machine without Mosquitto.

Measured here at ~1.4k msgs/s with 20,000 QoS 1 messages delivered intact: plenty for the simulated
pilot community, not for production. It keeps no state across restarts; Mosquitto does.

It enforces the same accounts as Mosquitto: the password file and the per-role ACL of
``broker/accounts.py`` (read through two small amqtt plugins below, so one account store serves both
brokers and an account added while it runs takes effect at the next connect), and binds client ids
to accounts as Mosquitto's ``use_username_as_clientid`` does (broker/mosquitto.py says why):
:class:`AccountBroker` checks the login before it touches any session, keys the session by the user
name, and refuses a last will the account may not publish.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker.accounts import AccountStore, permissions

log = logging.getLogger(__name__)
SHARED_PREFIX = "$share/"


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


class LoginRefused(AMQTTError):  # type: ignore[misc]
    """A CONNECT refused before any session was looked at."""


class AccountBroker(Broker):  # type: ignore[misc]
    """amqtt with sessions bound to accounts.

    amqtt itself keys sessions by the client id the client sends and, with clean session, deletes the
    stored one before it checks the login; a connected client is taken over before the login too.
    Here the login comes first, and the session is the user name's, so no account can reach another's.
    """

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            connect = BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
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
        broker = Broker(config) if accounts_dir is None else AccountBroker(config)
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
