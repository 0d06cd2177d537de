"""Screenshots for the README, taken on a real (virtual) desktop: Xvfb + trayer + the tray app.

    .venv/bin/python -m scripts.screenshots [OUT_DIR]     (from the project root; default: assets/screenshots)

Needs Debian's xvfb, trayer and xdotool (scripts/test installs them as root).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers.desktop import (
    desktop_env,
    running_xvfb,
    search,
    tray_app,
    tray_host,
    tray_icon_center,
    wait_ui,
    xdotool,
)

ROOT = Path(__file__).resolve().parent.parent

GRAB = """
import sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
x, y, w, h = map(int, sys.argv[2:6])
app.primaryScreen().grabWindow(0, x, y, w, h).save(sys.argv[1])
"""


def grab(env: dict[str, str], path: Path, x: int, y: int, w: int, h: int) -> None:
    subprocess.run([sys.executable, "-c", GRAB, str(path), str(x), str(y), str(w), str(h)], env=env, check=True)
    print(f"wrote {path}")


JOURNAL_SHOTS = """
import datetime as dt, sys
from pathlib import Path
from bench.history_bench import NOW, fill  # the current directory is the project root
from killswitch.core.journal import Journal
from killswitch.ui.qt import QApplication, QTimer
from killswitch.ui.history import HistoryWindow
from killswitch.ui.rate_prompt import RatePrompt

out = Path(sys.argv[1])
app = QApplication([])
import tempfile
path = Path(tempfile.mkdtemp(prefix="ks-shots-journal-")) / "journal.sqlite3"
fill(path, 400)
journal = Journal(path, lambda: NOW)
window = HistoryWindow(journal, lambda: NOW)
window.resize(1180, 780)
window.show()
last = [p for p in journal.pauses() if p.end is not None][-1]
prompt = RatePrompt(last, last.end + dt.timedelta(minutes=1))
prompt.show()

def shoot():
    window.grab().save(str(out / "history-window.png"))
    prompt.grab().save(str(out / "rate-prompt.png"))
    app.exit(0)

QTimer.singleShot(800, shoot)
app.exec()
journal.close()
"""


def journal_shots(out: Path, env: dict[str, str]) -> None:
    """The History window (400 pauses over a month) and the rating prompt, rendered offscreen."""
    subprocess.run([sys.executable, "-c", JOURNAL_SHOTS, str(out)],
                   env={**env, "QT_QPA_PLATFORM": "offscreen"}, check=True, cwd=ROOT)
    print(f"wrote {out / 'history-window.png'} and {out / 'rate-prompt.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "assets" / "screenshots", metavar="OUT_DIR",
                        help="where the PNG files go (default: assets/screenshots)")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="ks-shots-"))
    env = dict(os.environ)
    for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_DATA_HOME", "data"), ("XDG_RUNTIME_DIR", "run")):
        (base / sub).mkdir(mode=0o700)
        env[var] = str(base / sub)
    env.pop("KILLSWITCH_FLAG", None)
    config = base / "config" / "killswitch" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[[rules]]\nname = "Claude Code"\ncmdline = "(^|/)claude( |$)"\n')
    journal_shots(out, env)
    with running_xvfb("-screen", "0", "1280x720x24") as display, tray_host(display):
        env = desktop_env(display, env)
        with tray_app(env):
            wait_ui(env, lambda u: u.get("tray_visible") and u.get("hotkey"))
            x, y = tray_icon_center(display)
            xdotool(display, "mousemove", str(x), str(y), "click", "1")
            time.sleep(0.5)
            grab(env, out / "tray-menu-running.png", 880, 0, 400, 190)
            xdotool(display, "key", "Escape")
            xdotool(display, "key", "ctrl+alt+shift+k")
            wait_ui(env, lambda u: u.get("state") == "stopped")
            xdotool(display, "mousemove", str(x), str(y), "click", "1")
            time.sleep(0.5)
            grab(env, out / "tray-menu-stopped.png", 880, 0, 400, 190)
            xdotool(display, "key", "Down", "Return")
            deadline = time.monotonic() + 10
            while not search(display, "--name", "Resume AI agents") and time.monotonic() < deadline:
                time.sleep(0.1)
            (window,) = search(display, "--name", "Resume AI agents")[:1]
            time.sleep(2.2)  # let the countdown run a little, as a person would see it
            geometry = xdotool(display, "getwindowgeometry", "--shell", window).stdout
            values = dict(line.split("=", 1) for line in geometry.split() if "=" in line)
            grab(env, out / "resume-dialog.png", int(values["X"]), int(values["Y"]),
                 int(values["WIDTH"]), int(values["HEIGHT"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
