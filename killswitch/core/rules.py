"""Process rules: which processes a stop freezes or terminates, and the checks that refuse bad ones.

`cmdline` patterns are compiled with RE2 (the google-re2 package), which matches in time linear in
the command line's length whatever the pattern: no pattern can make a stop hang, so none is timed.
RE2 is imported only when a rule has a `cmdline` (a cold stop without one never loads it). What RE2
cannot do (back-references, look-around, ...) is refused with the construct named, and so is the one
Python spelling RE2 reads differently (`x{,3}`).
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

ACTIONS = ("suspend", "terminate")
MAX_PATTERN = 512  # characters of one cmdline pattern
# RE2 instructions one compiled pattern may have. Matching costs at most about (command-line length
# x instructions); ordinary patterns have 10-200, a 512-character literal ~520. What goes past it:
# big counted repeats (`.{1,500}`, `(x{1,30}){1,30}`) and Unicode classes (`\pL`).
MAX_PROGRAM = 1000
# Memory for one compiled pattern (its program and its DFA cache): 256 rules stay under 64 MiB.
RE2_MAX_MEM = 256 * 1024
# Only this much of a command line is searched. RE2 needs no such bound to finish, but it keeps a
# stop's matching work fixed (rules x processes x 1 kB, however long a 10 kB Java classpath is), and
# what a rule matched before RE2 it matches now. Agents name themselves near the start.
CMDLINE_SEARCH_LIMIT = 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class RuleError(ValueError):
    """A rule that cannot be used. `field` names the key at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Rule(NamedTuple):
    name: str
    process: str | None = None
    cmdline: str | None = None
    env: str | None = None
    action: str = "suspend"
    regex: Any = None  # the compiled cmdline pattern (an RE2 regexp: `.search(text)`, `.programsize`)

    @property
    def env_key(self) -> str | None:
        return None if self.env is None else self.env.partition("=")[0]

    @property
    def env_value(self) -> str | None:
        if self.env is None or "=" not in self.env:
            return None
        return self.env.partition("=")[2]

    def matches(self, name: str, exe_base: str, cmdline: str, environ: dict[str, str] | None) -> bool:
        """All given criteria must hold. `environ` is only consulted for env rules."""
        if self.process is not None and self.process not in (name, exe_base):
            return False
        if self.regex is not None and self.regex.search(_searched(cmdline)) is None:
            return False
        if self.env is not None:
            if environ is None or self.env_key not in environ:
                return False
            if self.env_value is not None and environ[self.env_key] != self.env_value:
                return False
        return True


def _searched(cmdline: str) -> bytes:
    """What a pattern searches: the first CMDLINE_SEARCH_LIMIT characters, as UTF-8 for RE2. Bytes
    that are not UTF-8 (psutil hands them over as surrogate escapes) stay as they are: any program
    can put them in its own argv, and they must not break the stop."""
    return cmdline[:CMDLINE_SEARCH_LIMIT].encode("utf-8", "surrogateescape")


def make_rule(raw: Any, index: int) -> Rule:
    """Build a rule from one `[[rules]]` table, refusing anything unclear."""
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise RuleError(f"{where} must be a table", None)
    known = {"name", "process", "cmdline", "env", "action"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise RuleError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}", unknown[0])
    values: dict[str, str | None] = {}
    for key in ("name", "process", "cmdline", "env", "action"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise RuleError(f"{key} must be a string, not {type(value).__name__}", key)
        if isinstance(value, str) and ("\x00" in value or "\n" in value):
            raise RuleError(f"{key} must not contain NUL or newline characters", key)
        values[key] = value
    if not any(values[k] for k in ("process", "cmdline", "env")):
        raise RuleError("a rule needs at least one of process, cmdline or env", None)
    name = values["name"] or values["process"] or values["cmdline"] or values["env"] or where
    action = values["action"] or "suspend"
    if action not in ACTIONS:
        raise RuleError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}", "action")
    process = values["process"]
    if process is not None and (not process or "/" in process):
        raise RuleError("process must be a process name or executable basename (no '/')", "process")
    env = values["env"]
    if env is not None and not _ENV_NAME.match(env.partition("=")[0]):
        raise RuleError(f"env must look like NAME=VALUE or NAME, not {env!r}", "env")
    regex = None
    if values["cmdline"] is not None:
        regex = compile_safe_regex(values["cmdline"])
    return Rule(name=name, process=process, cmdline=values["cmdline"], env=env, action=action, regex=regex)


@functools.lru_cache(maxsize=256)
def compile_safe_regex(pattern: str) -> Any:
    """Compile a `cmdline` pattern with RE2, refusing what it cannot match, what it would read
    differently from Python's `re`, what is too big, and what matches every process."""
    if not pattern:
        raise RuleError("cmdline must not be empty (it would match every process)", "cmdline")
    if len(pattern) > MAX_PATTERN:
        raise RuleError(f"cmdline pattern is longer than {MAX_PATTERN} characters", "cmdline")
    unsupported = python_only(pattern)
    if unsupported:
        raise RuleError(f"cmdline pattern {pattern!r} is refused: {unsupported}", "cmdline")
    import re2  # here, not at the top: a stop without cmdline rules never loads it

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    options.never_capture = True  # only "does it match" is asked: no groups to track
    options.max_mem = RE2_MAX_MEM
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        raise RuleError(f"cmdline pattern {pattern!r} is refused: {_re2_problem(exc)}", "cmdline") from None
    if compiled.programsize > MAX_PROGRAM:
        raise RuleError(f"cmdline pattern {pattern!r} is refused: it compiles to {compiled.programsize} RE2 "
                        f"instructions, more than {MAX_PROGRAM} (big counted repeats like .{{1,500}} or "
                        "Unicode classes like \\pL); make it simpler", "cmdline")
    if compiled.search("") is not None:
        raise RuleError(f"cmdline pattern {pattern!r} is refused: it matches an empty command line, so it would "
                        "match every process", "cmdline")
    return compiled


# Python `re` syntax RE2 does not have: (what, why / what to write instead).
_GROUPS = (
    ("(?<=", "look-behind (?<=...) is not supported"),
    ("(?<!", "negative look-behind (?<!...) is not supported"),
    ("(?=", "look-ahead (?=...) is not supported"),
    ("(?!", "negative look-ahead (?!...) is not supported"),
    ("(?P=", "a named back-reference (?P=name) is not supported"),
    ("(?>", "an atomic group (?>...) is not supported (RE2 never backtracks: a plain group does the same)"),
    ("(?(", "a conditional group (?(1)...|...) is not supported"),
    ("(?#", "a comment group (?#...) is not supported"),
)
_FLAGS = {"x": "verbose mode (?x) is not supported: remove the flag, the spaces and the comments",
          "a": "the ASCII flag (?a) is not supported (RE2's \\d, \\w, \\s and \\b are ASCII anyway)",
          "u": "the flag (?u) is not supported: remove it", "L": "the locale flag (?L) is not supported"}
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-[a-zA-Z]*)?[:)]")
_EMPTY_LOW = re.compile(r"\{,(\d*)\}")
_COUNTED = re.compile(r"\{\d+(?:,\d*)?\}")


def python_only(pattern: str) -> str | None:
    """The first construct of Python's `re` that RE2 lacks or reads differently, described; else None.

    Walks the pattern as RE2 reads it: escapes, character classes and \\Q...\\E are skipped whole."""
    i, n = 0, len(pattern)
    after_repeat = False
    while i < n:
        ch = pattern[i]
        at = f"at character {i + 1}"
        if ch == "\\":
            nxt = pattern[i + 1:i + 2]
            if nxt in "123456789" and nxt:
                return f"the back-reference \\{nxt} {at} is not supported (RE2 matches in linear time, " \
                       "which back-references rule out)"
            if nxt == "Z":
                return f"\\Z {at} is Python's end of text; RE2 writes it \\z"
            if nxt in ("u", "U", "N"):
                return f"the escape \\{nxt} {at} is not supported; write a character as \\x{{263A}}"
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
            else:
                i += 2
            after_repeat = False
            continue
        if ch == "[":
            i = _class_end(pattern, i)
            after_repeat = False
            continue
        if ch == "(" and pattern.startswith("(?", i):
            for prefix, problem in _GROUPS:
                if pattern.startswith(prefix, i):
                    return f"{problem} ({at})"
            flags = _FLAG_GROUP.match(pattern, i)
            for flag in flags.group(0) if flags else "":
                if flag in _FLAGS:
                    return f"{_FLAGS[flag]} ({at})"
        if ch == "{":
            empty_low = _EMPTY_LOW.match(pattern, i)
            if empty_low:
                high = empty_low.group(1)
                return (f"{empty_low.group(0)} {at} means 0 to {high or 'any number'} in Python but the literal text "
                        f"{empty_low.group(0)!r} in RE2; write {{0,{high}}}")
            counted = _COUNTED.match(pattern, i)
            if counted:
                i = counted.end()
                if pattern.startswith("?", i):
                    i += 1
                after_repeat = True
                continue
        if ch in "*+?" and not after_repeat:
            i += 1
            if pattern.startswith("?", i):
                i += 1
            after_repeat = True
            continue
        if ch == "+" and after_repeat:
            return f"the possessive repeat {pattern[max(0, i - 1):i + 1]!r} {at} is not supported (RE2 never " \
                   "backtracks: drop the last '+')"
        after_repeat = False
        i += 1
    return None


def _class_end(pattern: str, start: int) -> int:
    """The index just after the character class that opens at `start`."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
        elif pattern.startswith("[:", i) and ":]" in pattern[i + 2:]:
            i = pattern.index(":]", i + 2) + 2
        elif pattern[i] == "]":
            return i + 1
        else:
            i += 1
    return i


def _re2_problem(exc: Exception) -> str:
    """RE2's reason, in words."""
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    detail = str(detail)
    if detail.startswith("invalid repetition size"):
        return (f"{detail}: a counted repeat may be at most 1000, nested counted repeats multiplied together "
                "too")
    if detail.startswith("pattern too large"):
        return "it is too big for RE2 to compile (big counted repeats or Unicode classes); make it simpler"
    if detail.startswith("bad repetition operator"):
        return f"{detail} (a repeat of a repeat, or a possessive repeat like a++, which RE2 does not have)"
    return f"not a valid regular expression (RE2 syntax): {detail}"
