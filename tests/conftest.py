"""Shared fixtures: a private home per test, real processes to stop, a private X server; and the
`unit`/`e2e` marks. The helpers themselves (waiting, the fake clock, processes, Xvfb, the desktop)
are in tests.helpers."""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Iterator

import pytest

# The in-process QApplication (pytest-qt's) is always offscreen; end-to-end tests start the real app
# on their own Xvfb with an explicit environment. Set before pytest-qt creates the application.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

from killswitch.core.paths import Paths  # noqa: E402
from tests.helpers import xserver as xserver_helper  # noqa: E402
from tests.helpers.processes import Agents  # noqa: E402

# A test is `e2e` if it needs a real desktop (Xvfb, trayer, xdotool) or builds and installs the
# package: its module says `pytestmark = pytest.mark.e2e`, the test carries the mark itself, or it
# uses one of these fixtures. Every other test is `unit` and runs without any X server.
E2E_FIXTURES = frozenset({"xserver", "xdisplay"})


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("e2e") is None and E2E_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.unit)
        elif item.get_closest_marker("unit") is not None:
            raise pytest.UsageError(f"{item.nodeid} is marked both unit and e2e")


@pytest.fixture(autouse=True)
def _unit_tests_start_no_x_server(request):
    """Keeps the marks honest: a `unit` test that starts Xvfb fails, even where Xvfb is installed."""
    if request.node.get_closest_marker("e2e") is None:
        xserver_helper.refusal = f"{request.node.nodeid} starts Xvfb: mark it e2e (see tests/conftest.py)"
    yield
    xserver_helper.refusal = None


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home: every XDG dir, the flag and the runtime dir are private to this test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    # Unix socket paths are limited to ~104 bytes: keep the runtime dir short.
    runtime = tempfile.mkdtemp(prefix="ks-")
    os.chmod(runtime, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    monkeypatch.delenv("KILLSWITCH_FLAG", raising=False)
    # Off-days in tests block hosts in a private file, never the machine's /etc/hosts.
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    monkeypatch.setenv("KILLSWITCH_HOSTS_FILE", str(tmp_path / "hosts"))
    (tmp_path / "home").mkdir()
    yield Paths.from_env()
    subprocess.run(["rm", "-rf", runtime], check=False)


@pytest.fixture
def agents():
    """Stand-in agent processes with a marker of this test's own; all killed afterwards."""
    spawned = Agents()
    yield spawned
    spawned.cleanup()


@pytest.fixture(scope="session")
def xserver() -> Iterator[str]:
    """One private Xvfb for the session: its DISPLAY string (":N"). Makes the test `e2e`."""
    with xserver_helper.running_xvfb() as display:
        yield display


@pytest.fixture
def xdisplay(xserver, monkeypatch) -> str:
    """`xserver`, with DISPLAY set for this test (and Wayland variables cleared so X11 is chosen)."""
    monkeypatch.setenv("DISPLAY", xserver)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    return xserver
