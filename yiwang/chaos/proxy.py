"""A loopback TCP proxy between gateways and the broker: an edge network cut, in two kinds.

- ``cut()`` closes the established connections (the peers see FIN/RST at once) and refuses new ones:
  a link whose loss both ends hear about.
- ``blackhole()`` drops the link silently, as a 5G drop does: the proxy stops reading and forwarding
  on both sides but keeps every socket open, so neither peer gets FIN or RST and each must find out by
  its MQTT keep-alive (the gateway after an unanswered PINGREQ, the broker after 1.5 × keep-alive,
  when it sends the last will). A connection opened during the blackhole is held the same way (its
  CONNECT never reaches the broker) and closed at ``restore()``; a connection that outlived the
  blackhole resumes where it stopped, with nothing lost, as TCP would after its retransmissions.

Used by the chaos harness and by the edge fault tests (tests/edge/test_spool_faults.py).
"""

from __future__ import annotations

import contextlib
import socket
import threading

from yiwang.servers import free_port

HOST = "127.0.0.1"


class TcpProxy:
    def __init__(self, target_port: int, *, target_host: str = HOST) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.accepted = 0
        """Connections accepted and forwarded to the broker (a reconnect counts once more)."""
        self.held = 0
        """Connections accepted during a blackhole, never forwarded."""
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._held: list[socket.socket] = []
        self._link_up = threading.Event()
        self._link_up.set()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.restore()

    def restore(self) -> None:
        """Heal a cut or a blackhole: forward again and accept new connections."""
        with self._lock:
            held, self._held = self._held, []
            self._link_up.set()
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
        if self._listener is not None:
            return  # a blackhole: the listener stayed open
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(16)
        self._listener = listener
        self._spawn(self._accept, listener)

    def blackhole(self) -> None:
        """Stop reading and forwarding on every connection, old and new; close nothing."""
        self._link_up.clear()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
            held, self._held = self._held, []
            self._link_up.set()  # a closed socket is not held: its pipes see the close and end
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets | set(held):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.cut()
        for thread in self._threads:
            thread.join(5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            with self._lock:
                if not self._link_up.is_set():
                    self._held.append(client)  # a SYN into the void: no CONNACK will come
                    self.held += 1
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # broker down: the gateway sees a refused session and retries
                continue
            upstream.settimeout(None)  # the connect timeout must not end an idle session
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets |= {client, upstream}
                self.accepted += 1
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                self._link_up.wait()  # blackholed: read nothing, so the peer's data stays unanswered
                data = src.recv(65536)
                if not data:
                    break
                self._link_up.wait()  # a chunk read just before the blackhole waits for the link
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
