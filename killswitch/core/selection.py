"""Which processes a stop acts on: rule matches, their trees and groups, minus what must never stop.

Pure logic over a snapshot of the process table; the platform layer reads and signals.
"""

from __future__ import annotations

import os
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


def protection(proc: ProcLike, ctx: Context) -> str | None:
    """Why this process may never be stopped by a rule, or None."""
    if proc.pid == 1:
        return "PID 1, the init system"
    if proc.pid == ctx.self_pid:
        return "killswitch itself"
    if proc.name in DISPLAY_SERVERS:
        return f"{proc.name}, the display server or desktop shell"
    if proc.name in SESSION_MANAGERS:
        return f"{proc.name}, part of the login session"
    if is_user_shell(proc, ctx):
        return f"{proc.name}, your shell"
    return None


def is_user_shell(proc: ProcLike, ctx: Context) -> bool:
    """An interactive shell: a shell that leads its session, or a login shell ("-bash").

    A `bash -c` an agent spawned is neither, and stops with the agent's tree.
    """
    name = proc.name.lstrip("-")
    if name not in SHELLS and name != ctx.login_shell:
        return False
    return proc.pid == proc.sid or proc.name.startswith("-") or proc.cmdline.startswith("-")


def select(
    table: Mapping[int, ProcLike],
    rules: Iterable[Rule],
    ctx: Context,
    environ_of: Callable[[int], dict[str, str] | None],
    exe_of: Callable[[int], str],
) -> Selection:
    """Decide what to stop. `table` is a snapshot of the user's processes keyed by pid."""
    sel = Selection()
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
        guarded = [(p, protection(p, ctx)) for p in hits]
        bad = [(p, why) for p, why in guarded if why]
        if bad:
            shown = ", ".join(f"PID {p.pid} ({why})" for p, why in bad[:3])
            sel.refused.append(f"rule {rule.name!r} refused: it matches {shown}; make it narrower")
            continue
        sel.matches[rule.name] = sorted(p.pid for p in hits)
        for proc in hits:
            if proc.pid in ctx.ancestors:
                sel.skipped.append(f"PID {proc.pid} ({proc.name}) matches {rule.name!r} but runs killswitch itself; "
                                   "left alone")
                continue
            _choose(chosen, proc, rule.name, rule.action, "match")

    _add_trees(table, chosen, ctx, sel)
    sel.targets = list(chosen.values())
    return sel


def _choose(chosen: dict[int, Target], proc: ProcLike, rule: str, action: str, why: str) -> None:
    current = chosen.get(proc.pid)
    if current is None:
        chosen[proc.pid] = Target(proc.pid, proc.start, proc.name, rule, action, why)
    elif action == "terminate" and current.action != "terminate":
        # When two rules disagree, the harder one wins: a stop must not be softer than asked.
        chosen[proc.pid] = Target(proc.pid, proc.start, proc.name, rule, action, current.why)


def _add_trees(table: Mapping[int, ProcLike], chosen: dict[int, Target], ctx: Context, sel: Selection) -> None:
    children: dict[int, list[ProcLike]] = {}
    groups: dict[int, list[ProcLike]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
        groups.setdefault(proc.pgid, []).append(proc)

    def allowed(proc: ProcLike) -> bool:
        return proc.pid not in ctx.ancestors and protection(proc, ctx) is None

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
