"""The running engine's door: a Unix socket in the runtime dir that the CLI hands commands to.

One JSON object per line each way. Only the same user may connect (the directory is 0700 and the
peer's uid is checked). When nothing answers, the CLI runs the engine itself.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import threading
from pathlib import Path
from typing import Any, Callable

from killswitch.core.atomic import remove_stale_temps, user_name, warn
from killswitch.core.paths import Paths, ensure_dir
from killswitch.runtime.engine import Engine

MAX_REQUEST = 64 * 1024


class NoService(Exception):
    """No running engine answered; the caller should do the work itself."""


def request(paths: Paths, payload: dict[str, Any], timeout: float = 3.0) -> dict[str, Any]:
    """Hand `payload` to the running engine and return its answer.

    Only an engine of ours is asked: the socket file must be a socket we own, and the process
    listening on it must be ours (SO_PEERCRED) — checked before anything is sent. Anything else is
    NoService (said on stderr when it is someone else's), so the caller does the work itself: a
    foreign socket can never swallow a stop.
    """
    path = str(paths.socket_file)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NoService("no running killswitch") from None
    except OSError as exc:
        raise NoService(f"cannot look at {path} ({exc.strerror or exc})") from None
    if not stat.S_ISSOCK(st.st_mode):
        _ignore(path, "it is not a socket")
    if st.st_uid != os.geteuid():
        _ignore(path, f"it belongs to {user_name(st.st_uid)}, not to you")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except OSError as exc:
            raise NoService(f"the running killswitch did not answer ({exc.strerror or exc})") from None
        peer = _peer_uid(sock)
        if peer is not None and peer != os.geteuid():
            _ignore(path, f"it is served by {user_name(peer)}, not by you")
        sock.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, OSError) as exc:
        raise NoService(f"the running killswitch did not answer in {timeout:g} s ({exc})") from None
    finally:
        sock.close()
    try:
        reply = json.loads(data)
    except ValueError:
        raise NoService("the running killswitch sent a garbled answer") from None
    if not isinstance(reply, dict):
        raise NoService("the running killswitch sent a garbled answer")
    return reply


def _ignore(path: str, why: str) -> None:
    warn(f"ignoring the engine socket {path}: {why}; nothing was sent to it, the work is done here instead")
    raise NoService(f"{path} is not your killswitch ({why})")


def _peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected Unix socket; None where the OS does
    not say (there the 0700 directory is the guard)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class Service:
    """Serves an engine on the socket from a background thread.

    `on_command` is called (from that thread) with the command's name after each command was
    answered; a Qt shell only turns it into a signal. Commands the engine does not know ("show",
    from a second launch of the tray) are answered ok when `ui_commands` lists them.
    """

    def __init__(self, engine: Engine, paths: Paths, on_command: Callable[[str], None] | None = None,
                 ui_commands: tuple[str, ...] = (), ui_info: Callable[[], dict[str, Any]] | None = None,
                 on_handover: Callable[[], None] | None = None, role: str = "tray"):
        self.engine = engine
        self.paths = paths
        self.on_command = on_command
        self.ui_commands = ui_commands
        self.ui_info = ui_info  # a snapshot the GUI thread keeps; never touches widgets
        # `serve` hands the engine to a starting tray: it gives up the socket, then this is called.
        self.on_handover = on_handover
        self.role = role
        self._sock: socket.socket | None = None
        self._bound: tuple[int, int] | None = None  # (device, inode) of our socket file
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def start(self) -> None:
        # The engine starts: temp files of writers killed mid-write (kill -9) go now.
        for directory, names in ((self.paths.flag.parent, (self.paths.flag.name,)), (self.paths.state_dir, None),
                                 (self.paths.data_dir, None), (self.paths.config_dir, None)):
            remove_stale_temps(directory, names)
        ensure_dir(self.paths.runtime_dir)
        path = self.paths.socket_file
        if len(os.fsencode(str(path))) >= 104:
            raise OSError(f"socket path too long for the OS: {path} (set XDG_RUNTIME_DIR to a shorter dir)")
        _remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        os.chmod(path, 0o600)
        st = os.stat(path)
        self._bound = (st.st_dev, st.st_ino)
        sock.listen(8)
        # Blocking accept: the thread sleeps until a client comes (no periodic wake-ups while idle);
        # close() wakes it with shutdown().
        self._sock = sock
        self._thread = threading.Thread(target=self._loop, name="killswitch-service", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._release()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _release(self) -> None:
        """Stop listening and remove our socket file — only ours: after a handover the path may
        already be the tray's."""
        self._closing.set()
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # makes the blocked accept() return
            except OSError:
                pass
            sock.close()
        try:
            st = os.stat(self.paths.socket_file)
            if (st.st_dev, st.st_ino) == self._bound:
                os.unlink(self.paths.socket_file)
        except OSError:
            pass

    def _loop(self) -> None:
        while not self._closing.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except OSError:
                if self._closing.is_set():
                    return
                continue
            with conn:
                conn.settimeout(2.0)
                try:
                    self._serve_one(conn)
                except (OSError, ValueError):
                    continue

    def _serve_one(self, conn: socket.socket) -> None:
        if not _same_user(conn):
            conn.sendall(b'{"ok": false, "errors": ["not your killswitch"]}\n')
            return
        data = b""
        while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        payload = json.loads(data or b"{}")
        reply = self.handle(payload if isinstance(payload, dict) else {})
        conn.sendall(json.dumps(reply).encode() + b"\n")
        if not reply.get("unknown") and self.on_command:
            self.on_command(str(payload.get("cmd")))

    def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        cmd = payload.get("cmd")
        if cmd == "ping":
            return {"ok": True, "pid": os.getpid(), "role": self.role}
        if cmd == "handover":
            if self.on_handover is None:
                return {"ok": False, "errors": [f"this killswitch ({self.role}) does not hand over its engine"]}
            self._release()  # before the answer: when the tray reads it, the socket path is free
            self.on_handover()
            return {"ok": True, "pid": os.getpid(), "role": self.role}
        if cmd in self.ui_commands:
            return {"ok": True, "pid": os.getpid()}
        if cmd == "ui":
            return {"ok": True, "pid": os.getpid(), "ui": self.ui_info() if self.ui_info else None}
        if cmd == "status":
            return {"ok": True, "status": self.engine.status()}
        if cmd == "stop":
            reason = payload.get("reason", "cli")
            message = payload.get("message", "")
            if not isinstance(reason, str) or not isinstance(message, str):
                return {"ok": False, "errors": ["reason and message must be strings"]}
            try:
                report = self.engine.stop(reason, message)
            except ValueError as exc:
                return {"ok": False, "errors": [str(exc)]}
            return {"changed": not report.already_stopped, **report.to_json()}
        if cmd == "resume":
            report = self.engine.resume()
            return {"changed": report.was_stopped, **report.to_json()}
        return {"ok": False, "unknown": True, "errors": [f"unknown command {cmd!r}"]}


class TrayLock:
    """Held by the tray for its whole life (the kernel drops it when the tray dies, however it
    dies). One tray at a time; `serve` defers to whoever holds it, so the two never fight."""

    def __init__(self, paths: Paths):
        self.path = paths.runtime_dir / "tray.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True when it is ours now; False when another tray holds it."""
        import fcntl

        ensure_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def wait_for_no_tray(paths: Paths, wake: threading.Event, on_wait: Callable[[], None] | None = None) -> bool:
    """Block until no tray holds its lock (True), or until `wake` is set by someone else (False) —
    a signal handler, say. No polling: a thread sleeps in flock. `on_wait` is called once when
    there is a tray to wait for."""
    import fcntl

    ensure_dir(paths.runtime_dir)
    lock = paths.runtime_dir / "tray.lock"

    def free_now(blocking: bool) -> bool:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | (0 if blocking else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # only asked whether it is free: taking it would keep a tray out

    if free_now(blocking=False):
        return True
    if on_wait:
        on_wait()
    free = threading.Event()

    def wait() -> None:
        if free_now(blocking=True):
            free.set()
            wake.set()

    threading.Thread(target=wait, name="killswitch-wait-for-tray", daemon=True).start()
    wake.wait()
    return free.is_set()


def _same_user(conn: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):
        return True  # the 0700 directory is the guard there
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _remove_stale(path: Path) -> None:
    """A socket left by a crashed engine is removed; so is one served by someone else (it can only
    be there through root: the directory is ours and 0700). A live one of ours means we are not
    alone."""
    if not os.path.lexists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
        peer = _peer_uid(probe)
    except OSError:
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    if peer is not None and peer != os.geteuid():
        warn(f"removing the engine socket {path}: it is served by {user_name(peer)}, not by you")
        path.unlink(missing_ok=True)
        return
    raise OSError(f"another killswitch is already serving on {path}")
