"""Which processes a stop acts on: rule matches, their trees and groups, minus what must never stop.

Pure logic over a snapshot of the process table; the platform layer reads and signals.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Iterable, Mapping, NamedTuple, Protocol

from killswitch.core.rules import Rule

# Display servers, compositors and window managers: freezing one freezes the whole desktop.
DISPLAY_SERVERS = frozenset({
    "Xorg", "X", "Xwayland", "Xvfb", "Xephyr", "Xvnc", "gnome-shell", "mutter", "kwin_x11",
    "kwin_wayland", "kwin", "plasmashell", "sway", "weston", "Hyprland", "wayfire", "labwc",
    "river", "niri", "cage", "openbox", "xfwm4", "i3", "awesome", "bspwm", "marco", "muffin",
    "cinnamon", "budgie-wm", "xfce4-session", "gnome-session-binary", "gnome-session",
    "startplasma-x11", "startplasma-wayland", "ksmserver", "lxsession", "mate-session",
})
# Session and login managers, and the plumbing a session runs on.
SESSION_MANAGERS = frozenset({
    "systemd", "init", "systemd-logind", "(sd-pam)", "login", "sshd", "sshd-session", "gdm", "gdm3",
    "gdm-session-worker", "gdm-x-session", "gdm-wayland-session", "lightdm", "sddm",
    "sddm-helper", "xdm", "lxdm", "greetd", "ly", "dbus-daemon", "dbus-broker", "dbus-broker-launch",
    "su", "sudo", "doas", "agetty", "getty", "tmux: server", "screen", "SCREEN",
})
SHELLS = frozenset({
    "sh", "bash", "zsh", "fish", "dash", "ksh", "mksh", "tcsh", "csh", "nu", "xonsh", "elvish",
    "pwsh", "oksh", "yash", "ash",
})


class ProcLike(Protocol):
    pid: int
    ppid: int
    pgid: int
    sid: int
    name: str
    start: int
    cmdline: str


class Target(NamedTuple):
    pid: int
    start: int
    name: str
    rule: str
    action: str
    why: str  # "match", "child", "group"


class Selection:
    def __init__(self) -> None:
        self.targets: list[Target] = []
        self.refused: list[str] = []  # one message per refused rule
        self.skipped: list[str] = []  # processes left alone on purpose, and why
        self.matches: dict[str, list[int]] = {}  # rule name -> pids it matched


class Context(NamedTuple):
    """Who is asking: these processes are never touched."""

    self_pid: int
    ancestors: frozenset[int]
    caller_pgid: int
    login_shell: str = ""

    @classmethod
    def here(cls, ancestors: Iterable[int]) -> "Context":
        shell = os.path.basename(os.environ.get("SHELL", ""))
        return cls(os.getpid(), frozenset(ancestors), os.getpgrp(), shell)


def protection(proc: ProcLike, ctx: Context, system_exe: str | None) -> str | None:
    """Why this process may never be stopped, or None. Decided on facts a process cannot forge
    cheaply: its pid, and `system_exe` — the basename of its executable when that is an installed,
    root-owned program (None otherwise). Its name and argv are the process's own to choose, so a
    name alone protects nothing: an agent calling itself "Xorg" is still an agent."""
    if proc.pid == 1:
        return "PID 1, the init system"
    if proc.pid == ctx.self_pid:
        return "killswitch itself"
    if system_exe in DISPLAY_SERVERS:
        return f"{system_exe}, the display server or desktop shell"
    if system_exe in SESSION_MANAGERS:
        return f"{system_exe}, part of the login session"
    if is_user_shell(proc, ctx, system_exe):
        return f"{system_exe}, your shell"
    return None


_RUNS_A_COMMAND = re.compile(r"-[A-Za-z]*c[A-Za-z]*")  # -c, -lc, -ic…: a shell running a command


def is_user_shell(proc: ProcLike, ctx: Context, system_exe: str | None) -> bool:
    """An interactive shell of the user's: an installed shell binary that leads its session or was
    started as a login shell ("-bash"), and runs no `-c` command. A `bash -c` an agent spawned is
    not one (it stops with the agent's tree), whatever it calls itself."""
    if system_exe is None or (system_exe not in SHELLS and system_exe != ctx.login_shell):
        return False
    args = proc.cmdline.split()
    if any(_RUNS_A_COMMAND.fullmatch(arg) for arg in args[1:]):
        return False
    return proc.pid == proc.sid or proc.cmdline.startswith("-")


def select(
    table: Mapping[int, ProcLike],
    rules: Iterable[Rule],
    ctx: Context,
    environ_of: Callable[[int], dict[str, str] | None],
    exe_of: Callable[[int], str],
    system_exe_of: Callable[[int], str | None] = lambda pid: None,
) -> Selection:
    """Decide what to stop. `table` is a snapshot of the user's processes keyed by pid. A process
    that must never stop is left alone with a note; the rule still acts on everything else."""
    sel = Selection()
    system_cache: dict[int, str | None] = {}

    def guard(proc: ProcLike) -> str | None:
        if proc.pid not in system_cache:
            system_cache[proc.pid] = system_exe_of(proc.pid)
        return protection(proc, ctx, system_cache[proc.pid])

    chosen: dict[int, Target] = {}
    rules = list(rules)
    need_env = any(r.env is not None for r in rules)
    need_exe = any(r.process is not None for r in rules)
    env_cache: dict[int, dict[str, str] | None] = {}
    exe_cache: dict[int, str] = {}

    def env(pid: int) -> dict[str, str] | None:
        if pid not in env_cache:
            env_cache[pid] = environ_of(pid)
        return env_cache[pid]

    def exe(pid: int) -> str:
        if pid not in exe_cache:
            exe_cache[pid] = exe_of(pid)
        return exe_cache[pid]

    for rule in rules:
        hits = []
        for proc in table.values():
            exe_base = ""
            if rule.process is not None and proc.name != rule.process:
                exe_base = exe(proc.pid) if need_exe else ""
                if exe_base != rule.process:
                    continue
            if rule.matches(proc.name, exe_base or proc.name, proc.cmdline,
                            env(proc.pid) if need_env and rule.env else None):
                hits.append(proc)
        sel.matches[rule.name] = sorted(p.pid for p in hits)
        for proc in hits:
            why = guard(proc)
            if why:
                sel.skipped.append(f"PID {proc.pid} ({proc.name}) matches {rule.name!r} but is {why}: left alone "
                                   "(the rule still stops everything else it matches; make it narrower)")
                continue
            if proc.pid in ctx.ancestors:
                sel.skipped.append(f"PID {proc.pid} ({proc.name}) matches {rule.name!r} but runs killswitch itself; "
                                   "left alone")
                continue
            _choose(chosen, proc, rule.name, rule.action, "match")

    _add_trees(table, chosen, ctx, guard)
    sel.targets = list(chosen.values())
    return sel


def _choose(chosen: dict[int, Target], proc: ProcLike, rule: str, action: str, why: str) -> None:
    current = chosen.get(proc.pid)
    if current is None:
        chosen[proc.pid] = Target(proc.pid, proc.start, proc.name, rule, action, why)
    elif action == "terminate" and current.action != "terminate":
        # When two rules disagree, the harder one wins: a stop must not be softer than asked.
        chosen[proc.pid] = Target(proc.pid, proc.start, proc.name, rule, action, current.why)


def _add_trees(table: Mapping[int, ProcLike], chosen: dict[int, Target], ctx: Context,
               guard: Callable[[ProcLike], str | None]) -> None:
    children: dict[int, list[ProcLike]] = {}
    groups: dict[int, list[ProcLike]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
        groups.setdefault(proc.pgid, []).append(proc)

    def allowed(proc: ProcLike) -> bool:
        return proc.pid not in ctx.ancestors and guard(proc) is None

    queue = list(chosen.values())
    while queue:
        target = queue.pop()
        for kid in children.get(target.pid, []):
            if kid.pid not in chosen and allowed(kid):
                chosen[kid.pid] = Target(kid.pid, kid.start, kid.name, target.rule, target.action, "child")
                queue.append(chosen[kid.pid])
    # Descendants whose parent exited escape the tree but keep the group: take them along when the
    # group is the agent's own (its leader is being stopped, or is gone), never the caller's or a
    # shell's whole session group.
    for pgid, members in groups.items():
        if pgid == ctx.caller_pgid or pgid <= 1:
            continue
        leader = table.get(pgid)
        leader_target = chosen.get(pgid)
        if leader is not None and leader_target is None:
            continue
        if leader is not None and leader.pid == leader.sid:
            continue
        source = leader_target or next((chosen[m.pid] for m in members if m.pid in chosen), None)
        if source is None:
            continue
        for member in members:
            if member.pid not in chosen and allowed(member):
                chosen[member.pid] = Target(member.pid, member.start, member.name, source.rule, source.action, "group")
