"""Writing config.toml from the Settings dialog: only the edited keys change; the user's comments,
order and the sections other features own stay as they were. Nothing is written that would not load.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Iterable, Mapping

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.items import AoT, Comment, Item, Null, Table, Trivia, Whitespace

from killswitch.core import config as configmod
from killswitch.core.atomic import replace_file
from killswitch.core.config import ConfigError
from killswitch.core.rules import RuleError, make_rule

RULE_KEYS = ("name", "process", "cmdline", "env", "action")
COUNTDOWN_MAX = 600
NEW_FILE_MODE = 0o644


# ---------------------------------------------------------------------- checks, one field at a time
def rule_problem(raw: Any, index: int) -> RuleError | None:
    """The rule's first problem (with `.field` naming the key at fault), or None."""
    try:
        make_rule(clean_rule(raw) if isinstance(raw, Mapping) else raw, index)
    except RuleError as exc:
        return exc
    return None


def validate_rule(raw: Any, index: int) -> str | None:
    """What is wrong with the index-th rule, in words that name the rule and the key, or None."""
    problem = rule_problem(raw, index)
    if problem is None:
        return None
    name = raw.get("name") if isinstance(raw, Mapping) else None
    label = f"Rule {index + 1}" + (f" ({name})" if isinstance(name, str) and name else "")
    return f"{label}, {problem.field}: {problem}" if problem.field else f"{label}: {problem}"


def validate_countdown(seconds: Any) -> str | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= COUNTDOWN_MAX:
        return f"resume_countdown must be a whole number of seconds from 0 to {COUNTDOWN_MAX}"
    return None


def validate_nudge(days: Any) -> str | None:
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= configmod.NUDGE_MAX:
        return f"[journal] nudge_days must be a whole number of days from 0 (never) to {configmod.NUDGE_MAX}"
    return None


def clean_rule(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The rule as it would be written: empty and None values left out, known keys first."""
    kept = {k: v for k, v in raw.items() if v is not None and v != ""}
    return {**{k: kept[k] for k in RULE_KEYS if k in kept}, **{k: v for k, v in kept.items() if k not in RULE_KEYS}}


def same_rule(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal as far as the engine can tell: a missing action is "suspend"."""
    a, b = clean_rule(a), clean_rule(b)
    return all(_effective(a, k) == _effective(b, k) for k in set(a) | set(b) | {"action"})


def same_rules(a: Iterable[Mapping[str, Any]], b: Iterable[Mapping[str, Any]]) -> bool:
    a, b = list(a), list(b)
    return len(a) == len(b) and all(same_rule(x, y) for x, y in zip(a, b, strict=True))


def _effective(rule: Mapping[str, Any], key: str) -> Any:
    value = rule.get(key)
    return (value or "suspend") if key == "action" else value


# ---------------------------------------------------------------------- the edit
def update_config(
    path: Path,
    *,
    hotkey: str | None = None,
    resume_countdown: int | None = None,
    rules: list[Mapping[str, Any]] | None = None,
    nudge_days: int | None = None,
) -> None:
    """Change the given settings in config.toml; None leaves a setting as it is.

    `rules` replaces every `[[rules]]` table. A rule that is unchanged keeps its table as written
    (comments included); an edited one is changed key by key; the comments between and after the
    tables stay where they were. A missing file starts from the commented default.
    Raises ConfigError, leaving the file byte-identical, when the file cannot be parsed or when
    the result would not load.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))  # a dotfile manager's symlink stays a symlink
    old_text, mode = _read(target, path)
    doc = _parse(configmod.DEFAULT_CONFIG if old_text is None else old_text, path)

    if hotkey is not None:
        if not isinstance(hotkey, str) or not hotkey.strip():
            raise ConfigError(path, "not saved: the hotkey must be a non-empty string like \"<ctrl>+<alt>+<shift>+k\"")
        _set_top(doc, "hotkey", hotkey)
    if resume_countdown is not None:
        problem = validate_countdown(resume_countdown)
        if problem:
            raise ConfigError(path, f"not saved: {problem}")
        _set_top(doc, "resume_countdown", resume_countdown)
    if nudge_days is not None:
        problem = validate_nudge(nudge_days)
        if problem:
            raise ConfigError(path, f"not saved: {problem}")
        if "journal" not in doc:
            doc["journal"] = tomlkit.table()
        journal = doc["journal"]
        if journal.get("nudge_days") != nudge_days:
            journal["nudge_days"] = nudge_days
    if rules is not None:
        for index, raw in enumerate(rules):
            problem = validate_rule(raw, index)
            if problem:
                raise ConfigError(path, f"not saved: {problem}")
        _replace_aot(doc, "rules", [clean_rule(raw) for raw in rules])

    try:
        new_text = doc.as_string()
        configmod.parse(new_text, path)
    except ConfigError as exc:
        # The line would point into text that was never written: leave it out.
        raise ConfigError(path, f"not saved: {exc.detail}") from None
    except TOMLKitError as exc:  # pragma: no cover - tomlkit refusing its own output
        raise ConfigError(path, f"not saved: {exc}") from None
    if new_text == old_text:
        return
    _write_atomic(target, new_text, mode, path)


def update_offday(path: Path, *, rules: list[Mapping[str, Any]] | None = None, hosts: list[str] | None = None,
                  include_www: bool | None = None, early_end_limit: int | None = None) -> None:
    """Change the [offday] settings in config.toml; None leaves a setting as it is. `rules` replaces
    every [[offday.rules]] table as `update_config` does [[rules]] (unchanged ones keep their comments).
    Raises ConfigError, leaving the file byte-identical, when the result would not load."""
    from killswitch.core import schedule  # needs dateutil; the stop path never comes here

    path = Path(path)
    target = Path(os.path.realpath(path))
    old_text, mode = _read(target, path)
    doc = _parse(configmod.DEFAULT_CONFIG if old_text is None else old_text, path)
    for index, raw in enumerate(rules or ()):
        try:
            schedule.make_rule(raw)  # refuses unknown keys too
        except schedule.RuleProblem as exc:
            raise ConfigError(path, f"not saved: off-day rule {index + 1}: {exc}") from None
    offday = doc.item("offday") if "offday" in doc else None
    if offday is None:
        offday = tomlkit.table(is_super_table=(hosts, include_www, early_end_limit) == (None, None, None))
        doc.append("offday", offday)
    elif not isinstance(offday, Table):
        raise ConfigError(path, "`offday` is not a table; not saved, edit it in a text editor")
    if hosts is not None and not isinstance(hosts, str):
        hosts = list(hosts)  # a tuple is fine; a bare string is refused by the check below
    for key, value in (("hosts", hosts), ("include_www", include_www), ("early_end_limit", early_end_limit)):
        if value is not None:
            (_set_top if key in offday else _add_key)(offday, key, value)
    if rules is not None:
        _replace_aot(offday, "rules", [{k: r[k] for k in schedule.RULE_KEYS if r.get(k) is not None} for r in rules])
    try:
        new_text = doc.as_string()
        schedule.parse_offday((configmod.parse(new_text, path).extra or {}).get("offday"), path, new_text)
    except ConfigError as exc:
        raise ConfigError(path, f"not saved: {exc.detail}") from None
    except TOMLKitError as exc:  # pragma: no cover - tomlkit refusing its own output
        raise ConfigError(path, f"not saved: {exc}") from None
    if new_text != old_text:
        _write_atomic(target, new_text, mode, path)


def _add_key(table: Table, key: str, value: Any) -> None:
    """A new key right after the table's last key (not after the comments and tables below it)."""
    plain = [k.key for k, item in table.value.body if k is not None and not isinstance(item, (Table, AoT))]
    if plain:
        table.value._insert_after(plain[-1], key, value)
    elif table.value.body:
        table.value._insert_at(0, key, value)
    else:
        table.add(key, value)


def _read(target: Path, shown: Path) -> tuple[str | None, int]:
    try:
        raw = configmod.read_bounded(target)  # never hangs on a FIFO, never reads a huge file
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return None, NEW_FILE_MODE
    except OSError as exc:
        raise ConfigError(shown, f"cannot read the config: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8"), mode
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(shown, "the config is not valid UTF-8; not saved, fix it in a text editor", line) from None


def _parse(text: str, path: Path) -> tomlkit.TOMLDocument:
    """Parse for editing, refusing what cannot be edited without damage."""
    try:
        configmod.parse_toml(text, path)  # bounded: size, nesting, dotted keys; the line of a failure
    except ConfigError as exc:
        raise ConfigError(path, f"{exc.detail}; not saved, fix it in a text editor", exc.line) from None
    try:
        doc = tomlkit.parse(text)
    except ParseError as exc:
        raise ConfigError(path, f"not valid TOML: {exc}; not saved", getattr(exc, "line", None)) from None
    except TOMLKitError as exc:
        raise ConfigError(path, f"cannot be edited: {exc}; not saved") from None
    if doc.as_string() != text:
        # tomlkit would move parts of it, e.g. [[rules]] tables split around another section.
        raise ConfigError(path, "cannot be changed without moving parts of it (keep all [[rules]] tables "
                                "together); not saved, edit it in a text editor")
    return doc


def _set_top(doc: tomlkit.TOMLDocument, key: str, value: Any) -> None:
    existing = doc.get(key)
    was = existing.unwrap() if isinstance(existing, Item) else existing
    if type(was) is type(value) and was == value:
        return  # an unchanged key keeps its exact spelling
    doc[key] = value


# ---------------------------------------------------------------------- rules
def _replace_aot(doc: tomlkit.TOMLDocument | Table, key: str, new: list[dict[str, Any]]) -> None:
    """Replace the array of tables `key` in `doc` (the document or a table, e.g. [offday])."""
    current = doc.item(key) if key in doc else None
    if not isinstance(current, AoT):
        if current is not None:
            doc.remove(key)  # e.g. an inline `rules = [...]`: rewritten as tables at the end
        if new:
            doc.append(key, _fresh_aot(new))
        return

    old: list[Table] = list(current.body)
    if len(old) == len(new) and all(same_rule(_table_rule(t), r) for t, r in zip(old, new, strict=True)):
        return
    gaps = [_detach_gap(table) for table in old]
    # Between two rules, comments right under the first (no blank line between) are its note and
    # comments right above the second are its heading: each goes where its rule goes, and away
    # with it. The rest, a commented-out rule say, stays in its place. After the last rule
    # everything belongs to the file.
    headings: dict[int, list[Item]] = {}
    notes: dict[int, list[Item]] = {}
    for i in range(len(old) - 1):
        headings[id(old[i + 1])] = _split_heading(gaps[i])
        notes[id(old[i])] = _split_note(gaps[i])
    tables = _reuse(old, new)
    if not tables:
        _drop_aot(doc, _join([gap for gap in gaps[:-1] if _has_comment(gap)] + gaps[-1:]), key)
        return
    last = len(tables) - 1
    for j, table in enumerate(tables):
        if j < last:
            gap = gaps[j] if j < len(old) - 1 else [Whitespace("\n")]
        else:
            gap = _join([gap for gap in gaps[last:-1] if _has_comment(gap)] + gaps[-1:])
        items = notes.get(id(table), []) + gap
        if j < last or items:
            _end_line(table)
        for item in items:
            table.value.body.append((None, item))
        heading = "".join(item.as_string() for item in headings.get(id(table), []))
        # Set after the edits: tomlkit indents added keys like the text before the header.
        table.trivia.indent = heading + table.trivia.indent
    del current[:]
    for table in tables:
        current.append(table)


def _reuse(old: list[Table], new: list[dict[str, Any]]) -> list[Table]:
    """One table per new rule: an identical old one as it is, else an old one with the same name
    or position edited key by key (its comments on unchanged keys stay), else a new one."""
    chosen: list[Table | None] = [None] * len(new)
    used: set[int] = set()
    written = [_table_rule(t) for t in old]

    def take(j: int, test) -> None:
        for i, rule in enumerate(written):
            if i not in used and test(i, rule):
                used.add(i)
                chosen[j] = old[i]
                return

    for j, rule in enumerate(new):
        take(j, lambda i, was, rule=rule: same_rule(was, rule))
    for j, rule in enumerate(new):
        if chosen[j] is None and rule.get("name"):
            take(j, lambda i, was, rule=rule: was.get("name") == rule["name"])
    for j in range(len(new)):
        if chosen[j] is None:
            take(j, lambda i, was, j=j: i == j)
    tables = []
    for j, rule in enumerate(new):
        table = chosen[j]
        if table is None:
            table = tomlkit.table()
            for key, value in rule.items():
                table.add(key, _string(value))
        else:
            _edit(table, rule)
        tables.append(table)
    return tables


def _edit(table: Table, rule: dict[str, Any]) -> None:
    was = _table_rule(table)
    for key in list(was):
        if key not in rule and _effective(was, key) != _effective(rule, key):
            del table[key]
    for key, value in rule.items():
        if _effective(was, key) != _effective(rule, key):
            table[key] = _string(value)


def _table_rule(table: Table) -> dict[str, Any]:
    return clean_rule(table.unwrap())


def _fresh_aot(new: list[dict[str, Any]]) -> AoT:
    aot = tomlkit.aot()
    for rule in new:
        table = tomlkit.table()
        for key, value in rule.items():
            table.add(key, _string(value))
        aot.append(table)
    return aot


def _string(value: Any) -> Any:
    """Regular expressions read better as 'literal strings': no doubled backslashes."""
    if (isinstance(value, str) and "\\" in value and "'" not in value
            and all(c == "\t" or (" " <= c and c != "\x7f") for c in value)):
        return tomlkit.string(value, literal=True)
    return value


def _detach_gap(table: Table) -> list[Item]:
    """Take the comments and blank lines after a table's last key: they belong to the file, not the rule."""
    body = table.value.body
    gap: list[Item] = []
    while body and body[-1][0] is None and isinstance(body[-1][1], (Comment, Whitespace, Null)):
        gap.insert(0, body.pop()[1])
    return gap


def _split_heading(gap: list[Item]) -> list[Item]:
    """Take the comment lines at the end of a gap."""
    heading: list[Item] = []
    while gap and isinstance(gap[-1], Comment):
        heading.insert(0, gap.pop())
    return heading


def _split_note(gap: list[Item]) -> list[Item]:
    """Take the comment lines at the start of a gap."""
    note: list[Item] = []
    while gap and isinstance(gap[0], Comment):
        note.append(gap.pop(0))
    return note


def _join(gaps: list[list[Item]]) -> list[Item]:
    """Gaps put together, without piling up blank lines where they meet."""
    joined: list[Item] = []
    for gap in gaps:
        for item in gap:
            if not (joined and isinstance(item, Whitespace) and isinstance(joined[-1], Whitespace)):
                joined.append(item)
    return joined


def _has_comment(gap: list[Item]) -> bool:
    return any(isinstance(item, Comment) for item in gap)


def _end_line(table: Table) -> None:
    if not table.as_string().endswith("\n"):
        table.value.body.append((None, Whitespace("\n")))


def _drop_aot(doc: tomlkit.TOMLDocument | Table, keep: list[Item], name: str = "rules") -> None:
    """Remove every rule table; the comments that sat between them stay in their place."""
    body = doc.body if isinstance(doc, tomlkit.TOMLDocument) else doc.value.body
    where = next(i for i, (key, item) in enumerate(body) if key is not None and key.key == name)
    doc.remove(name)  # leaves a placeholder at `where`, so no other index moves
    text = "".join(item.as_string() for item in keep)
    if text.strip():
        body[where] = (None, Comment(Trivia(indent="", comment_ws="", comment=text, trail="")))


# ---------------------------------------------------------------------- writing
def _write_atomic(target: Path, text: str, mode: int, shown: Path) -> None:
    """Readers see the old file or the new one, never half of one; a crash leaves the old one."""
    try:
        replace_file(target, text.encode("utf-8"), mode=mode)
    except OSError as exc:
        raise ConfigError(shown, f"cannot write the config: {exc.strerror or exc}; it was not changed") from None
