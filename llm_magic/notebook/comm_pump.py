"""Button clicks for a cell that blocks the kernel: the `%autoawait off` fallback.

Without top-level await the `%%llm_chain` magic runs the chain on llm_magic's private loop
thread and the kernel's main thread waits for it inside the cell. ipykernel hands every shell
message for the main shell (execute requests and the comm messages a widget click sends alike)
to that main thread, so a click on Approve or Cancel would only be read after the cell ends,
and a run waiting for approval would wait forever.

So while it waits, the main thread reads the main shell's queue itself (a `CommPump` is the
`CallerThread`'s idle hook, the same thread that already runs the work handed back to it):

* comm messages go to the kernel's comm handlers at once, as ipykernel >= 7.4 itself does for
  a running async cell (`shell_main` dispatches comms without waiting for the cell's lock),
  on the loop thread the run and its widgets live on (see `for_shell`);
* everything else (the cells queued behind this one, kernel_info, completions) is held and,
  when the cell ends, put back in the main shell's queue in the order it came (`release`), so
  the kernel reads it after the cell as if no one had touched it.

Nothing is patched: each socket is used only by the thread that owns it (the main shell's end
by the main thread, whose loop this cell blocks, so it is not reading it; the shell channel
thread's end by that thread). It needs ipykernel 7's shell channel thread; with anything else
`for_shell` gives None and the magic says what to do instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("llm_magic")
COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})
HANDBACK_SECONDS = 10.0

NO_PUMP_NOTE = (
    "llm_magic: %autoawait is off, so this cell blocks the kernel and the timeline's buttons "
    "can not reach it (this kernel has no shell channel thread): interrupt the kernel to stop "
    "the run; a call that needs approval waits until then. `%autoawait on` makes the buttons "
    "work."
)


class CommPump:
    """Serves the kernel's comm messages on the main thread while a blocking cell waits."""

    def __init__(self, kernel: Any, loop: asyncio.AbstractEventLoop) -> None:
        manager = kernel.shell_channel_thread.manager
        self.kernel = kernel
        self.loop = loop
        pair = manager.get_shell_channel_to_subshell_pair(None)
        self.socket = pair.to_socket  # read by this (the main) thread
        self.sender = pair.from_socket  # written by the shell channel thread
        self.channel_loop = kernel.shell_channel_thread.io_loop
        self.held: list[Any] = []
        self.broken = False

    @classmethod
    def for_shell(cls, ip: Any, loop: asyncio.AbstractEventLoop) -> CommPump | None:
        """A pump for this shell's kernel, or None outside a kernel or without ipykernel 7's
        shell channel thread (only the main thread may read the main shell's socket).

        loop: the loop the run (and so its timeline's widgets) lives on; comm messages are
        handled there, after whatever it is doing: a click that arrives while a button is being
        built (opened, its click handler not yet set) would otherwise be lost.
        """
        kernel = getattr(ip, "kernel", None)
        if kernel is None or getattr(kernel, "shell_channel_thread", None) is None:
            return None
        if threading.current_thread() is not threading.main_thread():
            return None
        try:
            return cls(kernel, loop)
        except Exception as exc:  # another ipykernel layout: fall back to the note
            log.debug("llm_magic: no comm pump: %r", exc)
            return None

    def __call__(self) -> None:
        """Read what has arrived: dispatch comm messages, hold the rest (never blocks)."""
        if self.broken:
            return
        try:
            while self.socket.poll(0):
                with _interrupt_deferred():  # a message read is a message held, or it is lost
                    self.held.append(self.socket.recv_multipart(copy=False))
                msg = self._comm_message(self.held[-1])
                if msg is not None:
                    self.held.pop()
                    self._post(self._dispatch, *msg)
        except Exception as exc:  # the held messages are still replayed
            self.broken = True
            log.warning("llm_magic: stopped reading the kernel's messages: %r", exc)

    def _comm_message(self, frames: list[Any]) -> tuple[Any, list[Any], dict[str, Any]] | None:
        """(handler, idents, msg) for a comm message that can be handled here, else None."""
        session = self.kernel.session
        try:
            idents, rest = session.feed_identities(frames, copy=False)
            # a peek (content=False) does not record the signature, so a held message is not
            # refused as a replay when the kernel reads it after the cell
            msg_type = session.deserialize(rest, content=False, copy=False)["msg_type"]
        except Exception:  # not a message (ipykernel's "stop aborting" marker) or a bad one
            return None
        handler = self.kernel.shell_handlers.get(msg_type)
        if msg_type not in COMM_TYPES or handler is None:
            return None
        if inspect.iscoroutinefunction(handler):  # needs the blocked loop: after the cell
            return None
        try:
            msg = session.deserialize(rest, content=True, copy=False)
        except Exception:
            return None
        return handler, idents, msg

    def _post(self, fn: Any, *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nothing of the run is left to race with
            fn(*args)

    def _dispatch(self, handler: Any, idents: list[Any], msg: dict[str, Any]) -> None:
        try:
            handler(None, idents, msg)  # comm handlers take no stream (they reply on IOPub)
        except Exception:
            log.error("llm_magic: a comm message failed while the cell waited", exc_info=True)

    def release(self) -> None:
        """Put the held messages back in front of the main shell's queue, in the order they came.

        They go back the way they came: the shell channel thread sends them to the main shell's
        socket again, so the kernel reads them after this cell exactly as if no one had read
        them (and after the messages it had read just before this cell started, which are
        already on their way to the cell lock). To keep the order, that thread waits while this
        one reads what is still in the socket, then sends all of it: nothing new can slip in.
        """
        if not self.held:  # what is still in the socket is in order already
            return
        with _interrupt_deferred():  # an interrupt here would lose the held cells
            parked, handed = threading.Event(), threading.Event()
            batch: list[list[bytes]] = []

            def send_back() -> None:  # on the shell channel thread, which owns `sender`
                parked.set()
                handed.wait(HANDBACK_SECONDS)
                for frames in batch:
                    self.sender.send_multipart(frames)

            self.channel_loop.add_callback(send_back)
            if not parked.wait(HANDBACK_SECONDS):
                log.warning(
                    "llm_magic: the shell channel thread did not answer in time; cells queued "
                    "while the chain ran may run out of order"
                )
            try:
                while self.socket.poll(0):
                    self.held.append(self.socket.recv_multipart(copy=False))
                batch.extend([frame.bytes for frame in frames] for frames in self.held)
                self.held = []
            finally:
                handed.set()


@contextlib.contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """A kernel interrupt (SIGINT) in here is noted and raised on leaving, not in between."""
    noted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if noted and callable(previous):
            previous(signal.SIGINT, None)
        elif noted and previous != signal.SIG_IGN:
            raise KeyboardInterrupt
