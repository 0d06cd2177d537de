"""killswitch installed as users install it, and run as they run it.

A clean copy of the tree (the files git tracks, or would), built into an sdist and a wheel built
from that sdist (`python -m build`), installed non-editable into a fresh venv; `pip install .` and
`pipx install .` from the same copy. Every program runs from outside the checkout, so nothing can be
read from the source tree by accident.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import killswitch
from tests.helpers.desktop import desktop_env, running_xvfb, tray_host, wait_ui, xdotool
from tests.helpers.processes import rule_for, write_config
from tests.helpers.waiting import wait_for, wait_state

ROOT = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT = 600  # a fresh venv resolves every dependency (from pip's cache after the first run)
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(INSTALL_TIMEOUT)]


def clean_copy(dest: Path) -> Path:
    """What a fresh clone holds: tracked files plus untracked ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, timeout=60)
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): everything but build output
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".venv", "build", "dist", "*.egg-info",
                                                                  "__pycache__", ".pytest_cache"))
        return dest
    for rel in filter(None, listed.stdout.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def user_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A private home, and nothing of this test run's Python: no PYTHONPATH, no venv on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "XDG_", "KILLSWITCH"))}
    home = tmp / "home"
    runtime = tmp / "run"
    for d in (home, runtime):
        d.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    (tmp / "hosts").write_text("127.0.0.1 localhost\n")
    env.update({"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "KILLSWITCH_HOSTS_FILE": str(tmp / "hosts"),
                "PATH": os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                        if not p.startswith(str(ROOT)))})
    env.update(extra)
    return env


def run(argv: list[str | Path], tmp: Path, env: dict[str, str] | None = None, timeout: float = 60,
        **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def resource_files() -> set[str]:
    base = ROOT / "killswitch" / "resources"
    return {str(p.relative_to(ROOT)) for p in base.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("build")
    src = clean_copy(tmp / "src")
    out = run([sys.executable, "-m", "build", "--no-isolation", "--outdir", tmp / "dist", src], tmp,
              timeout=INSTALL_TIMEOUT)
    assert out.returncode == 0, out.stdout + out.stderr
    wheels, sdists = list((tmp / "dist").glob("*.whl")), list((tmp / "dist").glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list((tmp / "dist").iterdir())
    return {"src": src, "wheel": wheels[0], "sdist": sdists[0], "tmp": tmp}


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory):
    """The wheel, installed with its dependencies into a venv that has never seen the checkout."""
    tmp = tmp_path_factory.mktemp("venv")
    assert run([sys.executable, "-m", "venv", tmp / "venv"], tmp).returncode == 0
    out = run([tmp / "venv/bin/python", "-m", "pip", "install", "-q", built["wheel"]], tmp, timeout=INSTALL_TIMEOUT)
    assert out.returncode == 0, out.stdout + out.stderr
    return tmp / "venv" / "bin"


def test_the_wheel_and_the_sdist_carry_every_runtime_file(built):
    wanted = resource_files()
    assert {"killswitch/resources/icons/killswitch-running.svg", "killswitch/resources/helper/sudoers.in",
            "killswitch/resources/desktop/launcher.desktop", "killswitch/resources/desktop/metainfo.xml"} <= wanted
    in_wheel = set(zipfile.ZipFile(built["wheel"]).namelist())
    assert wanted <= in_wheel, wanted - in_wheel
    with tarfile.open(built["sdist"]) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert wanted <= in_sdist, wanted - in_sdist
    assert built["wheel"].name == f"killswitch-{killswitch.__version__}-py3-none-any.whl"


def test_the_installed_program_is_not_the_checkout(venv, tmp_path):
    env = user_env(tmp_path)
    where = run([venv / "python", "-c", "import killswitch, killswitch.resources as r; "
                                       "print(killswitch.__file__); print(r.resource('icons'))"], tmp_path, env)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert line.startswith(str(venv.parent)) and "site-packages" in line, line
    version = run([venv / "killswitch", "--version"], tmp_path, env)
    assert version.returncode == 0 and version.stdout.strip() == f"killswitch {killswitch.__version__}"
    assert (venv / "killswitch-tray").is_file()


def test_installed_stop_freezes_an_agent_and_resume_continues_it(venv, tmp_path, home, agents):
    env = user_env(tmp_path, **{k: os.environ[k] for k in ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME",
                                                            "XDG_DATA_HOME", "XDG_RUNTIME_DIR")})
    write_config(home, rule_for(agents.marker))
    agent = agents.spawn()
    stop = run([venv / "killswitch", "stop", "--reason", "installed", "--json"], tmp_path, env)
    assert stop.returncode == 0, stop.stderr
    assert [p["pid"] for p in json.loads(stop.stdout)["suspended"]] == [agent.pid]
    assert wait_state(agent.pid, "T") == "T"
    assert run([venv / "killswitch", "check"], tmp_path, env).returncode == 1
    assert json.loads(home.flag.read_text())["message"] == "installed"
    resume = run([venv / "killswitch", "resume", "--yes"], tmp_path, env, stdin=subprocess.DEVNULL)
    assert resume.returncode == 0, resume.stderr
    assert wait_state(agent.pid, "SR") in ("S", "R")
    assert not home.flag.exists()


def test_installed_helper_finds_its_templates(venv, tmp_path):
    root = tmp_path / "root"
    env = user_env(tmp_path)
    out = run([venv / "killswitch", "helper", "install", "--root", root, "--user", "root"], tmp_path, env)
    assert out.returncode == 0, out.stderr
    launcher = (root / "usr/local/sbin/killswitch-hosts-helper").read_text()
    assert "@" not in launcher and "sys.path.insert(0, \"/usr/local/lib/killswitch-helper\")" in launcher
    assert "ExecStart=/usr/local/sbin/killswitch-hosts-helper check" in (
        root / "etc/systemd/system/killswitch-hosts.service").read_text()
    copied = root / "usr/local/lib/killswitch-helper/killswitch/helper/root.py"
    assert copied.read_bytes() == (ROOT / "killswitch/helper/root.py").read_bytes()


def test_installed_tray_docks_stays_up_and_the_chord_stops(venv, tmp_path, home, agents):
    write_config(home, rule_for(agents.marker))
    agent = agents.spawn()
    with running_xvfb() as display, tray_host(display):
        env = desktop_env(display, user_env(tmp_path, **{k: os.environ[k] for k in (
            "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR")}))
        tray = subprocess.Popen([str(venv / "killswitch"), "tray"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            ui = wait_ui(env, lambda u: u.get("tray_visible") and u.get("hotkey"))
            assert not ui["window_visible"] and ui["state"] == "running"
            xdotool(display, "key", "ctrl+alt+shift+k")  # the installed tray's own hotkey
            assert wait_state(agent.pid, "T") == "T"
            assert wait_for(home.flag.exists, message="a flag: the chord froze the agent but wrote no flag")
            assert json.loads(home.flag.read_text())["pid"] == tray.pid
            wait_ui(env, lambda u: u.get("state") == "stopped")
            resume = run([venv / "killswitch", "resume", "--yes"], tmp_path, env, stdin=subprocess.DEVNULL)
            assert resume.returncode == 0, resume.stderr
            assert wait_state(agent.pid, "SR") in ("S", "R")
            wait_ui(env, lambda u: u.get("state") == "running")
            assert tray.poll() is None, tray.communicate()
        finally:
            tray.send_signal(signal.SIGTERM)
            out, err = tray.communicate(timeout=20)
        assert tray.returncode == 0, err
        assert "Traceback" not in err


def test_a_tray_that_cannot_start_says_why_on_stderr(venv, tmp_path):
    env = user_env(tmp_path)
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(var, None)
    out = run([venv / "killswitch-tray"], tmp_path, env)
    assert out.returncode == 1 and "no graphical session" in out.stderr and "killswitch serve" in out.stderr
    # An incomplete install (an icon lost): the message names it, on stderr, and the exit is non-zero.
    icon = next(venv.parent.glob("lib/python*/site-packages/killswitch/resources/icons/killswitch-stopped.svg"))
    saved = icon.read_bytes()
    icon.unlink()
    try:
        with running_xvfb() as display:
            out = run([venv / "killswitch", "tray"], tmp_path, desktop_env(display, env))
    finally:
        icon.write_bytes(saved)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the tray could not start" in out.stderr and "icons/killswitch-stopped.svg" in out.stderr
    assert "installed incompletely" in out.stderr


def test_pip_install_dot_from_a_clean_copy(built, tmp_path):
    assert run([sys.executable, "-m", "venv", tmp_path / "v"], tmp_path).returncode == 0
    out = run([tmp_path / "v/bin/pip", "install", "-q", built["src"]], tmp_path, timeout=INSTALL_TIMEOUT)
    assert out.returncode == 0, out.stdout + out.stderr
    env = user_env(tmp_path)
    site = next((tmp_path / "v").glob("lib/python*/site-packages"))
    assert (site / "killswitch/resources/icons/killswitch-running.svg").is_file()
    assert not list(site.glob("__editable__*")), "not an editable install"
    assert run([tmp_path / "v/bin/killswitch", "stop"], tmp_path, env).returncode == 0
    assert run([tmp_path / "v/bin/killswitch", "check"], tmp_path, env).returncode == 1
    assert run([tmp_path / "v/bin/killswitch", "resume", "--yes"], tmp_path, env).returncode == 0
    dry = run([tmp_path / "v/bin/killswitch", "helper", "install", "--root", tmp_path / "r", "--dry-run"],
              tmp_path, env)
    assert dry.returncode == 0 and "would write" in dry.stdout, dry.stderr


def test_pipx_install_and_desktop_install_point_at_the_pipx_venv(built, tmp_path):
    pipx = Path(sys.executable).parent / "pipx"
    env = user_env(tmp_path, PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"),
                   PIPX_MAN_DIR=str(tmp_path / "man"))
    out = run([pipx, "install", built["src"]], tmp_path, env, timeout=INSTALL_TIMEOUT)
    assert out.returncode == 0, out.stdout + out.stderr
    bin_dir = tmp_path / "bin"
    assert run([bin_dir / "killswitch", "--version"], tmp_path, env).stdout.strip() == \
        f"killswitch {killswitch.__version__}"
    assert (bin_dir / "killswitch-tray").exists()
    out = run([bin_dir / "killswitch", "desktop", "install"], tmp_path, env)
    assert out.returncode == 0, out.stderr
    launcher = (tmp_path / "home/.local/share/applications/io.github.killswitch.Killswitch.desktop").read_text()
    exec_line = next(line for line in launcher.splitlines() if line.startswith("Exec="))
    target = Path(exec_line.removeprefix("Exec="))
    assert target.is_file() and str(target).startswith(str(tmp_path / "pipx")), exec_line
    assert (tmp_path / "home/.config/autostart/io.github.killswitch.Killswitch.desktop").is_file()
    assert run([bin_dir / "killswitch", "desktop", "uninstall"], tmp_path, env).returncode == 0
    assert not (tmp_path / "home/.local/share/applications").exists()
