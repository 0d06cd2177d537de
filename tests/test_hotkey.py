"""The global hotkey: chord text, validation, backend choice, real key presses on Xvfb, the portal over a
real (private) D-Bus, and the GNOME fallback through a real gsettings."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from killswitch.platform import hotkey as hk
from killswitch.platform.hotkey import gnome
from killswitch.platform.hotkey.chord import Chord
from killswitch.platform.hotkey.pynput_backend import STALE_AFTER, ChordMatcher, PynputHotkey, X11Modifiers
from tests.helpers.clock import FakeClock
from tests.helpers.xserver import running_xvfb, xdotool

DEFAULT = "<ctrl>+<alt>+<shift>+k"
WAIT = 5.0  # generous deadline for an event that must arrive; absence is proven with a sentinel instead
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)  # any moment: the matcher reads only monotonic time


# ---------------------------------------------------------------------------------------------- chords

@pytest.mark.parametrize("text, modifiers, key, canonical", [
    (DEFAULT, {"ctrl", "alt", "shift"}, "k", DEFAULT),
    ("<shift>+<alt>+<ctrl>+K", {"ctrl", "alt", "shift"}, "k", DEFAULT),  # any order, any case
    ("Ctrl+Alt+Shift+K", {"ctrl", "alt", "shift"}, "k", DEFAULT),        # the label form reads back
    ("<ctrl_l>+<alt_r>+<f5>", {"ctrl", "alt"}, "f5", "<ctrl>+<alt>+<f5>"),
    ("<super>+<ctrl>+<space>", {"ctrl", "cmd"}, "space", "<ctrl>+<cmd>+<space>"),
    ("<cmd>+<alt_gr>+<escape>", {"alt", "cmd"}, "esc", "<alt>+<cmd>+<esc>"),
    ("<ctrl>++", {"ctrl"}, "+", "<ctrl>++"),                             # pynput's way to say the + key
    ("<ctrl>+<alt>+<->", {"ctrl", "alt"}, "-", "<ctrl>+<alt>+-"),
    (" <ctrl> + <alt> + 1 ", {"ctrl", "alt"}, "1", "<ctrl>+<alt>+1"),
    ("<ctrl>+<alt>+<Page Up>", {"ctrl", "alt"}, "page_up", "<ctrl>+<alt>+<page_up>"),
])
def test_parse_chord_reads_pynput_notation_and_labels(text, modifiers, key, canonical):
    chord = hk.parse_chord(text)
    assert chord == Chord(frozenset(modifiers), key)
    assert chord.to_text() == canonical
    assert hk.parse_chord(chord.to_text()) == chord
    assert hk.parse_chord(chord.label()) == chord


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("   ", "empty"),
    ("<ctrl>+<alt>", "modifiers alone"),
    ("<ctrl>+", "missing"),
    ("+k", None),  # a lone '+' then k: two keys
    ("<ctrl>+a+b", "only one key"),
    ("<ctrl>+<ctrl_r>+k", "twice"),
    ("<ctrl>+<hyperdrive>", "unknown key"),
    ("<ctrl>+<65>", "key codes"),
    ("<ctrl>+kk", "unknown key"),
    ("<ctrl>+<alt>+ +k", "missing"),
])
def test_parse_chord_refuses_bad_text_with_a_message(text, words):
    with pytest.raises(hk.HotkeyError) as info:
        hk.parse_chord(text)
    assert str(info.value)
    if words:
        assert words in str(info.value)


def test_labels_follow_the_platform_names():
    chord = hk.parse_chord("<ctrl>+<alt>+<shift>+<cmd>+<page_down>")
    assert chord.label("linux") == "Ctrl+Alt+Shift+Super+Page Down"
    assert chord.label("win32") == "Ctrl+Alt+Shift+Win+Page Down"
    assert chord.label("darwin") == "Ctrl+Option+Shift+Cmd+Page Down"
    assert hk.parse_chord("<ctrl>+<alt>+<print_screen>").label() == "Ctrl+Alt+Print Screen"
    assert hk.parse_chord("<ctrl>+<alt>+<f12>").label() == "Ctrl+Alt+F12"


def test_gnome_and_portal_notations():
    assert hk.parse_chord(DEFAULT).to_gnome() == "<Control><Alt><Shift>k"
    assert hk.parse_chord(DEFAULT).to_xdg() == "CTRL+ALT+SHIFT+k"
    assert hk.parse_chord("<cmd>+<ctrl>+<enter>").to_gnome() == "<Control><Super>Return"
    assert hk.parse_chord("<cmd>+<ctrl>+<enter>").to_xdg() == "CTRL+LOGO+Return"
    assert hk.parse_chord("<ctrl>+<alt>+-").to_gnome() == "<Control><Alt>minus"
    assert hk.parse_chord("<ctrl>+<alt>+<page_up>").to_xdg() == "CTRL+ALT+Page_Up"


# ------------------------------------------------------------------------------------------ validation

def test_the_default_chord_is_valid_everywhere():
    for backend in ("pynput", "portal", "none"):
        for platform in ("linux", "win32", "darwin"):
            hk.validate_chord(hk.parse_chord(DEFAULT), backend, platform)


@pytest.mark.parametrize("text, backend, platform, words", [
    ("<ctrl>+<alt>+<shift>+1", "pynput", "linux", "Shift"),     # X11 reports '!', never '1'
    ("<ctrl>+<shift>+-", "pynput", "linux", "Shift"),
    ("k", "pynput", "linux", "without Ctrl"),
    ("<f9>", "portal", "linux", "without Ctrl"),
    ("<shift>+k", "pynput", "linux", "Shift alone"),
    ("<ctrl>+<alt>+<caps_lock>", "pynput", "linux", "lock keys"),
    ("<ctrl>+<alt>+<num_lock>", "portal", "linux", "lock keys"),
    ("<ctrl>+<alt>+<up>", "pynput", "linux", "arrow keys"),
    ("<ctrl>+<alt>+<left>", "pynput", "win32", "arrow keys"),
    ("<ctrl>+<alt>+<f2>", "pynput", "linux", "text console"),
    ("<ctrl>+<alt>+<delete>", "pynput", "win32", "reserved"),
])
def test_validate_chord_refuses_what_cannot_work(text, backend, platform, words):
    with pytest.raises(hk.HotkeyError) as info:
        hk.validate_chord(hk.parse_chord(text), backend, platform)
    assert words in str(info.value)


@pytest.mark.parametrize("text, backend, platform", [
    ("<ctrl>+<alt>+<shift>+1", "portal", "linux"),   # the compositor matches keys, not characters
    ("<ctrl>+<alt>+<shift>+1", "pynput", "win32"),   # Windows maps back through the scan code
    ("<ctrl>+<alt>+<up>", "portal", "linux"),
    ("<ctrl>+<alt>+<f2>", "pynput", "win32"),
    ("<cmd>+<shift>+<f5>", "pynput", "linux"),
])
def test_validate_chord_accepts_what_the_backend_delivers(text, backend, platform):
    hk.validate_chord(hk.parse_chord(text), backend, platform)


# ----------------------------------------------------------------------------------- matcher (no X)

def test_matcher_fires_once_per_press_and_only_on_the_exact_set():
    m = ChordMatcher(hk.parse_chord(DEFAULT))
    for mod in ("ctrl", "alt", "shift"):
        assert not m.press(mod)
    assert m.press("k")
    assert not m.press("k")  # auto-repeat
    m.release("k")
    assert m.press("k")      # a new press fires again
    m.press("cmd")
    m.release("k")
    assert not m.press("k")  # an extra modifier
    m.release("cmd")
    m.release("shift")
    assert not m.press("k")  # a missing one


def test_matcher_forgets_a_stale_modifier_only_when_the_os_says_it_is_up():
    clock, down = FakeClock(T0), {"cmd": True}
    m = ChordMatcher(hk.parse_chord(DEFAULT), lambda mod: down.get(mod, False), clock.monotonic)
    m.press("cmd")  # e.g. Win+L: the release never arrives
    for mod in ("ctrl", "alt", "shift"):
        m.press(mod)
    assert not m.press("k")  # fresh: never second-guessed
    clock.advance(STALE_AFTER + 1)
    m.release("k")
    assert not m.press("k")  # old, but the OS says it is really down
    down["cmd"] = False
    m.release("k")
    assert m.press("k")      # old and up: it was a missed release
    assert "cmd" not in m.held


def test_matcher_never_adds_a_modifier_the_events_did_not_show():
    m = ChordMatcher(hk.parse_chord(DEFAULT), lambda mod: True, FakeClock(T0).monotonic)
    m.press("ctrl")
    m.press("alt")
    assert not m.press("k")


# ----------------------------------------------------------------------------------- choosing backends

def test_no_display_gives_a_null_backend_with_the_reason():
    backend = hk.choose_backend({}, "linux")
    assert isinstance(backend, hk.NullHotkey)
    assert not backend.available
    assert "no display" in backend.reason
    with pytest.raises(hk.HotkeyError, match="no display"):
        backend.start(hk.parse_chord(DEFAULT), lambda: None)
    backend.stop()


def test_wayland_without_a_session_bus_gives_the_fallback_advice(tmp_path):
    env = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_RUNTIME_DIR": str(tmp_path)}
    backend = hk.choose_backend(env, "linux")
    assert isinstance(backend, hk.NullHotkey)
    assert "Wayland" in backend.reason and "no D-Bus session bus" in backend.reason
    assert "killswitch stop" in backend.reason
    assert isinstance(hk.choose_backend({"XDG_SESSION_TYPE": "wayland"}, "linux"), hk.NullHotkey)


def test_an_unreachable_display_gives_a_null_backend():
    backend = hk.choose_backend({"DISPLAY": ":4077"}, "linux")
    assert isinstance(backend, hk.NullHotkey)
    assert ":4077" in backend.reason


@pytest.mark.e2e
def test_an_x_server_without_record_gives_a_null_backend():
    with running_xvfb("-extension", "RECORD") as display:
        backend = hk.choose_backend({"DISPLAY": display}, "linux")
    assert isinstance(backend, hk.NullHotkey)
    assert "RECORD" in backend.reason


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_start_fails_fast_instead_of_hanging_when_the_listener_cannot_run(xdisplay, monkeypatch):
    backend = hk.choose_backend(os.environ, "linux")  # imports pynput on a good display first
    assert isinstance(backend, PynputHotkey)
    with running_xvfb("-extension", "RECORD") as display:
        monkeypatch.setenv("DISPLAY", display)
        began = time.monotonic()
        with pytest.raises(hk.HotkeyError, match="RECORD"):
            backend.start(hk.parse_chord(DEFAULT), lambda: None)
        assert time.monotonic() - began < 2
    assert not backend.active


def test_x11_gives_pynput_and_describe_reports_it(xdisplay):
    backend = hk.choose_backend(os.environ, "linux")
    assert isinstance(backend, PynputHotkey) and backend.available and backend.name == "pynput"
    assert hk.describe(DEFAULT, os.environ, "linux") == [
        ("ok", "hotkey", "Ctrl+Alt+Shift+K via X11 keyboard listener (pynput), exact chord matching")]
    level, name, detail = hk.describe("<shift>+k", os.environ, "linux")[0]
    assert (level, name) == ("warn", "hotkey") and "Shift alone" in detail
    assert hk.describe(DEFAULT, {}, "linux") == [("warn", "hotkey", hk.choose_backend({}, "linux").reason)]


def test_importing_the_hotkey_layer_pulls_in_no_qt():
    code = ("import sys, killswitch.platform.hotkey as h; h.choose_backend({}); "
            "print([m for m in sys.modules if m.startswith(('PySide6', 'pynput'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"


# -------------------------------------------------------------------------------- real keys on Xvfb

class Presses:
    """The callback under test: counts calls and wakes waiters. As small as the tray's emit."""

    def __init__(self):
        self.times: list[float] = []
        self.cond = threading.Condition()

    def __call__(self):
        with self.cond:
            self.times.append(time.monotonic())
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.times) >= count, timeout)


@pytest.fixture
def listening(xdisplay):
    """A started PynputHotkey on the default chord; yields (backend, presses, display)."""
    backend = hk.choose_backend(os.environ, "linux")
    presses = Presses()
    backend.start(hk.parse_chord(DEFAULT), presses)
    yield backend, presses, xdisplay
    backend.stop()


def fire_and_count(display: str, presses: Presses, *xdotool_args: str) -> int:
    """Runs xdotool, then the real chord as a sentinel: X delivers events in order, so once the
    sentinel fired, the first command's events were seen. Returns the calls the first one caused."""
    before = len(presses.times)
    xdotool(display, *xdotool_args)
    xdotool(display, "key", "ctrl+alt+shift+k")
    assert presses.wait_for(before + 1), "the sentinel chord never fired"
    return len(presses.times) - before - 1


def test_the_exact_chord_fires_exactly_once(listening):
    backend, presses, display = listening
    assert backend.active
    assert fire_and_count(display, presses, "key", "ctrl+alt+shift+k") == 1


@pytest.mark.parametrize("keys", ["ctrl+alt+k", "ctrl+alt+shift+super+k", "k", "shift+k", "ctrl+alt+shift+j",
                                  "ctrl+alt+shift+Left"])
def test_other_chords_do_not_fire(listening, keys):
    backend, presses, display = listening
    assert fire_and_count(display, presses, "key", keys) == 0


def test_holding_the_chord_fires_once_despite_auto_repeat(listening):
    backend, presses, display = listening
    from pynput import keyboard

    repeats = []
    raw = keyboard.Listener(on_press=lambda key: repeats.append(key) if getattr(key, "char", None) == "K" else None)
    raw.daemon = True
    raw.start()
    raw.wait()
    try:
        caused = fire_and_count(display, presses, "keydown", "ctrl+alt+shift+k", "sleep", "1.2",
                                "keyup", "k", "keyup", "ctrl+alt+shift")
    finally:
        raw.stop()
    assert len(repeats) > 3, "the X server did not auto-repeat, so this test proved nothing"
    assert caused == 1


def test_releasing_and_pressing_the_key_again_fires_again(listening):
    backend, presses, display = listening
    caused = fire_and_count(display, presses, "keydown", "ctrl+alt+shift", "key", "k", "key", "k",
                            "keyup", "ctrl+alt+shift")
    assert caused == 2


def test_stop_returns_at_once_and_nothing_fires_after_it(listening):
    backend, presses, display = listening
    listener = backend._session.listener
    began = time.monotonic()
    backend.stop()
    took = time.monotonic() - began
    assert took < 2.0, f"stop() took {took:.2f} s"
    listener.join(1.0)
    assert not listener.is_alive(), "the listener thread outlived stop() (it waits for a key event)"
    assert not backend.active
    xdotool(display, "key", "ctrl+alt+shift+k")
    assert not presses.wait_for(1, timeout=0.3)
    backend.stop()  # twice is harmless


def test_start_after_stop_listens_for_the_new_chord(listening):
    backend, presses, display = listening
    backend.stop()
    backend.start(hk.parse_chord("<ctrl>+<alt>+j"), presses)
    xdotool(display, "key", "ctrl+alt+k")
    xdotool(display, "key", "ctrl+alt+j")
    assert presses.wait_for(1)
    backend.stop()
    assert len(presses.times) == 1


def test_a_missed_modifier_release_heals_itself(listening):
    backend, presses, display = listening
    matcher = backend._session.matcher
    matcher.held["cmd"] = time.monotonic() - STALE_AFTER - 5  # Super "held" since a lock screen ate its release
    assert fire_and_count(display, presses, "key", "ctrl+alt+shift+k") == 1


def test_a_really_held_extra_modifier_still_blocks(listening):
    backend, presses, display = listening
    matcher = backend._session.matcher
    xdotool(display, "keydown", "super")
    try:
        deadline = time.monotonic() + WAIT
        while "cmd" not in matcher.held and time.monotonic() < deadline:
            time.sleep(0.01)
        matcher.held["cmd"] = time.monotonic() - STALE_AFTER - 5  # old, but the key is really down
        xdotool(display, "key", "ctrl+alt+shift+k")
    finally:
        xdotool(display, "keyup", "super")
    assert fire_and_count(display, presses, "sleep", "0") == 0


def test_the_x11_probe_reads_physical_modifier_state(xdisplay):
    probe = X11Modifiers()
    try:
        assert probe("cmd") is False
        xdotool(xdisplay, "keydown", "super")
        assert probe("cmd") is True
        xdotool(xdisplay, "keyup", "super")
        assert probe("cmd") is False
        assert probe("ctrl") is False
    finally:
        probe.close()


def test_latency_from_xdotool_to_callback(listening, record_property):
    backend, presses, display = listening
    latencies = []
    for i in range(20):
        began = time.monotonic()
        # --delay 0: xdotool otherwise sleeps ~20 ms inside each chord, which would be measured instead of us.
        xdotool(display, "key", "--delay", "0", "ctrl+alt+shift+k")
        assert presses.wait_for(i + 1)
        latencies.append(presses.times[i] - began)
    p50 = statistics.median(latencies)
    record_property("hotkey_latency_p50_ms", round(p50 * 1000, 1))
    print(f"\nhotkey latency over 20 presses: p50 {p50 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    assert p50 < 0.5


# ------------------------------------------------------------------------------ portal over real D-Bus

@pytest.fixture
def session_bus():
    """A private dbus-daemon: nothing else on it unless the test puts it there."""
    if shutil.which("dbus-daemon") is None:
        raise RuntimeError("dbus-daemon is not installed (Debian: apt-get install dbus-daemon)")
    directory = tempfile.mkdtemp(prefix="ksbus-")  # short: socket paths are limited to ~104 bytes
    config = Path(directory, "bus.conf")
    config.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={directory}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
    proc = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, text=True)
    address = proc.stdout.readline().strip()
    assert address.startswith("unix:"), address
    yield address
    proc.terminate()
    proc.wait(timeout=5)
    proc.stdout.close()
    shutil.rmtree(directory, ignore_errors=True)


class FakePortal(threading.Thread):
    """Plays xdg-desktop-portal's GlobalShortcuts side, per its published D-Bus interface."""

    def __init__(self, address: str, *, bind_response: int = 0, bind: bool = True):
        super().__init__(daemon=True)
        from jeepney import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self.conn = open_dbus_connection(address)
        self.conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.portal.Desktop"), timeout=5)
        self.bind_response, self.bind = bind_response, bind
        self.calls: list[tuple[str, str, tuple]] = []
        self.sessions: dict[str, str] = {}  # client unique name -> session path
        self.closed: list[str] = []
        self.send_lock = threading.Lock()
        self.bound = threading.Event()
        self.stopping = threading.Event()
        self.start()

    def run(self):
        from jeepney import MessageType

        while not self.stopping.is_set():
            try:
                msg = self.conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except OSError:
                return
            if msg.header.message_type == MessageType.method_call:
                self.handle(msg)

    def send(self, msg, destination=None):
        from jeepney import HeaderFields

        if destination:
            msg.header.fields[HeaderFields.destination] = destination
        with self.send_lock:
            self.conn.send(msg)

    def handle(self, msg):
        from jeepney import DBusAddress, HeaderFields, new_error, new_method_return, new_signal

        fields = msg.header.fields
        iface, member = fields.get(HeaderFields.interface), fields[HeaderFields.member]
        path, sender = fields[HeaderFields.path], fields[HeaderFields.sender]
        self.calls.append((iface, member, msg.body))
        client = sender.lstrip(":").replace(".", "_")
        if (iface, member) == ("org.freedesktop.DBus.Properties", "Get"):
            if msg.body == ("org.freedesktop.portal.GlobalShortcuts", "version"):
                return self.send(new_method_return(msg, "v", (("u", 1),)))
        elif (iface, member) == ("org.freedesktop.host.portal.Registry", "Register"):
            return self.send(new_method_return(msg))
        elif (iface, member) == ("org.freedesktop.portal.GlobalShortcuts", "CreateSession"):
            options = msg.body[0]
            handle = f"/org/freedesktop/portal/desktop/request/{client}/{options['handle_token'][1]}"
            session = f"/org/freedesktop/portal/desktop/session/{client}/{options['session_handle_token'][1]}"
            self.sessions[sender] = session
            self.send(new_method_return(msg, "o", (handle,)))
            return self.send(new_signal(DBusAddress(handle, interface="org.freedesktop.portal.Request"), "Response",
                                        "ua{sv}", (0, {"session_handle": ("s", session)})), sender)
        elif (iface, member) == ("org.freedesktop.portal.GlobalShortcuts", "BindShortcuts"):
            session, shortcuts, _parent, options = msg.body
            handle = f"/org/freedesktop/portal/desktop/request/{client}/{options['handle_token'][1]}"
            self.send(new_method_return(msg, "o", (handle,)))
            bound = [(sid, {"description": info["description"], "trigger_description": ("s", "Ctrl+Alt+Shift+K")})
                     for sid, info in shortcuts] if self.bind else []
            self.send(new_signal(DBusAddress(handle, interface="org.freedesktop.portal.Request"), "Response",
                                 "ua{sv}", (self.bind_response, {"shortcuts": ("a(sa{sv})", bound)})), sender)
            return self.bound.set()
        elif (iface, member) == ("org.freedesktop.portal.Session", "Close"):
            self.closed.append(path)
            return self.send(new_method_return(msg))
        self.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod"))

    def activate(self, shortcut_id: str, session: str | None = None):
        from jeepney import DBusAddress, new_signal

        client, own_session = next(iter(self.sessions.items()))
        self.send(new_signal(DBusAddress("/org/freedesktop/portal/desktop",
                                         interface="org.freedesktop.portal.GlobalShortcuts"), "Activated",
                             "osta{sv}", (session or own_session, shortcut_id, 1234, {})), client)

    def call(self, member: str):
        return [body for iface, name, body in self.calls if name == member]

    def close(self):
        self.stopping.set()
        self.join(2)
        self.conn.close()


def wayland_env(address: str) -> dict[str, str]:
    return {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "DBUS_SESSION_BUS_ADDRESS": address}


def test_wayland_with_a_bus_but_no_portal_gives_a_null_backend(session_bus):
    backend = hk.choose_backend(wayland_env(session_bus), "linux")
    assert isinstance(backend, hk.NullHotkey)
    assert "GlobalShortcuts" in backend.reason and "killswitch stop" in backend.reason


def test_portal_binds_the_chord_and_fires_on_activated(session_bus):
    portal = FakePortal(session_bus)
    backend = hk.choose_backend(wayland_env(session_bus), "linux")
    try:
        assert backend.name == "portal" and backend.available
        assert hk.describe(DEFAULT, wayland_env(session_bus), "linux")[0][0] == "ok"
        presses, problems = Presses(), []
        backend.start(hk.parse_chord(DEFAULT), presses, on_problem=problems.append)
        assert portal.bound.wait(WAIT)
        assert portal.call("Register") == [("io.github.killswitch.Killswitch", {})]  # the desktop entry's id
        (session, shortcuts, _parent, _options), = portal.call("BindShortcuts")
        assert shortcuts == [("stop-all-agents", {"description": ("s", "Stop all AI agents (killswitch)"),
                                                  "preferred_trigger": ("s", "CTRL+ALT+SHIFT+k")})]
        portal.activate("some-other-shortcut")
        portal.activate("stop-all-agents", session="/org/freedesktop/portal/desktop/session/x/y")
        portal.activate("stop-all-agents")
        assert presses.wait_for(1)
        portal.activate("stop-all-agents")
        assert presses.wait_for(2)
        assert len(presses.times) == 2 and problems == []
        assert backend.trigger == "Ctrl+Alt+Shift+K"
        worker = backend._worker
        began = time.monotonic()
        backend.stop()
        assert time.monotonic() - began < 2.0
        assert not worker.is_alive()
        deadline = time.monotonic() + WAIT
        while not portal.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert portal.closed == [session]
    finally:
        backend.stop()
        portal.close()


@pytest.mark.parametrize("bind_response, bind, words", [(1, True, "cancelled"), (0, False, "did not bind")])
def test_portal_reports_a_refused_binding(session_bus, bind_response, bind, words):
    portal = FakePortal(session_bus, bind_response=bind_response, bind=bind)
    backend = hk.choose_backend(wayland_env(session_bus), "linux")
    try:
        problem = threading.Event()
        messages = []
        backend.start(hk.parse_chord(DEFAULT), lambda: None,
                      on_problem=lambda text: (messages.append(text), problem.set()))
        assert problem.wait(WAIT)
        assert words in messages[0] and words in backend.problem
    finally:
        backend.stop()
        portal.close()


# ------------------------------------------------------------------------------------ GNOME fallback

def test_gnome_commands_keep_existing_shortcuts_and_quote_the_command():
    other = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/custom0/"
    commands = hk.gnome_shortcut_commands("/opt/my apps/python -m killswitch stop 'now'", DEFAULT, [other])
    entry = f"{gnome.CUSTOM_SCHEMA}:{gnome.KEY_PATH}"
    assert commands == [
        ["gsettings", "set", entry, "name", "'killswitch: stop all AI agents'"],
        ["gsettings", "set", entry, "command", "'/opt/my apps/python -m killswitch stop \\'now\\''"],
        ["gsettings", "set", entry, "binding", "'<Control><Alt><Shift>k'"],
        ["gsettings", "set", gnome.MEDIA_KEYS, "custom-keybindings", f"['{other}', '{gnome.KEY_PATH}']"],
    ]
    again = hk.gnome_shortcut_commands("killswitch stop", DEFAULT, [other, gnome.KEY_PATH])
    assert again[-1][-1] == f"['{other}', '{gnome.KEY_PATH}']"
    with pytest.raises(hk.HotkeyError):
        hk.gnome_shortcut_commands("killswitch stop", "<ctrl>+<nonsense>")


GNOME_SCHEMA = """<schemalist>
  <schema id="org.gnome.settings-daemon.plugins.media-keys" path="/org/gnome/settings-daemon/plugins/media-keys/">
    <key name="custom-keybindings" type="as"><default>[]</default></key>
  </schema>
  <schema id="org.gnome.settings-daemon.plugins.media-keys.custom-keybinding">
    <key name="name" type="s"><default>''</default></key>
    <key name="command" type="s"><default>''</default></key>
    <key name="binding" type="s"><default>''</default></key>
  </schema>
</schemalist>
"""


@pytest.fixture
def gnome_settings(tmp_path):
    """A real gsettings on gnome-settings-daemon's media-keys schema (same ids and keys), keyfile-backed."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "org.gnome.settings-daemon.plugins.media-keys.gschema.xml").write_text(GNOME_SCHEMA)
    subprocess.run(["glib-compile-schemas", str(schemas)], check=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GSETTINGS_SCHEMA_DIR": str(schemas),
           "GSETTINGS_BACKEND": "keyfile", "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def get(schema: str, key: str) -> str:
        return subprocess.run(["gsettings", "get", schema, key], env=env, check=True, capture_output=True,
                              text=True).stdout.strip()
    return env, get


def test_create_gnome_shortcut_writes_a_working_entry_with_real_gsettings(gnome_settings):
    env, get = gnome_settings
    other = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/custom0/"
    subprocess.run(["gsettings", "set", gnome.MEDIA_KEYS, "custom-keybindings", f"['{other}']"], env=env, check=True)
    command = "/opt/my apps/python -m killswitch stop 'now'"
    assert hk.create_gnome_shortcut(command, DEFAULT, env=env) == "<Control><Alt><Shift>k"
    hk.create_gnome_shortcut(command, DEFAULT, env=env)  # twice: updated, not duplicated
    assert gnome.parse_path_list(get(gnome.MEDIA_KEYS, "custom-keybindings")) == [other, gnome.KEY_PATH]
    entry = f"{gnome.CUSTOM_SCHEMA}:{gnome.KEY_PATH}"
    assert get(entry, "binding") == "'<Control><Alt><Shift>k'"
    assert get(entry, "command") == '"' + command + '"'
    assert get(entry, "name") == "'killswitch: stop all AI agents'"


def test_create_gnome_shortcut_explains_missing_gsettings_or_schema(tmp_path):
    with pytest.raises(hk.HotkeyError, match="gsettings is not installed"):
        hk.create_gnome_shortcut("killswitch stop", DEFAULT, env={"PATH": str(tmp_path)})
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GSETTINGS_SCHEMA_DIR": str(tmp_path),
           "XDG_DATA_DIRS": str(tmp_path), "GSETTINGS_BACKEND": "memory"}
    with pytest.raises(hk.HotkeyError, match="is this GNOME"):
        hk.create_gnome_shortcut("killswitch stop", DEFAULT, env=env)
