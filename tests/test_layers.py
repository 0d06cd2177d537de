"""What each hot path imports (the cold stop's latency and the idle tray's memory depend on it), and
the layers the README promises, checked on the import graph itself."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# Never on these paths: each costs milliseconds to import or megabytes to keep.
HEAVY = ("sqlite3", "PySide6", "shiboken6", "psutil", "tomlkit", "dateutil", "jeepney", "pynput", "Xlib",
         "dataclasses", "logging", "shtab", "argparse_manpage", "importlib.metadata", "email", "http")
# Only the tray may load Qt and the journal; it still never loads these.
TRAY_HEAVY = ("psutil", "tomlkit", "shtab", "argparse_manpage", "importlib.metadata", "email", "http")

CHECK_MODULES = {"killswitch", "killswitch.cli", "killswitch.core", "killswitch.core.flag"}
STOP_MODULES = CHECK_MODULES | {
    "killswitch.core.atomic", "killswitch.core.config", "killswitch.core.lock", "killswitch.core.paths",
    "killswitch.core.rules", "killswitch.core.selection", "killswitch.platform", "killswitch.platform.control",
    "killswitch.platform.procfs", "killswitch.core.engine", "killswitch.runtime", "killswitch.runtime.engine"}
# Budgets on the whole count (standard library included), measured when they were set plus ~10 %.
CHECK_BUDGET, STOP_BUDGET, TRAY_BUDGET = 86, 142, 260


def loaded_by_cli(home, argv: list[str]) -> list[str]:
    code = f"import json, sys\nfrom killswitch.cli import main\nmain({argv!r})\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def ours(modules: list[str]) -> set[str]:
    return {m for m in modules if m == "killswitch" or m.startswith("killswitch.")}


def heavy(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_check_loads_almost_nothing(home):
    modules = loaded_by_cli(home, ["check"])
    assert ours(modules) <= CHECK_MODULES, ours(modules) - CHECK_MODULES
    assert not heavy(modules, HEAVY + ("argparse", "socket", "tomllib", "platformdirs"))
    assert len(modules) <= CHECK_BUDGET, len(modules)


def test_a_cold_stop_loads_only_the_stop_path(home):
    modules = loaded_by_cli(home, ["stop"])
    assert ours(modules) <= STOP_MODULES, ours(modules) - STOP_MODULES
    assert not heavy(modules, HEAVY), heavy(modules, HEAVY)
    assert len(modules) <= STOP_BUDGET, len(modules)


TRAY_DRIVER = textwrap.dedent("""
    import json, sys
    from killswitch.ui import app
    from killswitch.ui.qt import QApplication, QTimer

    start = app.KillswitchApp.start

    def started(self):
        start(self)
        def dump():
            print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
            QApplication.instance().exit(0)
        QTimer.singleShot(1500, dump)  # after the first index, the hotkey and the journal's first filing

    app.KillswitchApp.start = started
    sys.exit(app.run([sys.argv[0]]))
""")


def test_the_idle_tray_keeps_out_the_cli_and_the_helpers(home):
    out = subprocess.run([sys.executable, "-c", TRAY_DRIVER], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    modules = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("MODULES "))[8:])
    mine = ours(modules)
    assert not {m for m in mine if m.startswith(("killswitch.cli", "killswitch.helper", "killswitch.agents"))}, mine
    assert not {m for m in mine if m.startswith("killswitch.ui.") and m.split(".")[2] in (
        "settings", "history", "history_model", "offdays", "resume", "rate_prompt", "hotkey_edit")}, mine
    assert "dateutil" not in {m.split(".")[0] for m in modules}  # no off-day scheduled: no rrule
    assert not heavy(modules, TRAY_HEAVY), heavy(modules, TRAY_HEAVY)
    assert len(modules) <= TRAY_BUDGET, len(modules)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
