"""One embedded Chroma index, shared by every process that opens the store.

Chroma on disk is safe for one process only: each process keeps its own copy of the HNSW
graph in memory, and two writing the same files overwrite each other's vectors. So one
process at a time *hosts* the index. It holds the store's lock (``<store>/.lock``, an
``flock`` the kernel drops when the process ends, however it ends), opens Chroma itself, and
answers the other processes' calls on a Unix socket (no network port; the messages are
``multiprocessing.connection`` frames). Each connection starts with a challenge-response
(``multiprocessing.connection``'s HMAC handshake, the one behind ``authkey=``) on a fresh key
that the host writes, with the socket's address, into the lock file (0600 in the 0700 store
folder: only the store's owner can read it); the key itself never crosses the socket. Every other process is a *guest* and forwards each
call to the host, with time limits: a stopped host cannot hang its guests.

When the host goes (it closes the store, exits, or is killed), the first guest to notice
takes the lock and hosts from then on; the others find the new address in the lock file.
Every call is idempotent (upserts, deletes, reads), so a call cut off by a handover is
simply made again. A process on its own is the host: its calls go straight to Chroma.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from multiprocessing import AuthenticationError
from multiprocessing.connection import (
    Connection,
    answer_challenge,
    deliver_challenge,
)
from pathlib import Path
from typing import Any

from .._errors import LightMemError, StorageError, StoreInUse, StoreNotWritable
from ._contracts import VectorFilter
from .chroma import ChromaVectorIndex

logger = logging.getLogger("lightmem")

__all__ = ["SharedChromaIndex"]

# The VectorIndex calls a guest may forward (``close`` is each process's own business).
_CALLS = frozenset({"upsert", "query", "delete", "delete_user", "count", "reset"})
# How long a guest waits for the host's answer to one call before giving up on it.
_ANSWER_TIMEOUT_S = 120.0
# How long the host waits for a new connection's key.
_KEY_TIMEOUT_S = 10.0
# How long a guest keeps trying to reach a host (or become one) before failing a call.
_HANDOVER_TIMEOUT_S = 30.0


class _HostGone(Exception):
    """The host process closed the connection, or nobody listens at its address."""


class _Host:
    """This process's Chroma on disk, and the Unix-socket server lending it to the others.

    One per store folder per process: every :class:`SharedChromaIndex` of this process on
    that folder uses it (counted in ``users``); the last to close shuts it down."""

    def __init__(self, store: Path, lock_fd: int) -> None:
        self.store = store
        self.users = 0
        self.lock_fd = lock_fd
        self._indexes: dict[str, ChromaVectorIndex] = {}
        self._indexes_lock = threading.Lock()
        self._key = secrets.token_bytes(32)
        self._address = _socket_path(store)
        with suppress(FileNotFoundError):
            os.unlink(self._address)  # a dead host's: we hold the lock, it cannot be alive
        # A plain socket, not multiprocessing's Listener: its exit-time finalizer unlinks the
        # socket file and prints a traceback when the store folder is already gone.
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(self._address)
            self._listener.listen(64)
        except OSError:
            self._listener.close()
            raise
        self._connections: set[Connection] = set()
        self._handlers: set[threading.Thread] = set()
        self._state_lock = threading.Lock()
        self._closing = False
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, f"{os.getpid()} {self._key.hex()} {self._address}\n".encode(), 0)
        self._acceptor = threading.Thread(
            target=self._accept, name="lightmem-vector-host", daemon=True
        )
        self._acceptor.start()

    def index(self, prefix: str) -> ChromaVectorIndex:
        """The Chroma index of one collection prefix, opened on first use."""
        with self._indexes_lock:
            index = self._indexes.get(prefix)
            if index is None:
                index = ChromaVectorIndex(
                    path=self.store / "chroma", prefix=prefix, sole_client=True
                )
                self._indexes[prefix] = index
            return index

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
                # The handshake must not hold a thread forever: a caller that does not
                # answer in time is dropped (the limit is lifted once it has answered).
                _receive_timeout(sock, _KEY_TIMEOUT_S)
                connection = Connection(sock.detach())
            except Exception:  # a caller that hung up at once, or the listener closed
                if self._closing:
                    return
                continue
            with self._state_lock:
                if self._closing:
                    connection.close()
                    return
                handler = threading.Thread(
                    target=self._serve, args=(connection,), name="lightmem-vector-call", daemon=True
                )
                self._connections.add(connection)
                self._handlers.add(handler)
            handler.start()

    def _serve(self, connection: Connection) -> None:
        try:
            # A caller that can answer the challenge read the lock file, so it is the
            # store's owner (the folder's permissions already keep everyone else out).
            try:
                deliver_challenge(connection, self._key)
            except (AuthenticationError, OSError, EOFError):
                return
            with socket.socket(fileno=os.dup(connection.fileno())) as sock:
                _receive_timeout(sock, 0.0)
            while True:
                prefix, name, args, kwargs = connection.recv()
                try:
                    if name not in _CALLS:
                        raise StorageError(f"no vector index call named {name!r}")
                    reply: tuple[str, Any] = (
                        "ok",
                        getattr(self.index(prefix), name)(*args, **kwargs),
                    )
                except LightMemError as err:
                    reply = ("error", err)
                except Exception as err:  # never kill the handler: the guest gets a typed error
                    reply = (
                        "error",
                        StorageError(f"vector index error: {type(err).__name__}: {err}"),
                    )
                connection.send(reply)
        except (EOFError, OSError, ValueError, TypeError):  # the guest went, or we are closing
            return
        finally:
            connection.close()
            with self._state_lock:
                self._connections.discard(connection)
                self._handlers.discard(threading.current_thread())

    def close(self) -> None:
        """Stop serving (calls in progress finish first), close Chroma, release the lock."""
        with self._state_lock:
            self._closing = True
            connections, handlers = list(self._connections), list(self._handlers)
        # accept() does not notice a closed listener: wake it with a connection of our own.
        with suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
            wake.connect(self._address)
        self._acceptor.join(timeout=10)
        self._listener.close()
        with suppress(OSError):  # gone already if the store folder was removed
            os.unlink(self._address)
        for connection in connections:  # wake handlers waiting for their next call
            _shut_down(connection)
        for handler in handlers:
            handler.join(timeout=_ANSWER_TIMEOUT_S)
        with self._indexes_lock:
            for index in self._indexes.values():
                index.close()
            self._indexes.clear()
        os.close(self.lock_fd)  # releases the lock: a guest may host now


def _receive_timeout(sock: socket.socket, seconds: float) -> None:
    """How long a read on the socket may wait (0: for ever). Set on the socket itself, in
    the kernel: the frames are read with read(2), which Python's own timeouts do not
    govern."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)


def _shut_down(connection: Connection) -> None:
    """Shut a connection's socket down, so a thread blocked reading it returns."""
    with suppress(OSError), socket.socket(fileno=os.dup(connection.fileno())) as sock:
        sock.shutdown(socket.SHUT_RDWR)


class _Guest:
    """Calls forwarded to the host process, on one connection per calling thread."""

    def __init__(self, address: str, key: bytes, pid: str, timeout_s: float) -> None:
        self.address, self._key, self.pid, self.timeout_s = address, key, pid, timeout_s
        self._local = threading.local()
        self._all: list[Connection] = []
        self._all_lock = threading.Lock()

    def call(self, prefix: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        connection = self._connection()
        try:
            connection.send((prefix, name, args, kwargs))
            answered = connection.poll(self.timeout_s)
        except (BlockingIOError, TimeoutError):  # the send timed out: nobody reads
            answered = False
        except OSError as err:
            self._drop(connection)
            raise _HostGone from err
        if not answered:
            self._drop(connection)
            raise self._not_answering()
        try:
            status, value = connection.recv()
        except (EOFError, OSError) as err:
            self._drop(connection)
            raise _HostGone from err
        if status == "error":
            raise value
        return value

    def _not_answering(self) -> StoreInUse:
        return StoreInUse(
            f"the process hosting this store's vector index (pid {self.pid}) did not answer "
            f"within {self.timeout_s:g}s; is it stopped?"
        )

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                # A send (or a connect) to a stopped host gives up too, not only a wait for
                # its answer. Set on the socket itself: the frames are written with write(2).
                seconds = int(self.timeout_s)
                microseconds = int((self.timeout_s - seconds) * 1e6)
                timeval = struct.pack("ll", seconds, microseconds)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
                sock.connect(self.address)
                _receive_timeout(sock, self.timeout_s)  # a stopped host cannot answer
                connection = Connection(sock.detach())
                answer_challenge(connection, self._key)
                with socket.socket(fileno=os.dup(connection.fileno())) as plain:
                    _receive_timeout(plain, 0.0)  # answers are waited for with poll()
            except (BlockingIOError, TimeoutError):  # connect timed out: nobody accepts
                sock.close()
                raise self._not_answering() from None
            except AuthenticationError as err:  # a host whose key is not the lock file's
                sock.close()
                raise _HostGone from err
            except OSError as err:  # refused, reset, or nobody there
                sock.close()
                raise _HostGone from err
            self._local.connection = connection
            with self._all_lock:
                self._all.append(connection)
        return connection

    # Each connection is closed by exactly one thread: whichever takes it out of ``_all``.
    # Two threads closing one Connection at once close its descriptor twice (EBADF, or worse,
    # a descriptor another thread has just been given).

    def _drop(self, connection: Connection) -> None:
        self._local.connection = None
        with self._all_lock:
            owned = connection in self._all
            if owned:
                self._all.remove(connection)
        if owned:
            with suppress(OSError):
                connection.close()

    def close(self) -> None:
        with self._all_lock:
            connections, self._all = self._all, []
        for connection in connections:
            with suppress(OSError):
                connection.close()


# Hosts of this process, by store folder: instances on one folder share one Chroma client.
_HOSTS: dict[Path, _Host] = {}
_HOSTS_LOCK = threading.Lock()


def _forget_hosts_in_child() -> None:
    """A forked child has the parent's hosts but not their threads: it must not pass for
    one. Closing its copies of the lock files leaves the parent's locks in place."""
    global _HOSTS_LOCK
    _HOSTS_LOCK = threading.Lock()
    for host in _HOSTS.values():
        with suppress(OSError):
            os.close(host.lock_fd)
    _HOSTS.clear()


os.register_at_fork(after_in_child=_forget_hosts_in_child)


class SharedChromaIndex:
    """The :class:`~lightmem_core.store.VectorIndex` of an embedded store: Chroma on disk in
    ``<store>/chroma``, hosted by one process and shared with the others."""

    def __init__(
        self,
        store: str | os.PathLike[str],
        *,
        prefix: str = "lightmem",
        answer_timeout_s: float = _ANSWER_TIMEOUT_S,
    ) -> None:
        """``answer_timeout_s``: how long a guest waits for the host's answer to one call."""
        self.store = Path(store).resolve()
        self.prefix = prefix
        self._answer_timeout_s = answer_timeout_s
        self._role_lock = threading.Lock()
        self._host: _Host | None = None
        self._guest: _Guest | None = None
        self._closed = False
        self._settle(None)

    @property
    def hosting(self) -> bool:
        """Whether this process hosts the index (holds Chroma) rather than forwarding to one."""
        return self._host is not None

    # --- roles ----------------------------------------------------------------------------

    def _settle(self, gone: _Guest | None) -> None:
        """Become the host, or a guest of the current one. ``gone``: the guest whose host
        stopped answering (nothing changes if another thread has settled already)."""
        with self._role_lock:
            if self._closed:
                raise StorageError("the vector index is closed")
            if self._host is not None or self._guest is not gone:
                return
            if gone is not None:
                gone.close()
                self._guest = None
            self._host = _take_host(self.store)
            if self._host is None:
                self._guest = _read_guest(self.store, self._answer_timeout_s)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + _HANDOVER_TIMEOUT_S
        pause = 0.02
        while True:
            host, guest = self._host, self._guest
            if host is not None:
                return getattr(host.index(self.prefix), name)(*args, **kwargs)
            try:
                if guest is not None:
                    return guest.call(self.prefix, name, args, kwargs)
            except _HostGone:
                pass
            # No host answers: it is going away, or another process is starting to host.
            if time.monotonic() > deadline:
                raise StorageError(
                    f"no process hosts the vector index of {self.store} (waited "
                    f"{_HANDOVER_TIMEOUT_S:g}s for one); see the lightmem log of the others"
                )
            self._settle(guest)
            if self._host is None:
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    # --- the VectorIndex calls --------------------------------------------------------------

    # The arguments go as they are: the host's ChromaVectorIndex converts them (once).

    def upsert(
        self,
        user_id: str,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        self._call("upsert", user_id, ids, embeddings, metadatas)

    def query(
        self,
        user_id: str,
        embedding: Sequence[float],
        *,
        k: int,
        where: VectorFilter | None = None,
    ) -> list[tuple[str, float]]:
        result: list[tuple[str, float]] = self._call("query", user_id, embedding, k=k, where=where)
        return result

    def delete(self, user_id: str, ids: Sequence[str]) -> None:
        self._call("delete", user_id, ids)

    def delete_user(self, user_id: str) -> int:
        return int(self._call("delete_user", user_id))

    def erasure_residue(self) -> tuple[str, ...]:
        return ()  # the host scrubs the folder when it drops a user (ChromaVectorIndex)

    def count(self, user_id: str) -> int:
        return int(self._call("count", user_id))

    def reset(self) -> None:
        self._call("reset")

    def close(self) -> None:
        with self._role_lock:
            if self._closed:
                return
            self._closed = True
            host, guest = self._host, self._guest
            self._host = self._guest = None
        if guest is not None:
            guest.close()
        if host is not None:
            with _HOSTS_LOCK:
                host.users -= 1
                last = host.users == 0
                if last:
                    del _HOSTS[host.store]
            if last:
                host.close()


def _take_host(store: Path) -> _Host | None:
    """This process's host of ``store``: the existing one, or a new one if the lock is free;
    ``None`` while another process holds it."""
    import fcntl

    with _HOSTS_LOCK:
        host = _HOSTS.get(store)
        if host is None:
            lock_path = store / ".lock"
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as err:
                raise StoreNotWritable(f"cannot create the lock file {lock_path}: {err}") from err
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return None
            try:
                host = _Host(store, fd)
            except BaseException:
                os.close(fd)
                raise
            _HOSTS[store] = host
            logger.debug("lightmem: this process hosts the vector index of %s", store)
        host.users += 1
        return host


def _read_guest(store: Path, timeout_s: float) -> _Guest | None:
    """A guest of the host named in the lock file; ``None`` while the file is being written
    (or names nobody yet): the caller retries."""
    try:
        pid, key, address = (store / ".lock").read_text().rstrip("\n").split(" ", 2)
        return _Guest(address, bytes.fromhex(key), pid, timeout_s)
    except (OSError, ValueError):
        return None


# Unix socket paths are short (108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100


def _socket_path(store: Path) -> str:
    """Where the host listens: in the store folder when the path is short enough, else in a
    folder of this user's own under the temporary directory."""
    path = store / ".vectors.sock"
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return str(path)
    folder = Path(tempfile.gettempdir()) / f"lightmem-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise StorageError(f"{folder} must belong to this user and be private (0700)")
    name = hashlib.sha256(os.fsencode(store)).hexdigest()[:24]
    return str(folder / f"{name}.sock")
