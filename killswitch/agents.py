"""Install, remove and show the per-agent hooks that stop AI agents while the flag file exists.

Each hook is one static POSIX command (no Python: it runs on every tool call). It checks
`$KILLSWITCH_FLAG` if set and non-empty, else the absolute flag path baked in at install time.
Flag absent: allow (exit 0, silent; Cursor and Cline need an explicit "allow" answer). Flag
present: drain stdin (an agent that fails to write its JSON payload into a pipe we closed treats
the hook as *failed*, which fails open; Codex does), print the block message in the agent's
format, and exit 2 where the agent blocks on 2. The command uses only `test`, `&&`, `||`, `!`,
`echo`, `cat` and `exit`, so it parses the same in sh/dash, bash, zsh and fish (some agents run
hooks through the user's login shell). Our entries carry the marker `killswitch-hook` in the
command (JSON agents) or file (Cline), so uninstall and re-install touch only ours.

What the agents' own docs and source say (checked 2026-11):
- Claude Code (code.claude.com/docs/en/hooks; docs.anthropic.com hooks reference):
  ~/.claude/settings.json `{"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [{"type":
  "command", "command": ..., "timeout": secs}]}]}}`; exit 2 blocks PreToolUse and
  UserPromptSubmit, stderr goes to the model (prompt: shown to the user, prompt erased); other
  non-zero exits do not block. Never use `Stop` (blocking it means "keep going").
  worktrunk PR max-sixty/worktrunk#2962: Claude may hand the command to the user's login shell
  (fish rejects `${VAR}`), hence the shell-neutral syntax.
- OpenAI Codex CLI (openai/codex codex-rs/hooks: events/pre_tool_use.rs, user_prompt_submit.rs,
  engine/command_runner.rs, dispatcher.rs): ~/.codex/hooks.json, Claude's shape; exit 2 blocks
  PreToolUse and UserPromptSubmit *only with non-empty stderr*; matcher "*" matches all tools;
  the command runs as `$SHELL -lc CMD`; a failed stdin write is a hook error (fail open);
  `timeout` in seconds. New hooks may need trusting in `/hooks`.
- Gemini CLI (google-gemini/gemini-cli docs/hooks/reference.md, core/hooks/hookRunner.ts):
  ~/.gemini/settings.json `"hooks": {"BeforeTool": [{"matcher": ".*", "hooks": [...]}]}`,
  `timeout` in milliseconds; exit 2 = block with stderr as reason; BeforeAgent exit 2 aborts
  the turn and erases the prompt. EPIPE on stdin is ignored. `hooksConfig.enabled` defaults on.
- Cursor (cursor.com/docs/hooks; tokensave#187/#188, aidlc-workflows#745, cupcake docs):
  ~/.cursor/hooks.json `{"version": 1, "hooks": {"preToolUse": [{"command": ...}]}}`.
  preToolUse reads a flat `permission` from stdout and treats missing/invalid JSON as deny in
  the IDE, so allow prints `{"permission":"allow"}`; deny is `{"permission":"deny",
  "user_message", "agent_message"}`, exit 2 also denies. beforeSubmitPrompt answers
  `{"continue": true|false, "user_message"}`.
- Cline (cline/cline src/core/hooks/hook-factory.ts, HookProcess.ts, utils.ts; docs
  features/hooks/hook-reference.mdx): an executable file named after the event (PreToolUse,
  UserPromptSubmit, no extension) in ~/Documents/Cline/Hooks/ (older releases:
  ~/Documents/Cline/Rules/Hooks/; the Cline CLI: ~/.cline/hooks); hooks must be enabled in
  Cline's settings. stdout JSON `{"cancel": bool, "errorMessage": str}` is honoured whatever
  the exit code; exit 0 with no JSON allows; 30 s timeout. Spawned through a shell, by path.
- Goose (block/goose documentation/docs/guides/context-engineering/hooks.md): plugin
  ~/.agents/plugins/<name>/ with plugin.json and hooks/hooks.json (Claude's shape), run with
  `sh -c`, `timeout` in seconds; matcher is a regex: `"*"` is invalid and the rule is silently
  skipped, use `".*"`. Only PreToolUse (and Stop) can block: exit 2 + stderr, or
  `{"decision":"block"}`. UserPromptSubmit cannot block.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shlex
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from killswitch.core.atomic import replace_file

SUPPORTED: tuple[str, ...] = ("claude", "codex", "gemini", "cursor", "cline", "goose")
MARKER = "killswitch-hook"
TAG = f"# {MARKER} v1"
MESSAGE = (
    "KILLSWITCH ON: the user pressed the kill switch to stop all AI agents. Stop now. "
    "Do not retry this or any other tool call and do not try to work around it. "
    "Wait until the user resumes."
)
_GOOSE_PLUGIN = "killswitch"

# agent -> (path under home, [(event, matcher or None)], handler extras, restart note)
_JSON_AGENTS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str | None], ...], dict, str]] = {
    "claude": ((".claude", "settings.json"), (("PreToolUse", "*"), ("UserPromptSubmit", None)),
               {"timeout": 10}, "Restart Claude Code sessions: hooks are read at start."),
    "codex": ((".codex", "hooks.json"), (("PreToolUse", "*"), ("UserPromptSubmit", None)),
              {"timeout": 10}, "Restart Codex; it may ask you to trust new hooks in /hooks."),
    "gemini": ((".gemini", "settings.json"), (("BeforeTool", ".*"), ("BeforeAgent", None)),
               {"name": "killswitch", "timeout": 10000},
               "Restart Gemini CLI; hooks must not be off in hooksConfig.enabled."),
    "cursor": ((".cursor", "hooks.json"), (("preToolUse", None), ("beforeSubmitPrompt", None)),
               {}, "Restart Cursor (hooks are listed in Settings > Hooks)."),
    "goose": ((".agents", "plugins", _GOOSE_PLUGIN, "hooks", "hooks.json"), (("PreToolUse", ".*"),),
              {"timeout": 10}, "Restart goose. goose hooks cannot block prompts, only tool calls."),
}
_CLINE_EVENTS = ("PreToolUse", "UserPromptSubmit")


class HookError(Exception):
    """Installing or removing a hook failed; the message says what, where and what to do."""


@dataclass
class HookResult:
    agent: str
    path: Path
    changed: bool
    backup: Path | None
    detail: str


def _check(agent: str) -> str:
    if agent not in SUPPORTED:
        raise HookError(f"unknown agent {agent!r}; supported agents: {', '.join(SUPPORTED)}")
    return agent


def settings_path(agent: str, home: Path) -> Path:
    if _check(agent) == "cline":
        return Path(home) / "Documents" / "Cline" / "Hooks"
    return Path(home).joinpath(*_JSON_AGENTS[agent][0])


def _q(text: str) -> str:
    """Single-quote for the shell; never emits a backslash (fish treats those differently)."""
    return shlex.quote(text)


def _json(obj: Any) -> str:
    text = json.dumps(obj, separators=(",", ":"))
    assert "'" not in text and "\\" not in text
    return text


def _outputs(agent: str, event: str | None) -> tuple[str | None, str, str]:
    """(allow stdout or None, block line, exit code) for one agent and event."""
    if agent == "cursor":
        if event == "beforeSubmitPrompt":
            return _json({"continue": True}), _json({"continue": False, "user_message": MESSAGE}), "2"
        deny = {"permission": "deny", "user_message": MESSAGE, "agent_message": MESSAGE}
        return _json({"permission": "allow"}), _json(deny), "2"
    if agent == "cline":
        return _json({"cancel": False}), _json({"cancel": True, "errorMessage": MESSAGE}), "0"
    return None, "", "2"  # stderr + exit 2 (Codex insists on non-empty stderr)


def hook_command(agent: str, flag: Path, event: str | None = None) -> str:
    """The static command installed for `agent` (for Cursor, per event; default the tool event).

    For Cline this is the whole hook file; it also runs as `sh -c TEXT`.
    """
    _check(agent)
    path = os.path.abspath(os.path.expanduser(os.fspath(flag)))
    allow, block, code = _outputs(agent, event)
    if agent == "cline":
        return (
            f"#!/bin/sh\n{TAG}: stops Cline while the killswitch flag file exists.\n"
            f"# Managed by `killswitch hooks install cline`; `killswitch hooks uninstall cline` "
            f"removes it. Do not edit.\n"
            "test -t 0 || cat >/dev/null 2>&1\n"
            f'if [ -n "$KILLSWITCH_FLAG" ]; then f=$KILLSWITCH_FLAG; else f={_q(path)}; fi\n'
            f"if [ -e \"$f\" ]; then echo {_q(block)}; else echo {_q(allow)}; fi\n"
            "exit 0\n"
        )
    test = f'test -z "$KILLSWITCH_FLAG" && test -e {_q(path)} || test -e "$KILLSWITCH_FLAG"'
    on_allow = f" || ! echo {_q(allow)}" if allow else ""
    out = f"echo {_q(block)}" if block else f"echo {_q(MESSAGE)} >&2"
    return f"{test}{on_allow} || exit 0; test -t 0 || cat >/dev/null 2>&1; {out}; exit {code} {TAG}"


# ---- JSON settings: read, merge, write -------------------------------------------------------

def _no_dupes(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _load(path: Path) -> tuple[dict | None, str | None]:
    """(object or None if missing, original text). Raises HookError if unusable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise HookError(f"cannot read {path}: {exc.strerror or exc}") from exc
    fix = "Fix or move the file and try again, or add the hook by hand (`killswitch hooks print`)."
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HookError(f"{path} is not UTF-8 text (byte {exc.start}); nothing was changed. {fix}")
    if not text.strip():
        return {}, text
    try:
        data = json.loads(text, object_pairs_hook=_no_dupes)
    except json.JSONDecodeError as exc:
        raise HookError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); nothing was changed. {fix}"
        ) from exc
    except ValueError as exc:
        raise HookError(f"{path}: {exc}; nothing was changed. {fix}") from exc
    if not isinstance(data, dict):
        raise HookError(f"{path}:1: the top level must be a JSON object; nothing was changed. {fix}")
    return data, text


def _shape_error(path: Path, text: str | None, where: str, want: str) -> HookError:
    key = where.split(".")[-1].split("[")[0]
    pos = (text or "").find(f'"{key}"')
    line = f":{(text or '').count(chr(10), 0, pos) + 1}" if pos >= 0 else ""
    return HookError(
        f"{path}{line}: {where} must be {want}; nothing was changed. Fix the file, "
        f"or add the hook by hand (`killswitch hooks print`)."
    )


def _ours(handler: Any) -> bool:
    return isinstance(handler, dict) and MARKER in str(handler.get("command", ""))


def _merge(agent: str, data: dict, path: Path, text: str | None, flag: Path | None) -> dict:
    """Return a copy of `data` with our entries removed, then (if `flag`) added back in place."""
    data = json.loads(json.dumps(data))
    if agent == "cursor" and flag is not None and "version" not in data:
        data = {"version": 1, **data}
    hooks = data.get("hooks")
    if hooks is None:
        if flag is None:
            return data
        hooks = data["hooks"] = {}
    if not isinstance(hooks, dict):
        raise _shape_error(path, text, "hooks", "an object of event names")
    _, events, extra, _ = _JSON_AGENTS[agent]
    for event, matcher in events:
        groups = hooks.get(event)
        if groups is None and flag is None:
            continue
        if groups is None:
            groups = []
        if not isinstance(groups, list):
            raise _shape_error(path, text, f"hooks.{event}", "a list")
        kept, slot, removed = [], None, False
        for i, group in enumerate(groups):
            if not isinstance(group, dict):
                raise _shape_error(path, text, f"hooks.{event}[{i}]", "an object")
            if agent == "cursor":
                if _ours(group):
                    slot, removed = len(kept) if slot is None else slot, True
                    continue
            else:
                inner = group.get("hooks")
                if not isinstance(inner, list):
                    raise _shape_error(path, text, f"hooks.{event}[{i}].hooks", "a list")
                mine = [h for h in inner if _ours(h)]
                if mine:
                    slot, removed = len(kept) if slot is None else slot, True
                    group = {**group, "hooks": [h for h in inner if not _ours(h)]}
                    if not group["hooks"]:
                        continue
            kept.append(group)
        if flag is not None:
            command = hook_command(agent, flag, event)
            if agent == "cursor":
                entry: dict = {"command": command}
            else:
                entry = {"hooks": [{"type": "command", "command": command, **extra}]}
                if matcher is not None:
                    entry = {"matcher": matcher, **entry}
            kept.insert(len(kept) if slot is None else slot, entry)
        if kept or not removed:
            hooks[event] = kept
        else:
            del hooks[event]
    return data


def _dump(data: dict, text: str | None) -> str:
    match = re.search(r"\n([ \t]+)\S", text or "")
    indent = match.group(1) if match else 2
    return json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


def _backup(real: Path) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target, n = real.with_name(f"{real.name}.killswitch-backup-{stamp}"), 1
    while target.exists():
        target, n = real.with_name(f"{real.name}.killswitch-backup-{stamp}-{n}"), n + 1
    shutil.copy2(real, target)
    return target


def _write(path: Path, content: str, mode: int | None = None) -> None:
    """Atomic replace of the real target (symlinks are followed), keeping the file's mode."""
    replace_file(path, content.encode("utf-8"), mode=mode, keep_mode=mode is None)


def _apply_json(agent: str, home: Path, flag: Path | None) -> HookResult:
    path = settings_path(agent, home)
    data, text = _load(path)
    if data is None and flag is None:
        return HookResult(agent, path, False, None, f"no {path}; nothing to remove")
    new = _merge(agent, data or {}, path, text, flag)
    content = _dump(new, text)
    note = _JSON_AGENTS[agent][3]
    if data is not None and json.dumps(new) == json.dumps(data):
        return HookResult(agent, path, False, None, f"{path} already up to date; nothing changed")
    goose_empty = agent == "goose" and flag is None and new in ({}, {"hooks": {}})
    backup = None
    try:
        if goose_empty:  # our own plugin, now empty: remove it
            _remove_goose_plugin(path)
            return HookResult(agent, path, True, None, f"removed the goose plugin {path.parents[1]}")
        backup = _backup(Path(os.path.realpath(path))) if data is not None else None
        _write(path, content)
        if agent == "goose" and flag is not None:
            manifest = path.parents[1] / "plugin.json"
            if not manifest.exists():
                _write(manifest, _dump({"name": _GOOSE_PLUGIN, "version": "1.0.0",
                                        "description": "Stop goose while the killswitch is on"}, None))
    except OSError as exc:
        raise HookError(f"cannot write {path}: {exc.strerror or exc}") from exc
    events = ", ".join(e for e, _ in _JSON_AGENTS[agent][1])
    done = f"installed {events} hooks in {path}. {note}" if flag else f"removed killswitch hooks from {path}"
    if backup:
        done += f" Backup: {backup}"
    return HookResult(agent, path, True, backup, done)


def _remove_goose_plugin(path: Path) -> None:
    path.unlink(missing_ok=True)
    plugin = path.parents[1]
    manifest = plugin / "plugin.json"
    try:
        if json.loads(manifest.read_text(encoding="utf-8")).get("name") == _GOOSE_PLUGIN:
            manifest.unlink()
    except (OSError, ValueError, AttributeError):
        pass
    for directory in (path.parent, plugin):
        try:
            directory.rmdir()
        except OSError:
            pass


# ---- Cline: executable files ----------------------------------------------------------------

def _cline_file_is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return MARKER.encode() in handle.read(4096)
    except OSError:
        return False


def _cline(home: Path, flag: Path | None) -> HookResult:
    directory = settings_path("cline", home)
    files = [directory / name for name in _CLINE_EVENTS]
    foreign = [f for f in files if os.path.lexists(f) and not _cline_file_is_ours(f)]
    if flag is None:
        gone = [f for f in files if os.path.lexists(f) and f not in foreign]
        for f in gone:
            f.unlink()
        kept = f"; left your own {', '.join(map(str, foreign))} alone" if foreign else ""
        what = f"removed {', '.join(f.name for f in gone)} from {directory}" if gone else "nothing to remove"
        return HookResult("cline", directory, bool(gone), None, what + kept)
    if foreign:
        raise HookError(
            f"{', '.join(map(str, foreign))} already exists and is not a killswitch hook; it was not "
            f"changed. Cline runs one file per event, so add the killswitch check to your own hook "
            f"by hand (see `killswitch hooks print cline`), or move your file away and retry."
        )
    body, changed = hook_command("cline", flag), False
    try:
        for f in files:
            same = f.exists() and f.read_text(encoding="utf-8", errors="replace") == body
            if same and stat.S_IMODE(f.stat().st_mode) == 0o755:
                continue
            _write(f, body, 0o755)
            changed = True
    except OSError as exc:
        raise HookError(f"cannot write Cline hooks in {directory}: {exc.strerror or exc}") from exc
    detail = (f"installed {', '.join(_CLINE_EVENTS)} in {directory}. Turn on Hooks in Cline's "
              f"settings if they are off." if changed else f"{directory} already up to date; nothing changed")
    return HookResult("cline", directory, changed, None, detail)


# ---- public API -----------------------------------------------------------------------------

def install(agent: str, home: Path, flag: Path) -> HookResult:
    if _check(agent) == "cline":
        return _cline(Path(home), Path(flag))
    return _apply_json(agent, Path(home), Path(flag))


def uninstall(agent: str, home: Path) -> HookResult:
    if _check(agent) == "cline":
        return _cline(Path(home), None)
    return _apply_json(agent, Path(home), None)


def is_installed(agent: str, home: Path) -> bool:
    """True when every hook killswitch installs for `agent` is in place under `home`."""
    if _check(agent) == "cline":
        files = [settings_path("cline", home) / n for n in _CLINE_EVENTS]
        return all(_cline_file_is_ours(f) and os.access(f, os.X_OK) for f in files)
    try:
        data, _ = _load(settings_path(agent, home))
    except HookError:
        return False
    hooks = (data or {}).get("hooks")
    if not isinstance(hooks, dict):
        return False
    for event, _ in _JSON_AGENTS[agent][1]:
        groups = hooks.get(event)
        if not isinstance(groups, list):
            return False
        handlers = groups if agent == "cursor" else [
            h for g in groups if isinstance(g, dict) and isinstance(g.get("hooks"), list) for h in g["hooks"]
        ]
        if not any(_ours(h) for h in handlers):
            return False
    return True


def snippet(agent: str, flag: Path) -> str:
    """What to paste by hand, and where (for `killswitch hooks print AGENT`)."""
    if _check(agent) == "cline":
        names = " and ".join(f"~/Documents/Cline/Hooks/{n}" for n in _CLINE_EVENTS)
        return (f"Save this as {names} (same content), then `chmod 755` both, and turn on Hooks "
                f"in Cline's settings:\n\n{hook_command('cline', flag)}")
    rel = "~/" + "/".join(_JSON_AGENTS[agent][0])
    block = json.dumps(_merge(agent, {}, Path(rel), None, Path(flag)), indent=2)
    extra = ""
    if agent == "goose":
        extra = (f'\nAlso create ~/.agents/plugins/{_GOOSE_PLUGIN}/plugin.json containing '
                 f'{{"name": "{_GOOSE_PLUGIN}", "version": "1.0.0"}}.')
    return (f"Merge this into {rel} (keep your other keys and hooks; add these entries to "
            f"existing event lists):\n\n{block}\n{extra}\n{_JSON_AGENTS[agent][3]}")
