"""The asyncio TCP server of the terminal host.

One connection carries frames one after another (a terminal never has two requests in
flight): read the 2-byte length, read the frame, decode, answer, repeat. Limits, each a
named constant in :class:`HostLimits`:

* every read has a timeout: ``idle_timeout_s`` for the first bytes of the next frame,
  ``read_timeout_s`` for the rest of a frame once it started; writes ``write_timeout_s``;
* a declared length outside ``FRAME_SIZE_BYTES_MIN..FRAME_SIZE_BYTES_MAX`` closes the
  connection at once (the stream cannot be resynchronised);
* at most ``connections_max`` connections, and at most ``connections_per_peer_max`` from
  one client address (so one client cannot hold them all): one more is closed as soon as
  it is accepted, counted in :class:`HostStats` and logged once per burst;
* at most ``frames_per_connection_max`` frames per connection;
* service calls run in worker threads (``asyncio.to_thread``), at most ``workers_max`` at
  a time when the host runs its own loop (:func:`start_terminal_host`).

Messages of one terminal (field 42 + 41) are processed one at a time, in arrival order,
even across connections: a terminal that lost its connection mid-transaction and comes
back with its reversal finds the original already answered, so the reversal undoes it.

Decoding runs in the event loop (pure and bounded by the frame size), everything else in
:class:`~autosettle.terminal_host.processor.Processor`, in a worker thread, so that no
unit of work ever runs in the event loop thread or nests in another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final

from autosettle.config import Settings
from autosettle.domain.iso8583.frame import (
    LENGTH_PREFIX_SIZE_BYTES,
    FrameError,
    decode_frame_body,
    parse_frame_length,
)
from autosettle.domain.iso8583.message import DecodedMessage, MessageFormatError, decode_message
from autosettle.services.context import ServiceContext
from autosettle.terminal_host.processor import Processor, terminal_key

log = logging.getLogger("autosettle.terminal_host")

START_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class HostLimits:
    """Every bound of the server (units last)."""

    connections_max: int = 512
    connections_per_peer_max: int = 128
    idle_timeout_s: float = 120.0
    read_timeout_s: float = 10.0
    write_timeout_s: float = 10.0
    frames_per_connection_max: int = 100_000
    workers_max: int = 32
    stop_timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HostLimits:
        """The defaults, with what ``Settings`` configures (the per-peer limit)."""
        return cls(connections_per_peer_max=settings.terminal_host_connections_per_peer_max)


@dataclass
class HostStats:
    """Counters for tests, the simulator and the benchmark (only the loop thread writes)."""

    connections_accepted: int = 0
    connections_refused: int = 0
    connections_refused_per_peer: int = 0
    connections_active: int = 0
    frames_answered: int = 0
    frames_undecodable: int = 0
    closed_on_error: int = 0
    timeouts: int = 0


class _TerminalLocks:
    """One asyncio lock per terminal, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, str] | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _peer_of(writer: asyncio.StreamWriter) -> str:
    """The client's address (without its port): what the per-peer limit counts."""
    name = writer.get_extra_info("peername")
    if isinstance(name, tuple) and name:
        return str(name[0])
    return "?"


class _PeerCounts:
    """Open connections per client address; an address is kept only while it has some.

    A peer refused over the limit is logged once (a warning) and, when its last connection
    closes, once more with how many were refused: a flood writes two lines, not one each.
    """

    def __init__(self) -> None:
        self._open: dict[str, int] = {}
        self._refused: dict[str, int] = {}

    def admit(self, peer: str, limit: int) -> bool:
        count = self._open.get(peer, 0)
        if count < limit:
            self._open[peer] = count + 1
            return True
        refused = self._refused.get(peer, 0)
        if refused == 0:
            log.warning("terminal host: %s holds %d connections (the per-peer limit); "
                        "closing its new ones", peer, count)
        self._refused[peer] = refused + 1
        return False

    def leave(self, peer: str) -> None:
        count = self._open.get(peer, 0) - 1
        if count > 0:
            self._open[peer] = count
            return
        self._open.pop(peer, None)
        refused = self._refused.pop(peer, 0)
        if refused:
            log.warning("terminal host: %d connections of %s were closed over the "
                        "per-peer limit", refused, peer)


class TerminalHost:
    """The server; run it in an event loop (or use :func:`start_terminal_host`)."""

    def __init__(self, ctx: ServiceContext, limits: HostLimits | None = None,
                 processor: Processor | None = None) -> None:
        self.limits = limits or HostLimits.from_settings(ctx.settings)
        self.processor = processor or Processor(ctx)
        self.stats = HostStats()
        self._server: asyncio.Server | None = None
        self._locks = _TerminalLocks()
        self._peers = _PeerCounts()
        self._idle: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0: any free port); returns the bound port."""
        self._server = await asyncio.start_server(self._on_connection, host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        log.info("terminal host listening on %s:%d", host, bound)
        return bound

    async def stop(self) -> None:
        """Stop listening, drop idle connections, let messages in progress be answered."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._idle):
            task.cancel()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self.limits.stop_timeout_s)
            for task in late:
                task.cancel()

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self.stats.connections_active >= self.limits.connections_max or task is None:
            self.stats.connections_refused += 1
            writer.close()
            return
        peer = _peer_of(writer)
        if not self._peers.admit(peer, self.limits.connections_per_peer_max):
            self.stats.connections_refused_per_peer += 1
            writer.close()
            return
        self.stats.connections_accepted += 1
        self.stats.connections_active += 1
        self._tasks.add(task)
        try:
            await self._serve(task, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the terminal went away: normal for short connections
        except TimeoutError:
            self.stats.timeouts += 1
        except FrameError as exc:
            self.stats.closed_on_error += 1
            log.info("terminal host: closing a connection: %s", exc.message)
        except asyncio.CancelledError:
            pass  # stopping
        except Exception:  # never let one connection take the server down
            self.stats.closed_on_error += 1
            log.exception("terminal host: connection failed")
        finally:
            self.stats.connections_active -= 1
            self._peers.leave(peer)
            self._tasks.discard(task)
            self._idle.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self.limits.write_timeout_s)

    async def _serve(self, task: asyncio.Task[None], reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        limits = self.limits
        for _ in range(limits.frames_per_connection_max):
            self._idle.add(task)
            prefix = await asyncio.wait_for(reader.readexactly(LENGTH_PREFIX_SIZE_BYTES),
                                            limits.idle_timeout_s)
            self._idle.discard(task)
            size_bytes = parse_frame_length(prefix)
            body = await asyncio.wait_for(reader.readexactly(size_bytes),
                                          limits.read_timeout_s)
            answer = await self._answer(body)
            if answer is None:
                self.stats.closed_on_error += 1
                return
            writer.write(answer)
            await asyncio.wait_for(writer.drain(), limits.write_timeout_s)
            self.stats.frames_answered += 1

    async def _answer(self, body: bytes) -> bytes | None:
        frame = decode_frame_body(body)
        decoded: DecodedMessage | None
        try:
            decoded = decode_message(frame.payload)
        except MessageFormatError as exc:
            self.stats.frames_undecodable += 1
            log.info("terminal host: undecodable message: %s", exc.message)
            decoded = None
        key = terminal_key(decoded) if decoded is not None else None
        async with self._locks.hold(key):
            return await asyncio.to_thread(self.processor.handle, frame, decoded)


@dataclass
class TerminalHostHandle:
    """A terminal host running in its own thread and event loop; ``stop()`` ends it."""

    host: str
    port: int
    server: TerminalHost
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def stats(self) -> HostStats:
        return self.server.stats

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop serving; waits for messages in progress (and their service calls)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s or self.server.limits.stop_timeout_s + 5)

    def __enter__(self) -> TerminalHostHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_terminal_host(ctx: ServiceContext, host: str = "127.0.0.1", port: int = 5800,
                        *, limits: HostLimits | None = None,
                        processor: Processor | None = None) -> TerminalHostHandle:
    """Start the terminal host in a background thread; returns once it listens.

    ``port=0`` binds any free port (tests); the handle's ``port`` is the bound one. Use
    from ``autosettle serve``::

        handle = start_terminal_host(ctx, settings.api_host, settings.terminal_host_port)
        try:
            uvicorn.run(...)
        finally:
            handle.stop()
    """
    server = TerminalHost(ctx, limits, processor)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    outcome: dict[str, int | BaseException] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.set_default_executor(ThreadPoolExecutor(
            max_workers=server.limits.workers_max, thread_name_prefix="terminal-host"))
        try:
            outcome["port"] = loop.run_until_complete(server.start(host, port))
        except BaseException as exc:  # reported to the caller of start_terminal_host
            outcome["error"] = exc
            ready.set()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.stop())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    thread = threading.Thread(target=run, name="terminal-host", daemon=True)
    thread.start()
    if not ready.wait(START_TIMEOUT_S):
        raise TimeoutError("the terminal host did not start in time")
    error = outcome.get("error")
    if isinstance(error, BaseException):
        thread.join(START_TIMEOUT_S)
        raise error
    bound = outcome.get("port")
    if not isinstance(bound, int):
        raise RuntimeError("the terminal host reported no port")
    return TerminalHostHandle(host, bound, server, loop, thread)
