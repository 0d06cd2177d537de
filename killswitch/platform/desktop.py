"""Desktop integration for the current user, by the freedesktop conventions: the launcher, the icons
in the hicolor theme, the AppStream metainfo, the autostart entry, the systemd user service, shell
completions and the man page — and a manifest of exactly what was written, so that `uninstall`
removes that and nothing else.

Every path honours XDG_DATA_HOME and XDG_CONFIG_HOME. A file the user changed after we wrote it is
never overwritten or removed, and an autostart entry the user deleted is not brought back by a
second install (only `--autostart` does that).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from killswitch import resources
from killswitch.core.atomic import replace_file
from killswitch.platform import user_systemd
from killswitch.platform.desktop_entries import autostart_entry, launcher_entry, service_unit
from killswitch.platform.user_systemd import SERVICE_UNIT
from killswitch.resources import APP_ID

MANIFEST_VERSION = 1
ICON_STATES = ("running", "stopped", "offday")
# A component's files are installed and removed together; `choice` components are the user's to turn
# on or off, the others come with every install.
COMPONENTS = ("launcher", "icons", "metainfo", "completions", "man", "autostart", "service")


@dataclass(frozen=True)
class Dirs:
    data: Path  # $XDG_DATA_HOME, else ~/.local/share
    config: Path  # $XDG_CONFIG_HOME, else ~/.config

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Dirs":
        env = os.environ if environ is None else environ
        home = Path(env.get("HOME") or Path.home())

        def xdg(var: str, default: str) -> Path:
            value = env.get(var, "")
            return Path(value) if os.path.isabs(value) else home / default  # the spec ignores relative paths

        return cls(data=xdg("XDG_DATA_HOME", ".local/share"), config=xdg("XDG_CONFIG_HOME", ".config"))

    @property
    def manifest(self) -> Path:
        return self.data / "killswitch" / "desktop-install.json"

    @property
    def unit_dir(self) -> Path:
        return self.config / "systemd" / "user"


@dataclass(frozen=True)
class Commands:
    """How the installed entries start killswitch: absolute paths, so nothing depends on $PATH
    (pipx's ~/.local/bin is often not on the desktop session's PATH)."""

    cli: tuple[str, ...]
    tray: tuple[str, ...]

    @classmethod
    def find(cls) -> "Commands":
        scripts = Path(sysconfig.get_path("scripts"))

        def command(name: str, module_args: tuple[str, ...]) -> tuple[str, ...]:
            for candidate in (scripts / name, Path(sys.executable).parent / name):
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return (str(candidate),)
            found = shutil.which(name)
            return (found,) if found else (sys.executable, "-m", "killswitch", *module_args)

        return cls(cli=command("killswitch", ()), tray=command("killswitch-tray", ("tray",)))


@dataclass(frozen=True)
class Item:
    component: str
    path: Path
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Link:
    component: str
    path: Path
    target: str  # relative, as `systemctl enable` writes it


@dataclass
class Manifest:
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of what we wrote
    links: dict[str, str] = field(default_factory=dict)  # path -> target
    dirs: list[str] = field(default_factory=list)  # directories we created, removed when left empty
    choices: dict[str, bool] = field(default_factory=dict)  # "autostart", "service"
    commands: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Manifest | None":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DesktopError(f"{path}: unreadable ({exc}); fix or remove it to continue") from None
        if not isinstance(raw, dict) or raw.get("version") != MANIFEST_VERSION:
            raise DesktopError(f"{path}: not a killswitch desktop manifest of version {MANIFEST_VERSION}; "
                               "fix or remove it to continue")
        return cls(files=dict(raw.get("files", {})), links=dict(raw.get("links", {})),
                   dirs=list(raw.get("dirs", [])), choices=dict(raw.get("choices", {})),
                   commands=dict(raw.get("commands", {})))

    def dump(self) -> bytes:
        return (json.dumps({"version": MANIFEST_VERSION, "files": self.files, "links": self.links,
                            "dirs": self.dirs, "choices": self.choices, "commands": self.commands},
                           indent=2, sort_keys=True) + "\n").encode()


class DesktopError(Exception):
    pass


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)  # what happened, one line each
    warnings: list[str] = field(default_factory=list)  # something left undone; the exit status says so

    def say(self, text: str) -> None:
        self.lines.append(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except OSError:
        return None


def plan(dirs: Dirs, commands: Commands, *, autostart: bool, service: bool,
         completions: Mapping[str, bytes], man_page: bytes | None) -> tuple[list[Item], list[Link]]:
    """Every file an install with these choices writes. `completions` maps bash/zsh/fish to scripts."""
    share, icons = dirs.data, dirs.data / "icons" / "hicolor"
    items = [
        Item("launcher", share / "applications" / f"{APP_ID}.desktop", launcher_entry(commands)),
        Item("icons", icons / "scalable" / "apps" / f"{APP_ID}.svg", resources.read_bytes("icons", "app.svg")),
        Item("icons", icons / "symbolic" / "apps" / f"{APP_ID}-symbolic.svg",
             resources.read_bytes("icons", "app-symbolic.svg")),
        Item("metainfo", share / "metainfo" / f"{APP_ID}.metainfo.xml",
             resources.read_bytes("desktop", "metainfo.xml")),
    ]
    for state in ICON_STATES:  # the tray's states, for panels that draw monochrome status icons
        items.append(Item("icons", icons / "scalable" / "status" / f"killswitch-{state}.svg",
                          resources.read_bytes("icons", f"killswitch-{state}.svg")))
        items.append(Item("icons", icons / "symbolic" / "status" / f"killswitch-{state}-symbolic.svg",
                          resources.read_bytes("icons", f"killswitch-{state}-symbolic.svg")))
    where = {"bash": share / "bash-completion" / "completions" / "killswitch",
             "zsh": share / "zsh" / "site-functions" / "_killswitch",
             "fish": share / "fish" / "vendor_completions.d" / "killswitch.fish"}
    items += [Item("completions", where[shell], script) for shell, script in completions.items()]
    if man_page is not None:
        items.append(Item("man", share / "man" / "man1" / "killswitch.1", man_page))
    links = []
    if autostart:
        items.append(Item("autostart", dirs.config / "autostart" / f"{APP_ID}.desktop", autostart_entry(commands)))
    if service:
        items.append(Item("service", dirs.unit_dir / SERVICE_UNIT, service_unit(commands)))
        links.append(Link("service", dirs.unit_dir / "default.target.wants" / SERVICE_UNIT, f"../{SERVICE_UNIT}"))
    return items, links


# -- install, uninstall, status -------------------------------------------------------------------
def install(dirs: Dirs, commands: Commands, *, autostart: bool | None, service: bool | None,
            completions: Mapping[str, bytes], man_page: bytes | None, dry_run: bool = False,
            systemctl: "user_systemd.UserSystemd | None" = None) -> Outcome:
    """Install for the current user. `autostart`/`service`: True or False to choose, None to keep the
    earlier choice (first install: autostart on, service off). Running it twice changes nothing."""
    out = Outcome()
    old = Manifest.load(dirs.manifest)
    manifest = Manifest(dirs=list(old.dirs) if old else [])
    previous = old.choices if old else {}
    autostart_path = dirs.config / "autostart" / f"{APP_ID}.desktop"
    want_autostart = previous.get("autostart", True) if autostart is None else autostart
    if autostart is None and want_autostart and old and str(autostart_path) in old.files \
            and not autostart_path.exists():
        want_autostart = False
        out.say(f"autostart: not recreated: you removed {autostart_path} (`--autostart` brings it back)")
    want_service = previous.get("service", False) if service is None else service
    manifest.choices = {"autostart": want_autostart, "service": want_service}
    manifest.commands = {"cli": list(commands.cli), "tray": list(commands.tray)}
    items, links = plan(dirs, commands, autostart=want_autostart, service=want_service,
                        completions=completions, man_page=man_page)
    verb = "would write" if dry_run else "wrote"
    for item in items:
        recorded = old.files.get(str(item.path)) if old else None
        current = _file_sha(item.path)
        new = _sha(item.data)
        if current == new:
            manifest.files[str(item.path)] = new
            continue
        if current is not None and current != recorded:
            if recorded is None:
                out.warn(f"left alone: {item.path} exists and was not written by killswitch "
                         "(remove it and install again)")
            else:
                manifest.files[str(item.path)] = recorded
                out.say(f"kept {item.path}: you changed it since killswitch wrote it")
            continue
        if not dry_run:
            _make_dirs(item.path.parent, manifest)
            replace_file(item.path, item.data, mode=item.mode)
        manifest.files[str(item.path)] = new
        out.say(f"{verb} {item.path}" + (" (updated)" if current is not None else ""))
    for link in links:
        manifest.links[str(link.path)] = link.target
        if _link_target(link.path) == link.target:
            continue
        if link.path.exists() or link.path.is_symlink():
            out.warn(f"left alone: {link.path} exists and is not killswitch's link")
            del manifest.links[str(link.path)]
            continue
        if not dry_run:
            _make_dirs(link.path.parent, manifest)
            os.symlink(link.target, link.path)
        out.say(f"{'would link' if dry_run else 'linked'} {link.path} -> {link.target}")
    had_service = bool(previous.get("service"))
    if old:  # what an earlier install wrote and this one no longer wants (`--no-autostart`, `--no-service`)
        if had_service and not want_service and not dry_run:
            user_systemd.stop(systemctl, out)
        _remove(old, keep=manifest, out=out, dry_run=dry_run)
    if dry_run:
        return out
    manifest.dirs = [d for d in manifest.dirs if Path(d).is_dir()]
    changed = bool(out.lines or out.warnings)
    if _file_sha(dirs.manifest) != _sha(manifest.dump()):  # twice changes nothing, the manifest included
        _make_dirs(dirs.manifest.parent, None)
        replace_file(dirs.manifest, manifest.dump(), mode=0o644)
    if want_service or had_service:
        user_systemd.start(systemctl, out, start=want_service, announce=changed)
    return out


def uninstall(dirs: Dirs, *, dry_run: bool = False, systemctl: "user_systemd.UserSystemd | None" = None) -> Outcome:
    """Remove exactly what `install` wrote (files the user changed since stay), then the manifest."""
    out = Outcome()
    old = Manifest.load(dirs.manifest)
    if old is None:
        out.say(f"nothing to remove: no desktop install recorded ({dirs.manifest} does not exist)")
        return out
    if old.choices.get("service") and not dry_run:
        user_systemd.stop(systemctl, out)
    kept = _remove(old, keep=Manifest(), out=out, dry_run=dry_run)
    if dry_run:
        out.say(f"would remove {dirs.manifest}")
        return out
    if old.choices.get("service"):
        user_systemd.start(systemctl, out, start=False)  # only reloads: the unit is gone
    if kept.files:  # still ours: a later uninstall may remove them once the user puts them back
        replace_file(dirs.manifest, kept.dump(), mode=0o644)
    else:
        dirs.manifest.unlink(missing_ok=True)
        out.say(f"removed {dirs.manifest}")
        _rmdir_empty([str(dirs.manifest.parent), *old.dirs])  # and ours that held only the manifest's
    return out


def _remove(old: Manifest, keep: Manifest, out: Outcome, dry_run: bool) -> Manifest:
    """Remove what `old` lists and `keep` does not; returns a manifest of the user-changed files kept."""
    kept = Manifest(choices=old.choices, dirs=old.dirs)
    verb = "would remove" if dry_run else "removed"
    for path_text, recorded in old.files.items():
        if path_text in keep.files:
            continue
        path = Path(path_text)
        current = _file_sha(path)
        if current is None:
            continue
        if current != recorded:
            out.say(f"kept {path}: you changed it since killswitch wrote it")
            kept.files[path_text] = recorded
            continue
        if not dry_run:
            path.unlink()
        out.say(f"{verb} {path}")
    for path_text, target in old.links.items():
        if path_text in keep.links or _link_target(Path(path_text)) != target:
            continue
        if not dry_run:
            os.unlink(path_text)
        out.say(f"{verb} {path_text}")
    if not dry_run:
        _rmdir_empty(old.dirs)  # only the empty ones go: none that holds a file still wanted
    return kept


def _link_target(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _make_dirs(path: Path, manifest: Manifest | None) -> None:
    """Create missing directories (0755, as the XDG dirs are), recording the ones we created."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o755)
        if manifest is not None and str(directory) not in manifest.dirs:
            manifest.dirs.append(str(directory))


def _rmdir_empty(directories: list[str]) -> None:
    for directory in sorted(directories, key=len, reverse=True):  # deepest first
        try:
            os.rmdir(directory)
        except OSError:
            continue  # not empty (the user's files), or gone


@dataclass(frozen=True)
class Component:
    name: str
    state: str  # "installed", "missing", "changed", "off", "not installed"
    paths: tuple[str, ...]


def status(dirs: Dirs, systemctl: "user_systemd.UserSystemd | None" = None) -> tuple[list[Component], list[str]]:
    """Each component's state, and notes (the service's state when a user manager runs)."""
    manifest = Manifest.load(dirs.manifest)
    notes: list[str] = []
    if manifest is None:
        return [Component(name, "not installed", ()) for name in COMPONENTS], notes
    by_component: dict[str, list[str]] = {name: [] for name in COMPONENTS}
    for path_text in manifest.files:
        by_component[_component_of(dirs, Path(path_text))].append(path_text)
    components = []
    for name in COMPONENTS:
        paths = tuple(by_component[name])
        if name in ("autostart", "service") and not manifest.choices.get(name):
            components.append(Component(name, "off", paths))
            continue
        shas = [(_file_sha(Path(p)), manifest.files[p]) for p in paths]
        if not paths or any(current is None for current, _ in shas):
            state = "missing"
        elif any(current != recorded for current, recorded in shas):
            state = "changed"
        else:
            state = "installed"
        components.append(Component(name, state, paths))
    if manifest.choices.get("service") and systemctl is not None:
        notes.append(f"service: {systemctl.describe()}")
    launcher = manifest.commands.get("tray")
    if launcher and not Path(launcher[0]).exists():
        notes.append(f"the launcher starts {launcher[0]}, which no longer exists: run `killswitch desktop "
                     "install` again from the killswitch you use now")
    return components, notes


def _component_of(dirs: Dirs, path: Path) -> str:
    if path.parent == dirs.config / "autostart":
        return "autostart"
    if path.parent == dirs.unit_dir:
        return "service"
    parts = path.relative_to(dirs.data).parts if path.is_relative_to(dirs.data) else ()
    return {"applications": "launcher", "icons": "icons", "metainfo": "metainfo", "man": "man"}.get(
        parts[0] if parts else "", "completions")
