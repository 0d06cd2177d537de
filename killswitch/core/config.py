"""config.toml: reading and validating it, and the commented default written on first run.

A bad file is refused with the file and line; it is never rewritten.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from killswitch.core.rules import Rule, RuleError, make_rule

DEFAULT_HOTKEY = "<ctrl>+<alt>+<shift>+k"
NUDGE_MAX = 365

DEFAULT_CONFIG = '''\
# killswitch configuration. Edit freely: killswitch keeps your comments when it writes here.
# Reference: the README, section "Configuration".

# The global hotkey that stops everything (pynput notation).
hotkey = "<ctrl>+<alt>+<shift>+k"

# Seconds the Resume button stays disabled, so resuming is a deliberate act.
resume_countdown = 10

# Seconds a terminated process gets after SIGTERM before SIGKILL.
terminate_grace = 3.0

# Process rules: what a stop freezes ("suspend", the default) or ends ("terminate").
# A rule needs at least one of `process` (exact process name or executable basename),
# `cmdline` (a regular expression searched in the joined command line) or `env`
# (NAME=VALUE or NAME, an environment variable of the process). When several are
# given, all must match. Check what your rules match right now with:
#     killswitch rules --dry-run
#
# Examples for common local agents; remove the leading "# " to use one.
#
# [[rules]]
# name = "Claude Code"
# cmdline = "(^|/)claude( |$)"
#
# [[rules]]
# name = "Codex CLI"
# cmdline = "(^|/)codex( |$)|@openai/codex"
#
# [[rules]]
# name = "Gemini CLI"
# cmdline = "(^|/)gemini( |$)|@google/gemini-cli"
#
# [[rules]]
# name = "Aider"
# cmdline = "(^|/)aider( |$)"
#
# [[rules]]
# name = "Shells and tools started by Claude Code"
# env = "CLAUDECODE=1"
#
# [[rules]]
# name = "Local models"
# process = "ollama"
# action = "terminate"    # frees GPU memory; a frozen process keeps it

# The pause journal (History in the tray, `killswitch history`).
[journal]
# After this many days without a pause, one gentle notification suggests one. 0 turns it off.
nudge_days = 14
'''


class ConfigError(Exception):
    """The config cannot be used. Says which file, which line when known, and what is wrong."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        self.path = path
        self.line = line
        self.detail = message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


class Config(NamedTuple):
    rules: tuple[Rule, ...] = ()
    hotkey: str = DEFAULT_HOTKEY
    resume_countdown: int = 10
    terminate_grace: float = 3.0
    extra: dict[str, Any] | None = None  # sections later features own
    nudge_days: int = 14  # [journal]: suggest a pause after this many quiet days; 0 = never


def ensure_default(path: Path) -> bool:
    """Write the commented default config if there is none. Never touches an existing file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(DEFAULT_CONFIG)
    return True


def load(path: Path) -> Config:
    """Read and validate. A missing file is the default config."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return parse(DEFAULT_CONFIG, path)
    except OSError as exc:
        raise ConfigError(path, f"cannot read the config: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(path, "the config is not valid UTF-8", line) from None
    return parse(text, path)


_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def parse(text: str, path: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_LINE.search(message)
        line = int(found.group(1)) if found else None
        raise ConfigError(path, f"not valid TOML: {_TOML_LINE.sub('', message).strip()}", line) from None

    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(path, "`rules` must be an array of tables ([[rules]])", _key_line(text, "rules"))
    rules = []
    for index, raw in enumerate(raw_rules):
        try:
            rules.append(make_rule(raw, index))
        except RuleError as exc:
            raise ConfigError(path, f"rules[{index}]: {exc}", _rule_line(text, index, exc.field)) from None

    hotkey = data.get("hotkey", DEFAULT_HOTKEY)
    if not isinstance(hotkey, str) or not hotkey.strip():
        raise ConfigError(path, "hotkey must be a non-empty string like \"<ctrl>+<alt>+<shift>+k\"",
                          _key_line(text, "hotkey"))
    countdown = data.get("resume_countdown", 10)
    if isinstance(countdown, bool) or not isinstance(countdown, int) or not 0 <= countdown <= 600:
        raise ConfigError(path, "resume_countdown must be a whole number of seconds from 0 to 600",
                          _key_line(text, "resume_countdown"))
    grace = data.get("terminate_grace", 3.0)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace <= 60:
        raise ConfigError(path, "terminate_grace must be a number of seconds from 0 to 60",
                          _key_line(text, "terminate_grace"))
    journal = data.get("journal", {})
    if not isinstance(journal, dict):
        raise ConfigError(path, "`journal` must be a table ([journal])", _key_line(text, "journal"))
    unknown = sorted(set(journal) - {"nudge_days"})
    if unknown:
        raise ConfigError(path, f"[journal] has no setting {unknown[0]!r} (known: nudge_days)",
                          _key_line(text, unknown[0]))
    nudge = journal.get("nudge_days", 14)
    if isinstance(nudge, bool) or not isinstance(nudge, int) or not 0 <= nudge <= NUDGE_MAX:
        raise ConfigError(path, f"[journal] nudge_days must be a whole number of days from 0 (never) to {NUDGE_MAX}",
                          _key_line(text, "nudge_days"))
    known = {"rules", "hotkey", "resume_countdown", "terminate_grace", "journal"}
    extra = {k: v for k, v in data.items() if k not in known}
    return Config(tuple(rules), hotkey, countdown, float(grace), extra, nudge)


def _key_line(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.M)
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else None


def _rule_line(text: str, index: int, key: str | None) -> int | None:
    """The line of the index-th [[rules]] table, or of `key` inside it."""
    headers = [m.start() for m in re.finditer(r"^[ \t]*\[\[[ \t]*rules[ \t]*\]\]", text, re.M)]
    if index >= len(headers):
        return _key_line(text, "rules")
    start = headers[index]
    following = re.compile(r"^[ \t]*\[", re.M).search(text, start + 1)
    end = following.start() if following else len(text)
    if key:
        found = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.M).search(text, start, end)
        if found:
            start = found.start()
    return text.count("\n", 0, start) + 1
