"""The global hotkey on Wayland: the xdg-desktop-portal GlobalShortcuts interface, over D-Bus (jeepney).

Wayland gives no client the keyboard; the compositor owns shortcuts. The portal lets us ask for one:
CreateSession, BindShortcuts (the desktop may show a dialog and the user may pick another trigger),
then an `Activated` signal per press. Everything after the probe runs on one worker thread.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import deque
from typing import Callable

from killswitch.platform.hotkey.abc import HotkeyBackend, HotkeyError
from killswitch.platform.hotkey.chord import Chord
from killswitch.resources import APP_ID  # the installed desktop entry's name, or the portal may refuse us

log = logging.getLogger(__name__)

PORTAL_BUS = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"
REQUEST = "org.freedesktop.portal.Request"
SESSION = "org.freedesktop.portal.Session"
REGISTRY = "org.freedesktop.host.portal.Registry"
SHORTCUT_ID = "stop-all-agents"
CALL_TIMEOUT = 5.0      # a portal started by D-Bus activation can take a few seconds to answer
SESSION_TIMEOUT = 30.0  # CreateSession involves no user; BindShortcuts waits for the user, unbounded
POLL = 0.2              # how often the worker checks that it should stop


def session_bus_address(environ) -> str | None:
    address = environ.get("DBUS_SESSION_BUS_ADDRESS")
    if address:
        return address
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.exists(os.path.join(runtime, "bus")):  # systemd's default, often left unset
        return f"unix:path={runtime}/bus"
    return None


def _connect(address: str):
    from jeepney.io.blocking import open_dbus_connection

    return open_dbus_connection(address, auth_timeout=CALL_TIMEOUT)


def _call(conn, path: str, interface: str, method: str, signature: str | None, body: tuple, *,
          bus: str = PORTAL_BUS, timeout: float = CALL_TIMEOUT):
    from jeepney import DBusAddress, new_method_call
    from jeepney.wrappers import unwrap_msg

    message = new_method_call(DBusAddress(path, bus, interface), method, signature, body)
    return unwrap_msg(conn.send_and_get_reply(message, timeout=timeout))  # raises DBusErrorResponse


def probe_portal(address: str | None) -> tuple[int | None, str]:
    """The GlobalShortcuts interface version on this session bus, or None and why not."""
    if not address:
        return None, "no D-Bus session bus"
    try:
        from jeepney.wrappers import DBusErrorResponse
    except ImportError as exc:
        return None, f"jeepney is not installed ({exc})"
    try:
        conn = _connect(address)
    except Exception as exc:  # noqa: BLE001 - any failure here means "no portal for us"
        return None, f"cannot connect to the D-Bus session bus ({exc})"
    try:
        # A separate connection: the real session must call Registry.Register before any portal call.
        (signature, version), = _call(conn, PORTAL_PATH, "org.freedesktop.DBus.Properties", "Get", "ss",
                                      (SHORTCUTS, "version"))
        return int(version), ""
    except DBusErrorResponse as exc:
        return None, f"{PORTAL_BUS} has no {SHORTCUTS} interface ({exc.name})"
    except TimeoutError:
        return None, f"{PORTAL_BUS} did not answer within {CALL_TIMEOUT:.0f} s"
    except Exception as exc:  # noqa: BLE001
        return None, f"D-Bus error: {exc}"
    finally:
        conn.close()


class PortalHotkey(HotkeyBackend):
    name = "portal"

    def __init__(self, address: str, version: int, app_id: str = APP_ID):
        self.address = address
        self.version = version
        self.app_id = app_id
        self.trigger: str | None = None  # what the desktop says triggers it, once bound
        self.problem: str | None = None
        self._worker: _Worker | None = None

    def describe(self) -> str:
        bound = f", bound to {self.trigger}" if self.trigger else ""
        return f"xdg-desktop-portal GlobalShortcuts v{self.version}{bound}"

    def start(self, chord: Chord, callback: Callable[[], None], *, on_problem=None) -> None:
        self.stop()
        self.problem = None
        self._worker = _Worker(self, chord, callback, on_problem)
        self._worker.start()

    def stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stopping.set()
            worker.join(POLL * 3)


class _Worker(threading.Thread):
    def __init__(self, owner: PortalHotkey, chord: Chord, callback, on_problem):
        super().__init__(daemon=True, name="hotkey-portal")
        self.owner, self.chord, self.callback, self.on_problem = owner, chord, callback, on_problem
        self.stopping = threading.Event()
        self.pending: deque = deque()  # signals that arrived while a method call waited for its reply

    def run(self) -> None:
        from jeepney import MatchRule

        conn = session = None
        try:
            conn = _connect(self.owner.address)
            conn.filter(MatchRule(type="signal"), queue=self.pending)
            self._register(conn)
            _add_match(conn, interface=REQUEST, member="Response")
            _add_match(conn, interface=SHORTCUTS, member="Activated")
            results = self._request(conn, "CreateSession", "a{sv}", lambda token: (
                {"handle_token": ("s", token), "session_handle_token": ("s", "killswitch" + token)},),
                timeout=SESSION_TIMEOUT)
            session = str(results["session_handle"][1])  # typed "s" by mistake in the spec; kept for compat
            shortcut = {"description": ("s", "Stop all AI agents (killswitch)"),
                        "preferred_trigger": ("s", self.chord.to_xdg())}
            results = self._request(conn, "BindShortcuts", "oa(sa{sv})sa{sv}", lambda token: (
                session, [(SHORTCUT_ID, shortcut)], "", {"handle_token": ("s", token)}), timeout=None)
            bound = dict(results.get("shortcuts", ("a(sa{sv})", []))[1])
            if SHORTCUT_ID not in bound:
                raise HotkeyError("the desktop did not bind the shortcut; allow it in the portal dialog or "
                                  "the system shortcut settings")
            self.owner.trigger = bound[SHORTCUT_ID].get("trigger_description", ("s", None))[1] or None
            self._listen(conn, session)
        except Exception as exc:  # noqa: BLE001 - reported, never raised into a dead thread
            if not self.stopping.is_set():
                self._report(exc)
        finally:
            if conn is not None:
                if session is not None:
                    _close_session(conn, session)
                conn.close()

    def _register(self, conn) -> None:
        # Non-sandboxed apps name themselves so the portal can attach the shortcut to killswitch.desktop.
        # Portals older than 1.19 have no registry; that is fine.
        try:
            _call(conn, PORTAL_PATH, REGISTRY, "Register", "sa{sv}", (self.owner.app_id, {}))
        except Exception as exc:  # noqa: BLE001
            log.info("hotkey portal: Registry.Register failed (%s); continuing without an app id", exc)

    def _request(self, conn, method: str, signature: str, body_for_token, timeout: float | None) -> dict:
        """Calls a portal method that answers later through a Request object's Response signal."""
        token = "ks" + secrets.token_hex(6)
        sender = conn.unique_name.lstrip(":").replace(".", "_")
        expected = f"{PORTAL_PATH}/request/{sender}/{token}"
        (handle,) = _call(conn, PORTAL_PATH, SHORTCUTS, method, signature, body_for_token(token))
        paths = {expected, handle}  # portals before 0.9 returned other paths; accept what it said
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self._next_signal(conn, deadline)
            fields = message.header.fields
            if _field(fields, "member") == "Response" and _field(fields, "path") in paths:
                response, results = message.body
                if response != 0:
                    raise HotkeyError(f"{method}: the desktop answered "
                                      f"{'cancelled by the user' if response == 1 else 'failed'} ({response})")
                return results

    def _listen(self, conn, session: str) -> None:
        while True:
            message = self._next_signal(conn, None)
            fields = message.header.fields
            if (_field(fields, "member") == "Activated" and _field(fields, "interface") == SHORTCUTS
                    and message.body[0] == session and message.body[1] == SHORTCUT_ID
                    and not self.stopping.is_set()):
                try:
                    self.callback()
                except Exception:  # noqa: BLE001 - one bad press must not end the listening
                    log.exception("hotkey callback failed")

    def _next_signal(self, conn, deadline: float | None):
        from jeepney import MessageType

        while True:
            if self.stopping.is_set():
                raise _Stopped
            if self.pending:
                return self.pending.popleft()
            if deadline is not None and time.monotonic() > deadline:
                raise HotkeyError("the portal did not answer in time")
            try:
                message = conn.receive(timeout=POLL)
            except TimeoutError:
                continue
            if message.header.message_type == MessageType.signal:
                return message

    def _report(self, exc: Exception) -> None:
        text = str(exc) if isinstance(exc, HotkeyError) else f"GlobalShortcuts portal: {type(exc).__name__}: {exc}"
        self.owner.problem = text
        log.warning("hotkey portal: %s", text)
        if self.on_problem is not None:
            try:
                self.on_problem(text)
            except Exception:  # noqa: BLE001
                log.exception("hotkey problem callback failed")


class _Stopped(Exception):
    pass


def _field(fields, name: str):
    from jeepney import HeaderFields

    return fields.get(getattr(HeaderFields, name))


def _add_match(conn, **rule) -> None:
    from jeepney import MatchRule, message_bus

    match = MatchRule(type="signal", sender=PORTAL_BUS, **rule)
    _call_bus(conn, message_bus.AddMatch(match))


def _call_bus(conn, message) -> None:
    from jeepney.wrappers import unwrap_msg

    unwrap_msg(conn.send_and_get_reply(message, timeout=CALL_TIMEOUT))


def _close_session(conn, session: str) -> None:
    from jeepney import DBusAddress, new_method_call

    try:  # fire and forget: stop() must not wait on the portal
        conn.send(new_method_call(DBusAddress(session, PORTAL_BUS, SESSION), "Close"))
    except Exception as exc:  # noqa: BLE001
        log.debug("hotkey portal: closing the session failed: %s", exc)
