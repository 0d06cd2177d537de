"""What each supported agent wants: where its hooks live, which events, its answer formats, and
the one static shell command installed for it; plus the package's HookError and HookResult.

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

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
