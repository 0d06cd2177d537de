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

CHECK_MODULES = {"killswitch", "killswitch.cli", "killswitch.cli.common", "killswitch.core", "killswitch.core.flag"}
STOP_MODULES = CHECK_MODULES | {
    "killswitch.core.atomic", "killswitch.core.config", "killswitch.core.lock", "killswitch.core.paths",
    "killswitch.core.rules", "killswitch.core.selection", "killswitch.platform", "killswitch.platform.control",
    "killswitch.platform.procfs", "killswitch.runtime.engine", "killswitch.runtime"}
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
    from killswitch.ui import app, start as launch
    from killswitch.ui.qt import QApplication, QTimer

    start = app.KillswitchApp.start

    def started(self):
        start(self)
        def dump():
            print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
            QApplication.instance().exit(0)
        QTimer.singleShot(1500, dump)  # after the first index, the hotkey and the journal's first filing

    app.KillswitchApp.start = started
    sys.exit(launch.run([sys.argv[0]]))
""")


def test_the_idle_tray_keeps_out_the_cli_and_the_helpers(home):
    out = subprocess.run([sys.executable, "-c", TRAY_DRIVER], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    modules = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("MODULES "))[8:])
    mine = ours(modules)
    assert not {m for m in mine if m.startswith(("killswitch.cli", "killswitch.helper", "killswitch.agents"))}, mine
    assert not {m for m in mine if m.startswith("killswitch.ui.") and m.split(".")[2] in (
        "settings", "rules_editor", "history", "history_model", "offdays", "resume", "rate_prompt",
        "hotkey_edit")}, mine
    assert "dateutil" not in {m.split(".")[0] for m in modules}  # no off-day scheduled: no rrule
    assert not heavy(modules, TRAY_HEAVY), heavy(modules, TRAY_HEAVY)
    assert len(modules) <= TRAY_BUDGET, len(modules)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))


# -- the import graph -----------------------------------------------------------------------------
import ast  # noqa: E402
from pathlib import Path  # noqa: E402

PACKAGE = Path(__file__).resolve().parent.parent / "killswitch"


def import_graph() -> dict[str, set[str]]:
    """Every module and what it imports, at any depth (a lazy import in a function is a dependency
    all the same). Relative imports are resolved; only absolute names are kept."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[module] = found
    return graph


def layer_violations(graph: dict[str, set[str]], layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{module} imports {name}" for module, names in graph.items()
                  if module == layer or module.startswith(layer + ".")
                  for name in names if any(name == f or name.startswith(f + ".") for f in forbidden))


QT = ("PySide6", "shiboken6")
UPPER = ("killswitch.runtime", "killswitch.ui", "killswitch.cli", "killswitch.helper", "killswitch.agents",
         "killswitch.guard", "killswitch.client")


def test_core_imports_neither_qt_nor_platform_nor_anything_above():
    graph = import_graph()
    assert layer_violations(graph, "killswitch.core", QT + ("killswitch.platform",) + UPPER) == []


def test_platform_imports_nothing_above_it():
    assert layer_violations(import_graph(), "killswitch.platform", QT + UPPER) == []


def test_the_helper_imports_only_core_and_platform():
    assert layer_violations(import_graph(), "killswitch.helper", QT + tuple(
        u for u in UPPER if u != "killswitch.helper")) == []


def test_runtime_imports_no_toolkit_no_ui_no_cli():
    assert layer_violations(import_graph(), "killswitch.runtime", QT + ("killswitch.ui", "killswitch.cli")) == []


def test_ui_imports_no_cli_module():
    assert layer_violations(import_graph(), "killswitch.ui", ("killswitch.cli",)) == []


def test_only_ui_qt_imports_the_qt_binding():
    graph = import_graph()
    users = sorted(m for m, names in graph.items() if any(n.split(".")[0] in QT for n in names))
    assert users == ["killswitch.ui.qt"]


def our_modules(names: set[str], graph: dict[str, set[str]]) -> set[str]:
    """The killswitch modules among `names` (`from m import f` names m.f: that is m)."""
    return {n if n in graph else n.rsplit(".", 1)[0] for n in names if n.startswith("killswitch.")}


def test_the_agent_client_is_standard_library_and_its_few_modules():
    """`client.py` is meant to be copied into an agent: it and what it needs, nothing else."""
    graph = import_graph()
    closure, todo = set(), ["killswitch.client"]
    while todo:
        module = todo.pop()
        closure.add(module)
        todo += [m for m in our_modules(graph[module], graph) if m not in closure]
    assert closure <= {"killswitch.client", "killswitch.core", "killswitch.core.flag", "killswitch.core.watch",
                       "killswitch.core.atomic", "killswitch"}, closure


def test_the_root_helper_is_closed_under_its_imports():
    """What `helper install` copies into the root-owned tree is all the helper ever imports."""
    from killswitch.helper.install import HELPER_MODULES

    copied = {".".join(("killswitch", *Path(m).with_suffix("").parts)).removesuffix(".__init__")
              for m in HELPER_MODULES}
    graph = import_graph()
    missing = set()
    for module in copied:
        missing |= {f"{module} imports {m}" for m in our_modules(graph[module], graph) if m not in copied}
    assert missing == set()
