"""A real desktop for end-to-end runs: Xvfb, Debian's `trayer` as the tray host, and the tray app
started as a user would. Used by the end-to-end tests, the screenshot script and the benchmarks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.helpers.xserver import running_xvfb, xdotool

ROOT = Path(__file__).resolve().parents[2]


def search(display: str, *args: str) -> list[str]:
    """`xdotool search …`: the window ids, or [] (xdotool exits 1 when nothing matches)."""
    out = subprocess.run(["xdotool", "search", *args], env=desktop_env(display), capture_output=True, text=True,
                         timeout=10)
    return out.stdout.split()


def desktop_env(display: str, base_env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(base_env or os.environ)
    env.update({"DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "XDG_SESSION_TYPE": "x11"})
    env.pop("WAYLAND_DISPLAY", None)
    return env


@contextmanager
def tray_host(display: str) -> Iterator[subprocess.Popen]:
    """trayer docked at the top right, as a panel would be."""
    if not shutil.which("trayer"):
        raise RuntimeError("trayer is not installed (scripts/test installs it as root)")
    proc = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                             "--height", "32", "--SetDockType", "true", "--transparent", "false",
                             "--tint", "0x333333"], env=desktop_env(display), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not search(display, "--class", "trayer"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("trayer did not start")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def ui_info(env: dict[str, str]) -> dict | None:
    """What the running tray says about itself over its socket, or None if it does not answer."""
    code = ("import json; from killswitch.runtime import service; from killswitch.core.paths import Paths\n"
            "try:\n    print(json.dumps(service.request(Paths.from_env(), {'cmd': 'ui'}, timeout=1)))\n"
            "except service.NoService:\n    print('null')")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=20)
    return json.loads(out.stdout or "null") if out.returncode == 0 else None


def wait_ui(env: dict[str, str], predicate, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        info = ui_info(env)
        if info and predicate(info.get("ui") or {}):
            return info["ui"]
        time.sleep(0.1)
    raise AssertionError(f"the tray never reached the expected state; last: {info}")


@contextmanager
def tray_app(env: dict[str, str]) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-m", "killswitch", "tray"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def tray_icon_center(display: str) -> tuple[int, int]:
    """The centre of the icon trayer docked (the only client in it)."""
    for window in search(display, "--class", "trayer"):
        geometry = xdotool(display, "getwindowgeometry", "--shell", window).stdout
        values = dict(line.split("=", 1) for line in geometry.split() if "=" in line)
        x, y, w, h = (int(values[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        if w > 10 and h > 10:
            return x + w // 2, y + h // 2
    raise AssertionError("no tray icon found in trayer")


__all__ = ["search", "desktop_env", "running_xvfb", "tray_app", "tray_host", "tray_icon_center", "ui_info", "wait_ui",
           "xdotool"]
