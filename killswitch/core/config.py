"""config.toml: reading and validating it, and the commented default written on first run.

A bad file is refused with the file and line; it is never rewritten. Hostile files are normal: the
file is bounded (size, nesting, dotted keys, rule count, the size of the cmdline patterns together)
before and while it is parsed, so reading it takes bounded time and raises nothing but ConfigError.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from killswitch.core.rules import Rule, RuleError, make_rule

DEFAULT_HOTKEY = "<ctrl>+<alt>+<shift>+k"
NUDGE_MAX = 365
# The bounds on a config file. A real one is a few kB with a handful of rules.
MAX_BYTES = 256 * 1024  # parsing 256 KiB of the worst valid TOML takes ~0.5 s; a real config, ~1 ms
MAX_DEPTH = 32  # arrays and inline tables inside one another (tomllib recurses on each level)
MAX_KEY_PARTS = 32  # parts of one dotted key a.b.c (tomllib takes quadratic time in them)
MAX_RULES = 256  # [[rules]] tables
# RE2 instructions of all cmdline patterns together (rules.MAX_PROGRAM bounds one): what a stop's
# matching costs per process, whatever the rules say. The default examples take 15-40 each.
MAX_PATTERN_TOTAL = 10_000

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
# `cmdline` (an RE2 regular expression searched in the joined command line) or `env`
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
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Private like everything killswitch keeps; O_EXCL|O_NOFOLLOW: never through a planted link.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(DEFAULT_CONFIG)
    return True


def load(path: Path) -> Config:
    """Read and validate. A missing file is the default config."""
    try:
        raw = read_bounded(path)
    except FileNotFoundError:
        return parse(DEFAULT_CONFIG, path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(path, "the config is not valid UTF-8", line) from None
    return parse(text, path)


def read_bounded(path: Path) -> bytes:
    """The file's bytes; ConfigError if it is not a regular file or is larger than MAX_BYTES.

    Opened without blocking and checked before reading, so a FIFO or /dev/zero in its place can
    neither hang nor exhaust a stop. FileNotFoundError passes through (no file is the default)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(path, f"cannot read the config: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
            raise ConfigError(path, f"cannot read the config: it is {kind}, not a regular file")
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError(path, f"cannot read the config: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > MAX_BYTES:
        _too_big(path, raw)
    return raw


def _too_big(path: Path, raw: bytes) -> None:
    line = raw[:MAX_BYTES].count(b"\n") + 1
    raise ConfigError(path, f"the config is larger than {MAX_BYTES // 1024} KiB, the most killswitch reads "
                            f"(the limit falls in this line); a config needs a few kB", line)


_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def parse(text: str, path: Path) -> Config:
    data = parse_toml(text, path)
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(path, "`rules` must be an array of tables ([[rules]])", _key_line(text, "rules"))
    if len(raw_rules) > MAX_RULES:
        raise ConfigError(path, f"{len(raw_rules)} rules; at most {MAX_RULES} are allowed (this is rule "
                                f"{MAX_RULES + 1})", _rule_line(text, MAX_RULES, None))
    rules = []
    pattern_total = 0
    for index, raw in enumerate(raw_rules):
        try:
            rule = make_rule(raw, index)
        except RuleError as exc:
            raise ConfigError(path, f"rules[{index}]: {exc}", _rule_line(text, index, exc.field)) from None
        if rule.regex is not None:
            pattern_total += rule.regex.programsize
            if pattern_total > MAX_PATTERN_TOTAL:
                raise ConfigError(path, f"rules[{index}]: the cmdline patterns up to this one compile to "
                                        f"{pattern_total} RE2 instructions together, more than {MAX_PATTERN_TOTAL}; "
                                        "use fewer or simpler patterns", _rule_line(text, index, "cmdline"))
        rules.append(rule)

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


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """tomllib.loads, bounded: any text in, a dict or a ConfigError naming the line out.

    Whatever else reads config.toml should parse through here: tomllib alone raises RecursionError
    on deep nesting and takes quadratic time in the parts of a dotted key."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        _too_big(path, text.encode("utf-8", "surrogatepass"))
    check_shape(text, path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_LINE.search(message)
        line = int(found.group(1)) if found else None
        raise ConfigError(path, f"not valid TOML: {_TOML_LINE.sub('', message).strip()}", line) from None
    except RecursionError:  # a last resort: check_shape keeps the nesting far below the limit
        raise ConfigError(path, "arrays or tables are nested too deeply to read") from None


# TOML's tokens as far as nesting and dotted keys go. Possessive repeats only: linear on any text.
_TOKEN = re.compile(r'''
    (?P<nl>\n)
  | (?P<comment>\#[^\n]*+)
  | (?P<str>"""(?:[^"\\]++|\\[\s\S]|"{1,2}+(?!"))*+(?:"{3,5}+|\Z)
          | \'\'\'(?:[^']++|'{1,2}+(?!'))*+(?:'{3,5}+|\Z)
          | "(?:[^"\\\n]++|\\.)*+"?
          | '[^'\n]*+'?)
  | (?P<open>[\[{])
  | (?P<close>[\]}])
  | (?P<dot>\.)
  | (?P<brk>[,=])
  | (?P<word>[^\n\#"'\[\]{}.,=\\]++|\\)
''', re.X)


def check_shape(text: str, path: Path) -> None:
    """Refuse, with the line, nesting deeper than MAX_DEPTH and dotted keys of more than
    MAX_KEY_PARTS parts, before tomllib sees them. Strings and comments are skipped; a bracket
    counts whether it opens a value or a table header (a header adds at most 2)."""
    depth, dots, line = 0, 0, 1
    for token in _TOKEN.finditer(text):
        kind = token.lastgroup
        if kind == "nl":
            line += 1
            dots = 0
        elif kind == "str":
            line += token.group().count("\n")
        elif kind == "open":
            depth += 1
            dots = 0
            if depth > MAX_DEPTH:
                raise ConfigError(path, f"arrays and inline tables are nested more than {MAX_DEPTH} deep", line)
        elif kind == "close":
            depth = max(0, depth - 1)
            dots = 0
        elif kind == "dot":
            dots += 1
            if dots >= MAX_KEY_PARTS:
                raise ConfigError(path, f"a dotted key has more than {MAX_KEY_PARTS} parts", line)
        elif kind == "brk":
            dots = 0


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
