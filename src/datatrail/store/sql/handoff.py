"""Events of several processes of one store meet in one process's write transactions.

A transaction costs about as much as the events it holds (SQLite: BEGIN
IMMEDIATE, the reads every transaction makes, the commit's WAL pages;
PostgreSQL: some twenty statements, the advisory write lock and one fsync), so
the server groups the events that arrive together (ingest.py). Each ``datatrail
serve`` worker is its own process and groups only its own events, about half
of them with two workers. With ``$DATATRAIL_WRITER_HANDOFF=1`` (``datatrail
serve --workers N`` sets it) the processes of one store on one host elect a
*leader*: the first to bind a Linux abstract socket named after the store (a
SQLite file; a PostgreSQL database's host, port, name and user, never its
password: :func:`store_socket_name`) and the user. The others (*followers*) send each event over that socket; the
leader queues it for its writer thread beside its own, and sends back each
event's own result or error once committed. The event is parsed and hashed by
the leader, in the thread that reads its follower's socket: pickling the parsed
form would cost more than parsing it (an event that does not parse is then the
error its future carries).

Nothing is lost or doubled when a process dies. A follower answers its client
only with the leader's answer, sent after the commit. If the leader goes, the
kernel frees the name and closes the sockets: the follower stores every event
still waiting for an answer itself (one the leader had committed is then found
by its hash, a duplicate, as for a client's retry), and the next event elects
a new leader. If a follower goes, the leader stores its events all the same
and nobody was told they were stored. Only a peer of the same user is accepted
(``SO_PEERCRED``) in either direction, so pickled events cross no trust
boundary; where any of this is unavailable (not Linux, another user holding the
name) each process writes for itself, as without the hand-off. On PostgreSQL the
processes of other hosts (or of another store URI naming the same database)
lead their own groups: the advisory write lock still orders the transactions.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import pickle
import socket
import struct
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from sqlalchemy.engine import make_url

from datatrail.core.changes import Event
from datatrail.core.errors import DatatrailError
from datatrail.core.results import IngestResult
from datatrail.store.sql.engine import sqlite_path

ENV = "DATATRAIL_WRITER_HANDOFF"
_HEADER = struct.Struct("!I")
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
# A peer that takes no message for this long (stopped, or stuck) is given up: a stuck follower must not
# stop the leader's writer, nor a stuck leader a follower's event loop. Reads wait as long as they need.
SEND_TIMEOUT_S = 10


def _bounded_sends(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", SEND_TIMEOUT_S, 0))
    return sock


class Sent(NamedTuple):
    """An event as a follower sends it: parsed by the leader (cheaper than pickling its parsed form)."""

    event: Event
    actor: str
    action: str
    detail: bool
    origin: str | None


# The leader queues a follower's event for its writer and returns the future of its answer.
Accept = Callable[[Sent], "Future[IngestResult]"]
# A follower stores an event itself once the leader is gone, answering the future it handed out.
StoreHere = Callable[[Sent, "Future[IngestResult]"], None]


def handoff_enabled() -> bool:
    """Whether this process hands its events to the store's leader (``$DATATRAIL_WRITER_HANDOFF=1``, Linux)."""
    return os.environ.get(ENV) == "1" and sys.platform == "linux"


def _named(key: str) -> bytes:
    return b"\0datatrail-writer-" + hashlib.sha256(f"{os.getuid()}:{key}".encode()).hexdigest()[:32].encode()


def socket_name(database: Path) -> bytes:
    """The abstract socket's name for one SQLite file and user (no file: the kernel frees it with its process)."""
    return _named(str(database.resolve()))


def store_socket_name(uri: str) -> bytes | None:
    """The abstract socket's name for a store's URI and this user; None where there is no hand-off.

    A SQLite file by its resolved path; a PostgreSQL database by host, port, database and
    user (libpq's environment fills what the URI leaves out), never by its password.
    """
    path = sqlite_path(uri)
    if path is not None:
        return socket_name(path)
    url = make_url(uri)
    if url.get_backend_name() != "postgresql":
        return None
    env = os.environ.get

    def query(name: str) -> str | None:
        value = url.query.get(name)
        return value if isinstance(value, str) or value is None else value[0]

    host = url.host or query("host") or env("PGHOST") or ""
    port = url.port or query("port") or env("PGPORT") or 5432
    database = url.database or query("dbname") or env("PGDATABASE") or ""
    user = url.username or query("user") or env("PGUSER") or ""
    return _named(f"postgresql:{host}:{port}:{database}:{user}")


def _same_user(sock: socket.socket) -> bool:
    """The peer runs as this process's user (its events are stored as if sent by this process)."""
    try:
        _pid, uid, _gid = _CREDENTIALS.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size))
    except OSError:
        return False
    return bool(uid == os.getuid())


def _frame(value: object) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def _read_frame(stream: BinaryIO) -> Any:
    """The next pickled value, or EOFError once the peer has gone."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # a peer of this very user (_same_user): as trusted as this process


def _answer(seq: int, future: Future[IngestResult]) -> tuple[int, bool, object]:
    error = future.exception()
    if error is None:
        return (seq, True, future.result())
    try:
        pickle.dumps(error)
    except Exception:  # an error that does not pickle: its message, as a DatatrailError
        return (seq, False, DatatrailError(str(error) or type(error).__name__))
    return (seq, False, error)


class _Peer:
    """The leader's side of one follower: the answers of the group being stored, sent together."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._outbox: list[tuple[int, bool, object]] = []

    def done(self, seq: int, future: Future[IngestResult]) -> None:
        answer = _answer(seq, future)
        with self._lock:
            self._outbox.append(answer)

    def flush(self) -> None:
        with self._lock:
            answers, self._outbox = self._outbox, []
            if answers:
                try:
                    self._conn.sendall(_frame(answers))
                except OSError:
                    # Gone: its events are stored all the same, and nobody was told. Stuck: cut off, so
                    # that it stores what it waits for itself once it wakes (found stored, by its hash).
                    with contextlib.suppress(OSError):
                        self._conn.shutdown(socket.SHUT_RDWR)


class _Link:
    """A follower's connection to the leader: events out, answers in, matched by a sequence number."""

    def __init__(self, sock: socket.socket, store_here: StoreHere) -> None:
        self._sock = sock
        self._store_here = store_here
        self._lock = threading.Lock()  # one frame at a time on the socket, and the waiting table
        self._waiting: dict[int, tuple[Sent, Future[IngestResult]]] = {}
        self._seq = itertools.count()
        self.broken = False
        threading.Thread(target=self._read, name="datatrail-handoff-answers", daemon=True).start()

    def send(self, sent: Sent) -> Future[IngestResult] | None:
        """The event sent to the leader, and a future of its answer; None if the leader has gone."""
        future: Future[IngestResult] = Future()
        seq = next(self._seq)
        data = _frame((seq, sent))
        with self._lock:
            if self.broken:
                return None
            self._waiting[seq] = (sent, future)
            try:
                self._sock.sendall(data)
                return future
            except OSError:
                del self._waiting[seq]
        self.close()
        return None

    def _read(self) -> None:
        stream = self._sock.makefile("rb")
        try:
            while True:
                answers = _read_frame(stream)
                with self._lock:
                    entries = [(self._waiting.pop(seq, None), ok, value) for seq, ok, value in answers]
                for entry, ok, value in entries:
                    if entry is not None:
                        future = entry[1]
                        if ok:
                            future.set_result(value)
                        else:
                            future.set_exception(value)
        except (OSError, EOFError, ValueError, pickle.UnpicklingError):
            pass  # the leader has gone (or this link was closed)
        finally:
            stream.close()
            self.close()

    def close(self) -> None:
        """Stop using the leader; every event still waiting for its answer is stored here."""
        with self._lock:
            self.broken = True
            waiting, self._waiting = list(self._waiting.values()), {}
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        for sent, future in waiting:
            self._store_here(sent, future)


class Handoff:
    """This process's part in a store's hand-off: the leader's socket, or a follower's link to it."""

    def __init__(self, name: bytes, accept: Accept, store_here: StoreHere) -> None:
        self._name = name
        self._accept = accept
        self._store_here = store_here
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._link: _Link | None = None
        self._peers: dict[socket.socket, _Peer] = {}
        self._off = False  # closed, or another user holds the name: every event is stored here

    @property
    def leading(self) -> bool:
        """This process stores the events of the others (or writes alone)."""
        return self._listener is not None or self._off

    def forward(self, sent: Sent) -> Future[IngestResult] | None:
        """The event sent to the leader and a future of its answer; None when this process stores it."""
        link = self._link
        if link is None or link.broken:
            link = self._elect()
            if link is None:
                return None
        return link.send(sent)

    def _elect(self) -> _Link | None:
        """Lead if nobody does; otherwise a link to the leader (None: this process stores its event)."""
        with self._lock:
            if self._off or self._listener is not None:
                return None
            if self._link is not None and not self._link.broken:
                return self._link
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                listener.bind(self._name)
            except OSError:  # taken: another process leads
                listener.close()
                return self._connect()
            listener.listen(64)
            self._listener = listener
            threading.Thread(target=self._serve, args=(listener,), name="datatrail-handoff", daemon=True).start()
            return None

    def _connect(self) -> _Link | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self._name)
        except OSError:  # the leader has just gone: this event is stored here, the next one elects
            sock.close()
            return None
        if not _same_user(sock):
            sock.close()
            self._off = True
            return None
        self._link = _Link(_bounded_sends(sock), self._store_here)
        return self._link

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            if not _same_user(conn):
                conn.close()
                continue
            if self._off:
                conn.close()
                return
            _bounded_sends(conn)
            threading.Thread(target=self._follower, args=(conn,), name="datatrail-handoff-peer", daemon=True).start()

    def _follower(self, conn: socket.socket) -> None:
        """One follower's events into this process's queue; their answers go back in :meth:`flush`."""
        peer = _Peer(conn)
        with self._lock:
            self._peers[conn] = peer
        stream = conn.makefile("rb")
        try:
            while True:
                seq, sent = _read_frame(stream)
                future = self._accept(sent)
                future.add_done_callback(partial(peer.done, seq))
                if future.done():  # refused before it was queued (it does not parse): no group will send it
                    peer.flush()
        except (OSError, EOFError, ValueError, pickle.UnpicklingError):
            pass
        finally:
            stream.close()
            with self._lock:
                self._peers.pop(conn, None)
            peer.flush()
            conn.close()

    def flush(self) -> None:
        """Send the answers of the group just stored: one message per follower, not one per event."""
        if self._peers:
            for peer in list(self._peers.values()):
                peer.flush()

    def stop_accepting(self) -> None:
        """Close (the store is closing): no new follower, and this process's events are stored here."""
        with self._lock:
            self._off = True
            listener, self._listener = self._listener, None
            link = self._link
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (closing alone does not)
            listener.close()
        if link is not None:
            link.close()  # what the leader has not answered yet is stored here, before the store closes

    def close(self) -> None:
        """After the store's queue is drained: the followers' connections are closed."""
        with self._lock:
            peers, self._peers = list(self._peers), {}
        for conn in peers:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
