"""The hosts-file block as a pure text transform: validating host names, adding and removing the block.

No I/O here (`platform/hosts_writer.py` reads and writes files). The block looks like this, appended
at the end of the file in the file's own line-ending style:

    # BEGIN killswitch block -- managed by killswitch, do not edit (until 2026-11-30T00:00:00+01:00)
    0.0.0.0 chatgpt.com
    :: chatgpt.com
    # END killswitch block

Everything outside the block stays byte-identical. A file that did not end with a line break gets
one before the block, and the BEGIN line says so (`; newline added above`), so removing the block
restores the exact original bytes. Damaged blocks (BEGIN without END, END without BEGIN, repeated
markers) are repaired conservatively: only marker lines and entry lines that are unambiguously ours
are removed, anything else is kept, and every oddity is reported in `Removal.problems`.
"""

from __future__ import annotations

import encodings.idna as _idna
import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, NamedTuple

BEGIN = b"# BEGIN killswitch block"
END = b"# END killswitch block"
_MANAGED = b" -- managed by killswitch, do not edit"
_NEWLINE_ADDED = b"newline added above"
_ENTRY = re.compile(rb"(?:0\.0\.0\.0|::) ([a-z0-9_][a-z0-9_.-]*)\Z")
_LABEL = re.compile(r"[a-z0-9_-]+\Z")
_DOTS = re.compile("[.\u3002\uff0e\uff61]")  # IDNA treats the ideographic full stops as dots
# Names the system itself relies on (Debian, Fedora and macOS default hosts files).
RESERVED = frozenset({
    "localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4", "localhost6",
    "localhost6.localdomain6", "ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
    "ip6-allnodes", "ip6-allrouters", "broadcasthost",
})
# IDNA 2003 (Python's codec) and IDNA 2008 (browsers) disagree on these: "straße" would block
# "strasse", not the xn--strae-oqa name a browser looks up. Refused: write the xn-- form instead.
_DEVIATIONS = {"\u00df": "ß", "\u03c2": "final sigma", "\u200c": "ZWNJ", "\u200d": "ZWJ"}


class HostError(ValueError):
    """A host name that cannot go into the hosts file; `str()` names the entry (and its index)."""

    def __init__(self, reason: str, entry: object = None, index: int | None = None):
        self.reason, self.entry, self.index = reason, entry, index
        where = f"hosts[{index}] " if index is not None else ""
        what = f"{entry!r}: " if entry is not None else ""
        super().__init__(f"{where}{what}{reason}")


def validate_host(name: object, reserved: Iterable[str] = ()) -> str:
    """The name as it goes into the hosts file: IDNA-encoded lowercase ASCII, no trailing dot."""
    if not isinstance(name, str):
        raise HostError("not a host name (expected text)", name)
    if not name:
        raise HostError("empty host name", name)
    for ch in name:
        if ch in "\r\n\v\f\x85\u2028\u2029":
            raise HostError("contains a line break", name)
        if ch.isspace():
            raise HostError("contains a space", name)
        if ch == "#":
            raise HostError("contains '#', which starts a comment in the hosts file", name)
        if ch == "*":
            raise HostError("wildcards are not possible in a hosts file: name each host", name)
        if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn"):
            raise HostError(f"contains the control or invisible character U+{ord(ch):04X}", name)
        if ch in _DEVIATIONS:
            raise HostError(f"contains {_DEVIATIONS[ch]}, which browsers and Python encode differently; "
                            "write the xn-- form", name)
    if _is_ip(name):
        raise HostError("is an IP address, not a host name", name)
    labels = _DOTS.split(name)
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot: the fully qualified spelling of the same name
    ascii_labels = [_label(label, name) for label in labels]
    full = ".".join(ascii_labels)
    if len(full) > 253:
        raise HostError(f"is {len(full)} characters long (at most 253)", name)
    if full in RESERVED or full.endswith(".localhost") or full in {r.lower() for r in reserved}:
        raise HostError("is a name the system itself needs; it cannot be blocked", name)
    if _is_ip(full) or ascii_labels[-1].isdigit():
        raise HostError("looks like an IP address, not a host name", name)
    return full


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(name)  # pure parsing: "127.1" and "0x7f.1" resolve as addresses too
        return True
    except (OSError, ValueError):
        return False


def _label(label: str, name: str) -> str:
    if not label:
        raise HostError("has an empty label (two dots in a row, or a leading dot)", name)
    if label.isascii():
        ascii_label = label.lower()
        if ascii_label.startswith("xn--"):
            try:
                if _idna.ToASCII(_idna.ToUnicode(ascii_label)).decode("ascii") != ascii_label:
                    raise UnicodeError("not in canonical form")
            except UnicodeError as exc:
                raise HostError(f"label {label!r} is not valid punycode ({exc})", name) from None
    else:
        try:
            ascii_label = _idna.ToASCII(label).decode("ascii").lower()
        except UnicodeError as exc:
            raise HostError(f"label {label!r} is not a valid international name ({exc})", name) from None
    if len(ascii_label) > 63:
        raise HostError(f"label {ascii_label[:20]!r}… is {len(ascii_label)} characters long (at most 63)", name)
    if not _LABEL.match(ascii_label):
        raise HostError(f"label {label!r} may only hold letters, digits, '-' and '_'", name)
    if ascii_label.startswith("-") or ascii_label.endswith("-"):
        raise HostError(f"label {label!r} starts or ends with a hyphen", name)
    return ascii_label


def validate_hosts(hosts: Iterable[object], reserved: Iterable[str] = ()) -> list[str]:
    """Every name validated (the first bad one raises, naming it and its index), duplicates dropped."""
    if isinstance(hosts, (str, bytes)):
        raise HostError("expected a list of host names, not one string")
    reserved = tuple(reserved)
    out: list[str] = []
    for index, entry in enumerate(hosts):
        try:
            name = validate_host(entry, reserved)
        except HostError as exc:
            raise HostError(exc.reason, entry, index) from None
        if name not in out:
            out.append(name)
    return out


def expand_hosts(names: Iterable[str], include_www: bool) -> list[str]:
    """The names as blocked: each followed by its `www.` form when asked (if that is a valid name)."""
    out: dict[str, None] = {}
    for name in names:
        out[name] = None
        if include_www and not name.startswith("www."):
            try:
                out[validate_host("www." + name)] = None
            except HostError:
                pass  # too long with the prefix: the bare name is still blocked
    return list(out)


@dataclass(frozen=True)
class BlockInfo:
    hosts: tuple[str, ...]  # every blocked name, www forms included, in file order
    until: datetime | None
    newline_added: bool
    problems: tuple[str, ...]  # damage found (empty for a clean block)


class Removal(NamedTuple):
    text: bytes
    problems: list[str]  # what was odd; empty for a clean block or no block
    removed_lines: int


def detect_eol(text: bytes) -> bytes:
    """CRLF when most line breaks are CRLF, else LF (also for a file without any)."""
    crlf = text.count(b"\r\n")
    return b"\r\n" if crlf > text.count(b"\n") - crlf else b"\n"


def render_block(names: list[str], include_www: bool, until: datetime | None, eol: bytes = b"\n",
                 newline_added: bool = False) -> bytes:
    attrs = [b"until " + _iso(until).encode("ascii") if until is not None else b"no end time"]
    if newline_added:
        attrs.append(_NEWLINE_ADDED)
    lines = [BEGIN + _MANAGED + b" (" + b"; ".join(attrs) + b")"]
    for name in expand_hosts(names, include_www):
        lines += [b"0.0.0.0 " + name.encode("ascii"), b":: " + name.encode("ascii")]
    lines.append(END)
    return b"".join(line + eol for line in lines)


def _iso(until: datetime) -> str:
    if until.tzinfo is None or until.utcoffset() is None:
        raise ValueError("the end time needs a UTC offset")
    return until.isoformat(timespec="seconds")


def apply_block(text: bytes, hosts: list[str], include_www: bool, until: datetime | None) -> bytes:
    """`text` with exactly one block, for `hosts`, at its end (an existing block is replaced)."""
    names = validate_hosts(hosts)
    if not names:
        raise HostError("no hosts to block")
    base = remove_block(text)
    eol = detect_eol(base)
    added = bool(base) and not base.endswith(b"\n")
    return base + (eol if added else b"") + render_block(names, include_www, until, eol, added)


def remove_block(text: bytes) -> bytes:
    return remove_block_report(text).text


def _lines(text: bytes) -> list[bytes]:
    parts = text.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _content(line: bytes) -> bytes:
    line = line[:-1] if line.endswith(b"\n") else line
    return line[:-1] if line.endswith(b"\r") else line


def _kind(line: bytes) -> str | None:
    c = _content(line)
    if c == BEGIN or c.startswith(BEGIN + b" "):
        return "begin"
    if c == END or c.startswith(END + b" "):
        return "end"
    return "entry" if _ENTRY.match(c) else None


def _cut_off(line: bytes) -> bool:
    """A beginning of one of our entry lines, or of the END marker."""
    for prefix in (b"0.0.0.0 ", b":: "):
        if prefix.startswith(line) or line.startswith(prefix) and re.fullmatch(rb"[a-z0-9_.-]*", line[len(prefix):]):
            return True
    return END.startswith(line)


class _Scan(NamedTuple):
    lines: list[bytes]
    kinds: list[str | None]
    remove: set[int]
    blocks: list[tuple[int, int]]  # well-formed (begin, end) pairs
    begins: list[int]  # every BEGIN line removed
    problems: list[str]


def _scan(text: bytes) -> _Scan:
    lines = _lines(text)
    kinds = [_kind(line) for line in lines]
    remove: set[int] = set()
    blocks: list[tuple[int, int]] = []
    begins: list[int] = []
    problems: list[str] = []

    def orphan_begin(b: int, stop: int) -> None:
        problems.append(f"line {b + 1}: BEGIN marker without an END marker")
        remove.add(b)
        begins.append(b)
        j = b + 1
        while j < stop and kinds[j] == "entry":  # the entries that directly follow our marker
            remove.add(j)
            j += 1
        if j == len(lines) - 1 and not lines[j].endswith(b"\n") and _cut_off(_content(lines[j])):
            remove.add(j)  # the end of a write killed midway (in place): part of one of our lines

    def orphan_end(e: int) -> None:
        problems.append(f"line {e + 1}: END marker without a BEGIN marker")
        remove.add(e)
        j = e - 1  # only exact "0.0.0.0 h" + ":: h" pairs, as we write them, count as ours here
        while j >= 1 and kinds[j] == kinds[j - 1] == "entry" and j - 1 not in remove:
            a, b = _content(lines[j - 1]), _content(lines[j])
            if not (a.startswith(b"0.0.0.0 ") and b.startswith(b":: ") and a[8:] == b[3:]):
                break
            remove.update((j - 1, j))
            j -= 2

    open_at: int | None = None
    for i, kind in enumerate(kinds):
        if kind == "begin":
            if open_at is not None:
                orphan_begin(open_at, i)
            open_at = i
        elif kind == "end":
            if open_at is None:
                orphan_end(i)
                continue
            blocks.append((open_at, i))
            begins.append(open_at)
            kept = [j for j in range(open_at + 1, i) if kinds[j] != "entry"]
            remove.update(j for j in range(open_at, i + 1) if j not in kept)
            if kept:
                problems.append(f"lines {open_at + 1}-{i + 1}: kept {len(kept)} line(s) inside the block "
                                "that are not ours")
            open_at = None
    if open_at is not None:
        orphan_begin(open_at, len(lines))
    if len(blocks) > 1:
        problems.append(f"found {len(blocks)} blocks; removed them all")
    return _Scan(lines, kinds, remove, blocks, sorted(begins), problems)


def remove_block_report(text: bytes) -> Removal:
    """`text` without any block of ours, the original bytes restored, and what was odd."""
    scan = _scan(text)
    if not scan.remove:
        return Removal(text, scan.problems, 0)
    kept = [i for i in range(len(scan.lines)) if i not in scan.remove]
    out = [scan.lines[i] for i in kept]
    # The block we appended to a file without a final line break: take our line break back, but
    # only when nothing of the file's own follows the block any more.
    first_removed_tail = kept[-1] + 1 if kept else None
    if first_removed_tail is not None and first_removed_tail in scan.begins:
        begin = scan.lines[first_removed_tail]
        if _NEWLINE_ADDED in _content(begin):
            eol = b"\r\n" if begin.endswith(b"\r\n") else b"\n"
            if out[-1].endswith(eol):
                out[-1] = out[-1][: -len(eol)]
    return Removal(b"".join(out), scan.problems, len(scan.remove))


def parse_block(text: bytes) -> BlockInfo | None:
    """What our block in `text` blocks and until when; None when there is no marker at all."""
    scan = _scan(text)
    if not scan.begins and not scan.problems:
        return None
    hosts: dict[str, None] = {}
    for i in sorted(scan.remove):
        if scan.kinds[i] == "entry":
            hosts[_ENTRY.match(_content(scan.lines[i])).group(1).decode("ascii")] = None  # type: ignore[union-attr]
    until, added, problems = None, False, list(scan.problems)
    if scan.begins:
        begin = _content(scan.lines[scan.begins[0]])
        added = _NEWLINE_ADDED in begin
        match = re.search(rb"\(until ([^;)]+)[;)]", begin)
        if match:
            try:
                until = datetime.fromisoformat(match.group(1).decode("ascii"))
            except ValueError:
                problems.append("the BEGIN marker holds an unreadable end time")
    return BlockInfo(tuple(hosts), until, added, tuple(problems))


def block_matches(text: bytes, hosts: list[str], include_www: bool, until: datetime | None) -> bool:
    """True when `text` holds exactly one clean block with exactly these entries and end time."""
    scan = _scan(text)
    if scan.problems or len(scan.blocks) != 1:
        return False
    b, e = scan.blocks[0]
    want = render_block(validate_hosts(hosts), include_www, until).split(b"\n")[:-1]
    got = [_content(line) for line in scan.lines[b: e + 1]]
    got[0] = got[0].replace(b"; " + _NEWLINE_ADDED, b"")
    return got == want
