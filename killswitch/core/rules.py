"""Process rules: which processes a stop freezes or terminates, and the checks that refuse bad ones."""

from __future__ import annotations

import functools
import re
import time
from typing import Any, NamedTuple

try:  # Python 3.11+: the parser moved; sre_parse still works but warns.
    import re._constants as _sre_const  # type: ignore[import-not-found]
    import re._parser as _sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - older layouts
    import sre_constants as _sre_const  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

ACTIONS = ("suspend", "terminate")
MAX_PATTERN = 512
# Only this much of a command line is searched: bounds the cost of any accepted pattern.
# Agents name themselves near the start; a 10 kB Java classpath need not be searched.
CMDLINE_SEARCH_LIMIT = 1024
# Worst time one accepted pattern may take on a hostile command line of that length.
PROBE_BUDGET = 0.010
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
    regex: re.Pattern[str] | None = None

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
        if self.regex is not None and not self.regex.search(cmdline[:CMDLINE_SEARCH_LIMIT]):
            return False
        if self.env is not None:
            if environ is None or self.env_key not in environ:
                return False
            if self.env_value is not None and environ[self.env_key] != self.env_value:
                return False
        return True


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
def compile_safe_regex(pattern: str) -> re.Pattern[str]:
    """Compile a command-line pattern, refusing ones that are invalid or can backtrack for ages."""
    if not pattern:
        raise RuleError("cmdline must not be empty (it would match every process)", "cmdline")
    if len(pattern) > MAX_PATTERN:
        raise RuleError(f"cmdline pattern is longer than {MAX_PATTERN} characters", "cmdline")
    try:
        parsed = _sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise RuleError(f"cmdline is not a valid regular expression: {exc}", "cmdline") from None
    problem = _slow_construct(parsed, inside_repeat=False) or _too_many_wildcards(parsed) or _probe(compiled, pattern)
    if problem:
        raise RuleError(f"cmdline pattern {pattern!r} is refused: {problem}", "cmdline")
    if compiled.search(""):
        raise RuleError(f"cmdline pattern {pattern!r} matches an empty command line, so it would match every process",
                        "cmdline")
    return compiled


_REPEATS = {_sre_const.MAX_REPEAT, _sre_const.MIN_REPEAT}
_POSSESSIVE = getattr(_sre_const, "POSSESSIVE_REPEAT", None)


def _slow_construct(parsed: Any, inside_repeat: bool) -> str | None:
    """Find the shapes that make backtracking exponential: nested unbounded repeats,
    alternations with a shared prefix under a repeat, and back-references."""
    for op, av in parsed:
        if op == _sre_const.GROUPREF or op == _sre_const.GROUPREF_EXISTS:
            return "back-references are not allowed"
        if op in _REPEATS or (_POSSESSIVE is not None and op == _POSSESSIVE):
            low, high, body = av
            unbounded = high == _sre_const.MAXREPEAT or high > 32
            if unbounded and inside_repeat:
                return "a repeated group contains an unbounded repeat (like (a+)+ or (.*a){20}), which can take forever"
            found = _slow_construct(body, inside_repeat or high > 1)
            if found:
                return found
        elif op == _sre_const.SUBPATTERN:
            found = _slow_construct(av[-1], inside_repeat)
            if found:
                return found
        elif op == _sre_const.BRANCH:
            branches = av[1]
            if inside_repeat and _branches_overlap(branches):
                return "alternatives that can match the same text inside a repeat (like (a|ab)*) can take forever"
            for branch in branches:
                found = _slow_construct(branch, inside_repeat)
                if found:
                    return found
        elif op in (_sre_const.ASSERT, _sre_const.ASSERT_NOT):
            found = _slow_construct(av[1], inside_repeat)
            if found:
                return found
    return None


def _branches_overlap(branches: list[Any]) -> bool:
    firsts: list[Any] = []
    for branch in branches:
        items = list(branch)
        if not items:
            return True
        op, av = items[0]
        if op != _sre_const.LITERAL:
            return True  # a class, any-char or group first: assume it can overlap
        if av in firsts:
            return True
        firsts.append(av)
    return False


def _is_broad_repeat(op: Any, av: Any) -> bool:
    """An unbounded repeat of anything but one literal character: `.*`, `[a-z]+`, `(ab)+`."""
    if op not in _REPEATS and not (_POSSESSIVE is not None and op == _POSSESSIVE):
        return False
    low, high, body = av
    if not (high == _sre_const.MAXREPEAT or high > 32):
        return False
    items = list(body)
    return not (len(items) == 1 and items[0][0] == _sre_const.LITERAL)


def _wildcards(parsed: Any) -> int:
    """The most broad repeats one path through the pattern meets: each one multiplies the
    backtracking (`a.*a.*a.*b` takes 47 s on 1 kB of "a")."""
    total = 0
    for op, av in parsed:
        if _is_broad_repeat(op, av):
            total += 1 + _wildcards(av[2])
        elif op == _sre_const.SUBPATTERN:
            total += _wildcards(av[-1])
        elif op == _sre_const.BRANCH:
            total += max((_wildcards(b) for b in av[1]), default=0)
    return total


def _too_many_wildcards(parsed: Any) -> str | None:
    if _wildcards(parsed) > 1:
        return ("more than one wildcard repeat (.*, [..]+, (..)+) in a row makes matching slow on long "
                "command lines; keep one, or split it into two rules")
    return None


def _probe(compiled: re.Pattern[str], pattern: str) -> str | None:
    """Time the pattern on hostile command lines made of its own characters."""
    chars = sorted({c for c in pattern if c.isprintable()} | {"a", " ", "/"})
    samples = [c * CMDLINE_SEARCH_LIMIT for c in chars]
    samples.append(("".join(chars) * CMDLINE_SEARCH_LIMIT)[:CMDLINE_SEARCH_LIMIT])
    started = time.perf_counter()
    for sample in samples:
        compiled.search(sample)
        if time.perf_counter() - started > PROBE_BUDGET * 5:
            break
    elapsed = time.perf_counter() - started
    if elapsed > PROBE_BUDGET * 5:
        return (f"it took {elapsed * 1000:.0f} ms on a {CMDLINE_SEARCH_LIMIT}-character command line; "
                "it would slow every stop")
    return None
