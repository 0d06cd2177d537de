"""The JSON settings files of Claude Code, Codex, Gemini, Cursor and goose: strict reading, merging
our entries in and out in place, keeping the indent, a backup, and an atomic write.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from killswitch.agents.catalog import (
    _GOOSE_PLUGIN,
    _JSON_AGENTS,
    MARKER,
    HookError,
    HookResult,
    hook_command,
    settings_path,
)
from killswitch.core.atomic import replace_file


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
        raise HookError(f"{path} is not UTF-8 text (byte {exc.start}); nothing was changed. {fix}") from exc
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
    stamp = _dt.datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
    target, n = real.with_name(f"{real.name}.killswitch-backup-{stamp}"), 1
    while target.exists():
        target, n = real.with_name(f"{real.name}.killswitch-backup-{stamp}-{n}"), n + 1
    shutil.copy2(real, target)
    return target


def _write(path: Path, content: str, mode: int | None = None) -> None:
    """Atomic replace of the real target (symlinks are followed), keeping the file's mode."""
    # A settings file may be a link into the user's dotfiles: write through it, on purpose.
    replace_file(path, content.encode("utf-8"), mode=mode, keep_mode=mode is None, follow_symlinks=True)


def _apply_json(agent: str, home: Path, flag: Path | None) -> HookResult:
    """Install (`flag` given) or remove (`flag` None) our hooks in `agent`'s settings file."""
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


def _json_is_installed(agent: str, home: Path) -> bool:
    """True when every hook killswitch installs for `agent` is in its settings file under `home`."""
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


def _json_snippet(agent: str, flag: Path) -> str:
    """What to merge by hand into `agent`'s settings file, and where."""
    rel = "~/" + "/".join(_JSON_AGENTS[agent][0])
    block = json.dumps(_merge(agent, {}, Path(rel), None, Path(flag)), indent=2)
    extra = ""
    if agent == "goose":
        extra = (f'\nAlso create ~/.agents/plugins/{_GOOSE_PLUGIN}/plugin.json containing '
                 f'{{"name": "{_GOOSE_PLUGIN}", "version": "1.0.0"}}.')
    return (f"Merge this into {rel} (keep your other keys and hooks; add these entries to "
            f"existing event lists):\n\n{block}\n{extra}\n{_JSON_AGENTS[agent][3]}")
