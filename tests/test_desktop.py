"""`killswitch desktop install|uninstall|status` as a user runs it: the real CLI in a private home,
its files checked with the freedesktop validators, systemd-analyze, man and the real shells."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

import killswitch
from killswitch.platform.hotkey.portal import APP_ID

BIN = Path(sys.executable).parent  # where `killswitch` and `killswitch-tray` are installed
TIMEOUT = 60
STATES = ("running", "stopped", "offday")
DATA_FILES = (f"applications/{APP_ID}.desktop", f"metainfo/{APP_ID}.metainfo.xml",
              f"icons/hicolor/scalable/apps/{APP_ID}.svg", f"icons/hicolor/symbolic/apps/{APP_ID}-symbolic.svg",
              *(f"icons/hicolor/scalable/status/killswitch-{s}.svg" for s in STATES),
              *(f"icons/hicolor/symbolic/status/killswitch-{s}-symbolic.svg" for s in STATES),
              "bash-completion/completions/killswitch", "zsh/site-functions/_killswitch",
              "fish/vendor_completions.d/killswitch.fish", "man/man1/killswitch.1")
AUTOSTART = f"autostart/{APP_ID}.desktop"
COMPONENTS = {"launcher", "icons", "metainfo", "completions", "man", "autostart", "service"}


def user_env(**extra: str) -> dict[str, str]:
    """The test's environment (after `home` patched it), with the venv's scripts on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env or user_env(), capture_output=True, text=True, timeout=TIMEOUT)


def ks(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = run([sys.executable, "-m", "killswitch", *args], env)
    if check:
        assert proc.returncode == 0, f"killswitch {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc


def tree(*dirs: Path) -> dict[str, bytes | str | None]:
    """Every entry under `dirs` (each included): a file's bytes, a link's target, None for a directory."""
    found: dict[str, bytes | str | None] = {}
    for top in dirs:
        paths = [top] if top.exists() else []
        for root, subdirs, files in os.walk(top):
            paths += [Path(root, name) for name in subdirs + files]
        for path in paths:
            key = str(path.relative_to(top.parent))
            found[key] = os.readlink(path) if path.is_symlink() else None if path.is_dir() else path.read_bytes()
    return found


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed (the test script installs it)"
    return found


def desktop_entry(path: Path) -> dict[str, str]:
    keys, group = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            group = line
        elif group == "[Desktop Entry]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys[key] = value
    return keys


def states() -> dict[str, str]:
    return {c["name"]: c["state"] for c in json.loads(ks("desktop", "status", "--json").stdout)["components"]}


@pytest.fixture
def xdg(home, tmp_path):
    env = os.environ
    x = SimpleNamespace(home=Path(env["HOME"]), data=Path(env["XDG_DATA_HOME"]), config=Path(env["XDG_CONFIG_HOME"]))
    assert not x.data.is_relative_to(x.home) and not x.config.is_relative_to(x.home)
    x.all = (x.home, x.data, x.config, Path(env["XDG_STATE_HOME"]), Path(env["XDG_CACHE_HOME"]))
    x.manifest = x.data / "killswitch" / "desktop-install.json"
    x.launcher, x.autostart = x.data / DATA_FILES[0], x.config / AUTOSTART
    x.unit = x.config / "systemd/user/killswitch.service"
    x.wants = x.config / "systemd/user/default.target.wants/killswitch.service"
    return x


def test_install_writes_everything_under_the_xdg_dirs(xdg):
    before = tree(*xdg.all)
    ks("desktop", "install")
    for rel in DATA_FILES:
        assert (xdg.data / rel).is_file() and (xdg.data / rel).stat().st_size > 0, rel
    assert xdg.autostart.is_file() and xdg.manifest.is_file()
    assert not (xdg.home / ".local").exists() and not (xdg.home / ".config").exists()
    assert tree(xdg.home) == {"home": None}
    ks("desktop", "uninstall")  # install created $XDG_DATA_HOME and $XDG_CONFIG_HOME: both go again
    assert tree(*xdg.all) == before and not xdg.data.exists() and not xdg.config.exists()


def test_without_xdg_vars_install_uses_the_home_defaults(xdg, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    share, config = xdg.home / ".local/share", xdg.home / ".config"
    ks("desktop", "install")
    assert all((share / rel).is_file() for rel in DATA_FILES)
    assert (config / AUTOSTART).is_file() and (share / "killswitch/desktop-install.json").is_file()
    assert not xdg.data.exists() and not xdg.config.exists()
    ks("desktop", "uninstall")
    assert tree(xdg.home) == {"home": None}


def test_the_entries_pass_the_validators_and_agree_on_the_app_id(xdg):
    ks("desktop", "install")
    metainfo = xdg.data / DATA_FILES[1]
    for entry in (xdg.launcher, xdg.autostart):
        out = run([tool("desktop-file-validate"), str(entry)])
        assert (out.returncode, out.stdout + out.stderr) == (0, ""), entry
    out = run([tool("appstreamcli"), "validate", "--no-net", str(metainfo)])
    assert out.returncode == 0, out.stdout + out.stderr
    root = ET.parse(metainfo).getroot()
    assert root.findtext("id") == xdg.launcher.name.removesuffix(".desktop") == APP_ID
    assert root.find("launchable").get("type") == "desktop-id" and root.findtext("launchable") == xdg.launcher.name
    newest = max(root.iter("release"), key=lambda r: tuple(int(n) for n in r.get("version").split(".")))
    assert newest.get("version") == killswitch.__version__
    for entry in (xdg.launcher, xdg.autostart):
        keys = desktop_entry(entry)
        for key in ("Exec", "TryExec"):
            program = Path(shlex.split(keys[key])[0])
            assert program.is_absolute() and program.is_file() and os.access(program, os.X_OK), (entry, key)
        assert keys["Icon"] == APP_ID and (xdg.data / f"icons/hicolor/scalable/apps/{APP_ID}.svg").is_file()
    assert "Actions" not in desktop_entry(xdg.autostart)


@pytest.mark.parametrize("flags", [(), ("--service",)], ids=["default", "service"])
def test_installing_twice_changes_nothing(xdg, flags):
    ks("desktop", "install", *flags)
    files = tree(*xdg.all)
    stamps = {p: p.lstat().st_mtime_ns for top in xdg.all if top.exists() for p in top.rglob("*")}
    again = ks("desktop", "install", *flags)
    assert "nothing changed" in again.stdout and again.stderr == ""
    assert "wrote" not in again.stdout and "removed" not in again.stdout
    assert tree(*xdg.all) == files
    assert {p: p.lstat().st_mtime_ns for p in stamps} == stamps


def test_status_then_uninstall_leaves_exactly_what_was_there(xdg):
    theirs = {xdg.data / "applications/org.example.Other.desktop": b"[Desktop Entry]\nType=Application\nName=O\n",
              xdg.config / "autostart/org.example.Other.desktop": b"[Desktop Entry]\nName=Other autostart\n",
              xdg.data / "icons/hicolor/scalable/apps/other.svg": b"<svg/>\n",
              xdg.config / "systemd/user/other.service": b"[Service]\nExecStart=/bin/true\n"}
    for path, data in theirs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    before = tree(*xdg.all)
    assert states() == dict.fromkeys(COMPONENTS, "not installed")
    ks("desktop", "install", "--service")
    report = json.loads(ks("desktop", "status", "--json").stdout)
    assert report["manifest"] == str(xdg.manifest)
    assert {c["name"]: c["state"] for c in report["components"]} == dict.fromkeys(COMPONENTS, "installed")
    assert all(Path(p).is_file() for c in report["components"] for p in c["paths"])
    lines = ks("desktop", "status").stdout.splitlines()
    assert {line.split()[0] for line in lines if line.split()[1:2] == ["installed"]} == COMPONENTS
    out = ks("desktop", "uninstall").stdout
    assert f"removed {xdg.manifest}" in out and f"removed {xdg.wants}" in out
    assert tree(*xdg.all) == before and not xdg.manifest.exists()
    assert all(path.read_bytes() == data for path, data in theirs.items())
    assert ks("desktop", "uninstall").stdout.startswith("nothing to remove")


def test_a_deleted_autostart_entry_stays_deleted_until_asked_for(xdg):
    ks("desktop", "install")
    original = xdg.autostart.read_bytes()
    xdg.autostart.unlink()
    out = ks("desktop", "install").stdout
    assert f"not recreated: you removed {xdg.autostart}" in out and not xdg.autostart.exists()
    assert "starts at every login" not in out
    ks("desktop", "install")
    assert not xdg.autostart.exists()
    assert states()["autostart"] == "off" and states()["launcher"] == "installed"
    assert f"wrote {xdg.autostart}" in ks("desktop", "install", "--autostart").stdout
    assert xdg.autostart.read_bytes() == original and states()["autostart"] == "installed"
    assert f"removed {xdg.autostart}" in ks("desktop", "install", "--no-autostart").stdout
    assert not xdg.autostart.exists() and xdg.launcher.is_file()


def test_a_file_the_user_changed_is_neither_overwritten_nor_removed(xdg):
    ks("desktop", "install")
    with xdg.autostart.open("a", encoding="utf-8") as entry:
        entry.write("Hidden=true\n")
    changed = xdg.autostart.read_bytes()
    out = ks("desktop", "install")
    assert f"kept {xdg.autostart}" in out.stdout and xdg.autostart.read_bytes() == changed
    assert states()["autostart"] == "changed" and states()["launcher"] == "installed"
    out = ks("desktop", "uninstall")
    assert f"kept {xdg.autostart}" in out.stdout and xdg.autostart.read_bytes() == changed
    assert not xdg.launcher.exists()


def test_a_foreign_file_in_the_way_is_left_alone(xdg):
    xdg.launcher.parent.mkdir(parents=True)
    xdg.launcher.write_bytes(b"[Desktop Entry]\nType=Application\nName=Someone else's\nExec=true\n")
    foreign = xdg.launcher.read_bytes()
    out = ks("desktop", "install", check=False)
    assert out.returncode == 1 and str(xdg.launcher) in out.stderr, out.stderr
    assert xdg.launcher.read_bytes() == foreign and xdg.autostart.is_file()
    ks("desktop", "uninstall")
    assert xdg.launcher.read_bytes() == foreign and not xdg.autostart.exists()


def test_the_user_service_verifies_and_goes_with_no_service(xdg):
    out = ks("desktop", "install", "--service").stdout
    assert "enabled from your next login" in out
    assert xdg.wants.is_symlink() and os.readlink(xdg.wants) == "../killswitch.service"
    assert xdg.wants.resolve() == xdg.unit.resolve() and xdg.unit.is_file()
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])
    assert runtime.is_dir() and runtime.stat().st_mode & 0o777 == 0o700
    verify = run([tool("systemd-analyze"), "--user", "verify", str(xdg.unit)],
                 user_env(XDG_RUNTIME_DIR=str(runtime), MANPATH=f"{xdg.data / 'man'}:"))
    assert (verify.returncode, verify.stdout, verify.stderr) == (0, "", "")
    lines = xdg.unit.read_text(encoding="utf-8").splitlines()
    [exec_start] = [line.split("=", 1)[1] for line in lines if line.startswith("ExecStart=")]
    assert shlex.split(exec_start) == [str(BIN / "killswitch"), "serve"]
    assert os.access(BIN / "killswitch", os.X_OK) and "Restart=on-failure" in lines
    out = ks("desktop", "install", "--no-service").stdout
    assert f"removed {xdg.unit}" in out and not xdg.unit.exists() and not xdg.wants.is_symlink()
    assert not (xdg.config / "systemd").exists()  # install created it; nothing else is in it


def test_fish_completes_from_the_installed_script(xdg):
    fish = tool("fish")

    def complete(line: str) -> set[str]:
        out = run([fish, "-c", f"complete -C {shlex.quote(line)}"])
        assert out.returncode == 0, out.stderr
        return {row.split("\t")[0] for row in out.stdout.splitlines()}

    assert "desktop" not in complete("killswitch des")  # nothing but what install writes teaches fish
    ks("desktop", "install")
    assert "desktop" in complete("killswitch des")
    assert {"install", "uninstall", "status"} <= complete("killswitch desktop ")


BASH_COMPLETE = r"""
source /usr/share/bash-completion/bash_completion
_completion_loader killswitch
spec=$(complete -p killswitch) || exit 3
echo "spec: $spec"
fn=$(sed -E 's/.* -F ([^ ]+) .*/\1/' <<<"$spec")
for case_ in "killswitch des" "killswitch offday a"; do  # (shtab's function sets a global $line)
    read -ra COMP_WORDS <<<"$case_"
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE=$case_; COMP_POINT=${#case_}; COMPREPLY=()
    "$fn" killswitch "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "$case_: ${COMPREPLY[*]}"
done
"""


def test_bash_completes_from_the_installed_script(xdg):
    ks("desktop", "install")
    out = run([tool("bash"), "--norc", "--noprofile", "-c", BASH_COMPLETE])
    assert Path("/usr/share/bash-completion/bash_completion").is_file()
    assert out.returncode == 0, out.stdout + out.stderr
    got = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert "-F _minimal" not in got["spec"] and got["spec"].endswith(" killswitch")
    assert "desktop" in got["killswitch des"].split()
    assert "add" in got["killswitch offday a"].split()  # a lazily imported command's real parser


def test_zsh_compinit_finds_the_installed_function(xdg):
    ks("desktop", "install")
    script = (f"fpath=({shlex.quote(str(xdg.data / 'zsh/site-functions'))} $fpath); autoload -Uz compinit; "
              "compinit -u; print -r -- ${_comps[killswitch]}")
    out = run([tool("zsh"), "-f", "-c", script])
    assert (out.returncode, out.stdout.strip()) == (0, "_killswitch"), out.stderr


def test_the_man_page_renders_and_covers_every_command(xdg):
    ks("desktop", "install")
    env = user_env(MANPATH=f"{xdg.data / 'man'}:", MANWIDTH="100")
    where = run([tool("man"), "-w", "killswitch"], env)
    assert where.stdout.strip() == str(xdg.data / "man/man1/killswitch.1"), where.stderr
    out = run([tool("man"), "-P", "cat", "killswitch"], env)
    assert out.returncode == 0 and out.stdout, out.stderr
    for command in ("stop", "resume", "desktop", "offday", "offday add", "desktop install"):
        assert f"killswitch {command}" in out.stdout, command
    assert killswitch.__version__ in out.stdout


def test_dry_run_writes_nothing(xdg):
    before = tree(*xdg.all)
    out = ks("desktop", "install", "--dry-run", "--service").stdout
    assert tree(*xdg.all) == before
    assert all(f"would write {xdg.data / rel}" in out for rel in DATA_FILES) and f"would link {xdg.wants}" in out
    ks("desktop", "install")
    installed = tree(*xdg.all)
    out = ks("desktop", "uninstall", "--dry-run").stdout
    assert f"would remove {xdg.launcher}" in out and tree(*xdg.all) == installed


def test_a_corrupt_manifest_stops_every_action_and_changes_nothing(xdg):
    xdg.manifest.parent.mkdir(parents=True)
    xdg.manifest.write_text("{not json", encoding="utf-8")
    before = tree(*xdg.all)
    for action in ("install", "uninstall", "status"):
        out = ks("desktop", action, check=False)
        assert out.returncode == 2 and str(xdg.manifest) in out.stderr, (action, out.stderr)
        assert tree(*xdg.all) == before, action
