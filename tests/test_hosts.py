"""Hosts blocking: the pure transform (property tests), the safe writer, the root helper and the CLI.

CI runs as root, so the root-only parts run for real: a private mount namespace with a temp file
bind-mounted over /etc/hosts, resolved with `getent`.
"""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from killswitch.core import hosts as core
from killswitch.helper import client as helper_client
from killswitch.helper import install as helper_install
from killswitch.helper import root as hosts_helper
from killswitch.platform import hosts_writer as writer
from tests.helpers.processes import write_config

ROOT = Path(__file__).resolve().parents[1]
UNTIL = datetime(2026, 11, 30, 0, 0, tzinfo=timezone(timedelta(hours=1)))
HOSTS = ["chatgpt.com", "claude.ai", "bücher.example"]


def ks(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`killswitch hosts|helper …` as a separate process (the entry cli.py wires in)."""
    return subprocess.run([sys.executable, "-m", "killswitch", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=60, stdin=subprocess.DEVNULL)


def helper_cmd(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "killswitch.helper.root", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=60, stdin=subprocess.DEVNULL)


# -- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("chatgpt.com", "chatgpt.com"), ("ChatGPT.COM", "chatgpt.com"), ("api.openai.com.", "api.openai.com"),
    ("bücher.example", "xn--bcher-kva.example"), ("BÜCHER.example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"), ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ("a" * 63 + ".com", "a" * 63 + ".com"), ("my_host.example", "my_host.example"), ("intranet", "intranet"),
    ("x1.y-2.z3", "x1.y-2.z3"), ("123.example", "123.example"), ("a\u3002b", "a.b"),
])
def test_good_names_are_normalised(name, expected):
    assert core.validate_host(name) == expected


@pytest.mark.parametrize("name, why", [
    ("", "empty"), ("chat gpt.com", "space"), ("a.com\tb", "space"), ("a.com\n0.0.0.0 evil", "line break"),
    ("a.com\r", "line break"), ("a#b.com", "#"), ("a.com #x", "space"), ("a\x00b.com", "control"),
    ("a\x7fb.com", "control"), ("a\u200bb.com", "invisible"), ("localhost", "system"), ("LOCALHOST.", "system"),
    ("foo.localhost", "system"), ("localhost.localdomain", "system"), ("ip6-localhost", "system"),
    ("1.2.3.4", "IP address"), ("::1", "IP address"), ("[2001:db8::1]", "IP address"), ("fe80::1%eth0", "IP"),
    ("127.1", "IP address"), ("0x7f.1", "IP address"), ("1.2.3.400", "IP address"), ("a.123", "IP address"),
    ("a" * 64 + ".com", "at most 63"), (".".join(["a" * 60] * 5), "at most 253"), ("-a.com", "hyphen"),
    ("a-.com", "hyphen"), ("*.openai.com", "wildcard"), ("a..com", "empty label"), (".a.com", "empty label"),
    ("a.com..", "empty label"), (".", "empty label"), ("a/b.com", "letters, digits"), ("a:b", "letters"),
    ("xn--zz.com", "punycode"), ("straße.de", "xn-- form"), ("a\u200db.com", "invisible"), (None, "text"),
])
def test_bad_names_are_refused_with_a_reason(name, why):
    with pytest.raises(core.HostError) as info:
        core.validate_host(name)
    assert why in str(info.value)


def test_validate_hosts_names_the_bad_entry_and_its_index():
    assert core.validate_hosts(["a.com", "A.com", "b.com."]) == ["a.com", "b.com"]
    with pytest.raises(core.HostError) as info:
        core.validate_hosts(["ok.com", "fine.org", "bad host"])
    assert info.value.index == 2 and info.value.entry == "bad host"
    assert str(info.value) == "hosts[2] 'bad host': contains a space"
    with pytest.raises(core.HostError):
        core.validate_hosts("chatgpt.com")  # one string, not a list
    with pytest.raises(core.HostError, match="system itself"):
        core.validate_hosts(["mybox"], reserved=["MyBox"])


@settings(deadline=None)
@given(st.text(max_size=40))
@example("bücher.example")
def test_any_accepted_name_is_safe_ascii_and_stable(name):
    try:
        out = core.validate_host(name)
    except core.HostError:
        return
    assert out.isascii() and out == out.lower() and len(out) <= 253
    assert not any(c.isspace() or c in "#*:" for c in out)
    assert core.validate_host(out) == out


# -- the transform: property tests on generated hosts files ------------------------------------
_comment = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30).map(
    lambda t: "#" + t)
_entry = st.builds(lambda ip, names: f"{ip}\t{' '.join(names)}", st.sampled_from(["127.0.0.1", "::1", "0.0.0.0",
                   "10.0.0.1", "::"]), st.lists(st.from_regex(r"[a-z][a-z0-9.-]{0,15}", fullmatch=True), min_size=1,
                                                max_size=3))
_line = st.one_of(_comment, _entry, st.just(""), st.just("   "), st.text(max_size=20).filter(
    lambda t: "\n" not in t), st.just("0.0.0.0 chatgpt.com"), st.just(":: chatgpt.com"))


@st.composite
def hosts_files(draw) -> bytes:
    lines = draw(st.lists(_line, max_size=12))
    style = draw(st.sampled_from(["lf", "crlf", "mixed"]))
    out = b""
    for line in lines:
        eol = {"lf": b"\n", "crlf": b"\r\n"}.get(style) or draw(st.sampled_from([b"\n", b"\r\n"]))
        out += line.encode("utf-8", "surrogatepass") + eol
    if lines and draw(st.booleans()):
        out = out.rstrip(b"\r\n") if draw(st.booleans()) else out[:-1]  # no final newline, or a lone \r
    return out


any_file = st.one_of(hosts_files(), st.binary(max_size=200))
host_lists = st.lists(st.sampled_from(["chatgpt.com", "claude.ai", "gemini.google.com", "bücher.example",
                                       "www.perplexity.ai"]), min_size=1, max_size=4)
untils = st.one_of(st.none(), st.just(UNTIL), st.just(datetime(2030, 1, 1, tzinfo=timezone.utc)))


def _ours(text: bytes) -> bool:
    return core.BEGIN in text or core.END in text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_file, host_lists, st.booleans(), untils)
@example(b"", ["chatgpt.com"], False, None)
@example(b"127.0.0.1 localhost", ["chatgpt.com"], True, UNTIL)
@example(b"a\r\nb\r", ["chatgpt.com"], True, UNTIL)
@example(b"\r", ["chatgpt.com"], False, None)
def test_round_trip_is_byte_identical(text, hosts, www, until):
    assume(not _ours(text))
    blocked = core.apply_block(text, hosts, www, until)
    assert core.remove_block(blocked) == text
    assert core.apply_block(blocked, hosts, www, until) == blocked  # applying twice == once
    assert blocked.startswith(text)  # everything before the block is untouched
    eol = core.detect_eol(text)
    block = blocked[len(text):]
    if text and not text.endswith(b"\n"):
        assert block.startswith(eol)
        block = block[len(eol):]
    assert block.startswith(core.BEGIN) and block.endswith(core.END + eol)
    if eol == b"\r\n":
        assert block.count(b"\n") == block.count(b"\r\n")
    else:
        assert b"\r" not in block
    info = core.parse_block(blocked)
    assert info is not None and not info.problems
    assert list(info.hosts) == core.expand_hosts(core.validate_hosts(hosts), www)
    assert info.until == (until.replace(microsecond=0) if until else None)
    assert core.block_matches(blocked, hosts, www, until)


@settings(max_examples=200, deadline=None)
@given(any_file, host_lists, host_lists, st.booleans(), untils)
def test_reapplying_replaces_the_block_never_two(text, first, second, www, until):
    assume(not _ours(text))
    twice = core.apply_block(core.apply_block(text, first, True, None), second, www, until)
    assert twice == core.apply_block(text, second, www, until)
    assert twice.count(core.BEGIN) == 1 and twice.count(core.END) == 1
    assert core.remove_block(twice) == text


@settings(max_examples=200, deadline=None)
@given(any_file, hosts_files(), host_lists)
def test_lines_added_after_the_block_are_kept(text, later, hosts):
    assume(not _ours(text) and not _ours(later) and later)
    blocked = core.apply_block(text, hosts, False, UNTIL)
    edited = blocked + later
    removed = core.remove_block(edited)
    if text and not text.endswith(b"\n"):  # the line break we added now separates the user's lines
        assert removed == text + core.detect_eol(text) + later
    else:
        assert removed == text + later
    assert core.remove_block(core.apply_block(edited, hosts, False, UNTIL)) == removed


def test_block_format_and_line_endings():
    out = core.apply_block(b"127.0.0.1 localhost\r\n::1 localhost\r\n", ["ChatGPT.com"], True, UNTIL)
    assert out == (b"127.0.0.1 localhost\r\n::1 localhost\r\n"
                   b"# BEGIN killswitch block -- managed by killswitch, do not edit"
                   b" (until 2026-11-30T00:00:00+01:00)\r\n"
                   b"0.0.0.0 chatgpt.com\r\n:: chatgpt.com\r\n0.0.0.0 www.chatgpt.com\r\n:: www.chatgpt.com\r\n"
                   b"# END killswitch block\r\n")
    no_newline = core.apply_block(b"# mine", ["a.com"], False, None)
    assert no_newline.startswith(b"# mine\n# BEGIN") and b"(no end time; newline added above)" in no_newline
    assert core.remove_block(no_newline) == b"# mine"
    with pytest.raises(core.HostError, match="no hosts"):
        core.apply_block(b"", [], False, None)
    with pytest.raises(core.HostError, match=r"hosts\[1\]"):
        core.apply_block(b"", ["a.com", "1.2.3.4"], False, None)
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - a naive time is what this test feeds in
    with pytest.raises(ValueError, match="UTC offset"):
        core.apply_block(b"", ["a.com"], False, naive)


BLOCK = (b"# BEGIN killswitch block -- managed by killswitch, do not edit (until 2026-11-30T00:00:00+01:00)\n"
         b"0.0.0.0 chatgpt.com\n:: chatgpt.com\n")


@pytest.mark.parametrize("damaged, expected, problem", [
    # BEGIN without END: the marker and the entries right after it go, the user's lines stay
    (b"a\n" + BLOCK + b"# user\n127.0.0.1 mine\n", b"a\n# user\n127.0.0.1 mine\n", "without an END"),
    (b"a\n" + BLOCK, b"a\n", "without an END"),
    # END without BEGIN: only exact 0.0.0.0/:: pairs directly above it count as ours
    (b"0.0.0.0 ads.example\n0.0.0.0 x.com\n:: x.com\n# END killswitch block\nz\n", b"0.0.0.0 ads.example\nz\n",
     "without a BEGIN"),
    # a foreign line inside the block is kept
    (b"a\n" + BLOCK + b"10.0.0.1 mine\n# END killswitch block\n", b"a\n10.0.0.1 mine\n", "not ours"),
    # repeated markers: two blocks, and BEGIN BEGIN END
    (b"a\n" + BLOCK + b"# END killswitch block\nb\n" + BLOCK + b"# END killswitch block\n", b"a\nb\n", "2 blocks"),
    (b"a\n" + BLOCK + BLOCK + b"# END killswitch block\n", b"a\n", "without an END"),
    (b"# END killswitch block\n# END killswitch block\n", b"", "without a BEGIN"),
])
def test_damaged_blocks_remove_only_what_is_ours_and_report(damaged, expected, problem):
    report = core.remove_block_report(damaged)
    assert report.text == expected
    assert any(problem in p for p in report.problems), report.problems
    assert core.parse_block(damaged).problems
    fixed = core.apply_block(damaged, ["claude.ai"], False, UNTIL)
    assert fixed.startswith(expected) and fixed.count(core.BEGIN) == 1 and fixed.count(core.END) == 1
    assert not core.block_matches(damaged, ["chatgpt.com"], False, UNTIL)


def test_block_matches_detects_edits():
    good = core.apply_block(b"x\n", ["a.com", "b.com"], True, UNTIL)
    assert core.block_matches(good, ["a.com", "b.com"], True, UNTIL)
    assert core.block_matches(good + b"127.0.0.1 later\n", ["a.com", "b.com"], True, UNTIL)
    assert not core.block_matches(good.replace(b":: b.com\n", b""), ["a.com", "b.com"], True, UNTIL)
    assert not core.block_matches(good, ["a.com"], True, UNTIL)
    assert not core.block_matches(good, ["a.com", "b.com"], True, UNTIL + timedelta(hours=1))
    assert not core.block_matches(b"x\n", ["a.com"], True, UNTIL)
    assert core.parse_block(b"x\n# just a comment\n") is None


# -- the writer --------------------------------------------------------------------------------
def test_write_keeps_mode_owner_and_selinux_label_and_a_backup(tmp_path):
    path = tmp_path / "etc" / "hosts"
    path.parent.mkdir()
    path.write_bytes(b"127.0.0.1 localhost\n")
    os.chmod(path, 0o640)
    os.chown(path, 4321, 4322)
    label = b"system_u:object_r:net_conf_t:s0\x00"
    os.setxattr(path, "security.selinux", label)
    inode = path.stat().st_ino
    result = writer.apply(path, ["chatgpt.com"], False, UNTIL, backup_dir=tmp_path / "state")
    assert result.changed and result.method == "rename"
    st_ = path.stat()
    assert st_.st_ino != inode  # really replaced by rename
    assert (stat.S_IMODE(st_.st_mode), st_.st_uid, st_.st_gid) == (0o640, 4321, 4322)
    assert os.getxattr(path, "security.selinux") == label
    assert (tmp_path / "state" / writer.BACKUP_NAME).read_bytes() == b"127.0.0.1 localhost\n"
    assert writer.apply(path, ["chatgpt.com"], False, UNTIL).changed is False
    cleared = writer.clear(path, backup_dir=tmp_path / "state")
    assert cleared.changed and path.read_bytes() == b"127.0.0.1 localhost\n"
    assert writer.clear(path).changed is False
    assert sorted(p.name for p in path.parent.iterdir()) == ["hosts"]  # no temp files left


def test_a_label_that_cannot_be_copied_means_writing_in_place(tmp_path, monkeypatch):
    path = tmp_path / "hosts"
    path.write_bytes(b"127.0.0.1 localhost\n")
    os.setxattr(path, "security.selinux", b"system_u:object_r:net_conf_t:s0\x00")
    inode = path.stat().st_ino

    def refuse(*args):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refuse)
    result = writer.write_hosts(path, b"127.0.0.1 localhost\n0.0.0.0 a.com\n", None)
    assert result.method == "in-place" and path.stat().st_ino == inode
    assert path.read_bytes() == b"127.0.0.1 localhost\n0.0.0.0 a.com\n"
    writer.write_hosts(path, b"short", None)  # shrinking in place truncates
    assert path.read_bytes() == b"short"


def test_verification_failure_is_an_error(tmp_path, monkeypatch):
    path = tmp_path / "hosts"
    path.write_bytes(b"x\n")
    monkeypatch.setattr(writer, "read_hosts", lambda p: b"something else")
    with pytest.raises(writer.HostsWriteError, match="does not read back"):
        writer.write_hosts(path, b"y\n", None)


WRITER = textwrap.dedent("""
    import sys
    from killswitch.platform import hosts_writer as w
    path, mode, old, new = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode()
    print("ready", flush=True)
    while True:
        for data in (new, old):
            if mode == "rename":
                w.write_hosts(path, data, None, flush=False)
            else:
                w._write_in_place(w.Path(path), data)
""")


@pytest.mark.parametrize("mode", ["rename", "in-place"])
def test_kill_9_during_a_write_leaves_the_old_or_the_new_file(tmp_path, mode):
    path = tmp_path / "hosts"
    old = ("127.0.0.1 localhost\n" + "# a comment line\n" * 300).encode()
    new = core.apply_block(old, [f"host{i}.example" for i in range(400)], True, UNTIL)
    path.write_bytes(old)
    rng = random.Random(4)
    seen = set()
    for _ in range(25):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode, old.decode(), new.decode()],
                                cwd=ROOT, stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.kill()
        proc.wait()
        data = path.read_bytes()
        if mode == "in-place" and data not in (old, new):
            # a write can stop between pages: in place, that leaves the old file plus part of the
            # appended block, which removing the block undoes (at worst a cut-off comment remains)
            assert data.startswith(old) and new.startswith(data), data[-80:]
            rest = core.remove_block(data)[len(old):]
            assert rest == b"" or (b"\n" not in rest and new[len(old):].startswith(rest)), rest
            data = old
        assert data in (old, new), f"torn file of {len(data)} bytes"
        seen.add(data)
        if mode == "rename":  # the next write removes temp files of killed writers
            writer.write_hosts(path, data, None, flush=False)
            assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"]
    assert seen == {old, new}  # the kills landed on both sides of a write


# -- the helper ------------------------------------------------------------------------------
@pytest.fixture
def helper(tmp_path):
    path = tmp_path / "hosts"
    path.write_bytes(b"127.0.0.1 localhost\n# my line, no final newline")
    return hosts_helper.Helper(path, tmp_path / "state")


NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def test_helper_apply_records_state_and_check_keeps_it(helper):
    original = helper.hosts_file.read_bytes()
    out = helper.apply(["chatgpt.com", "Claude.ai"], True, UNTIL, now=NOW)
    assert out.action == "applied" and out.method == "rename"
    state = json.loads(helper.state_file.read_text())
    assert state["hosts"] == ["chatgpt.com", "claude.ai"] and state["until"] == "2026-11-30T00:00:00+01:00"
    assert stat.S_IMODE(helper.state_file.stat().st_mode) == 0o644
    assert helper.check(now=NOW).action == "active"
    assert helper.apply(["chatgpt.com", "claude.ai"], True, UNTIL, now=NOW).action == "unchanged"
    assert helper.clear(now=NOW).action == "cleared"
    assert helper.hosts_file.read_bytes() == original and not helper.state_file.exists()
    kinds = [(e["event"], e.get("early")) for e in helper.events()]
    assert kinds == [("apply", None), ("apply", None), ("clear", True)]  # cleared before its end


def test_check_lifts_an_ended_block_even_much_later(helper):
    original = helper.hosts_file.read_bytes()
    helper.apply(["chatgpt.com"], False, UNTIL, now=NOW)
    assert helper.check(now=UNTIL - timedelta(seconds=1)).action == "active"
    assert helper.check(now=UNTIL + timedelta(days=3)).action == "lifted"  # slept through the end
    assert helper.hosts_file.read_bytes() == original and not helper.state_file.exists()
    assert helper.events()[-1]["event"] == "lift"
    assert helper.check(now=UNTIL + timedelta(days=3)).action == "idle"


@pytest.mark.parametrize("edit, what", [
    (lambda t: core.remove_block(t), "block missing"),
    (lambda t: t.replace(b"0.0.0.0 chatgpt.com\n", b""), "block edited"),
    (lambda t: t.replace(b"# END killswitch block\n", b""), "block edited"),
    (lambda t: t + b"0.0.0.0 x.com\n:: x.com\n# END killswitch block\n", "block edited"),
])
def test_check_reapplies_a_tampered_block_and_records_it(helper, edit, what):
    helper.apply(["chatgpt.com", "claude.ai"], False, UNTIL, now=NOW)
    good = helper.hosts_file.read_bytes()
    helper.hosts_file.write_bytes(edit(good))
    out = helper.check(now=NOW)
    assert (out.action, out.message) == ("reapplied", f"{what}; written again")
    assert core.block_matches(helper.hosts_file.read_bytes(), ["chatgpt.com", "claude.ai"], False, UNTIL)
    assert core.remove_block(helper.hosts_file.read_bytes()) == core.remove_block(good)
    assert [t["what"] for t in json.loads(helper.state_file.read_text())["tamper"]] == [what]
    assert helper.events()[-1]["event"] == "tamper"
    assert helper.check(now=NOW).action == "active"


def test_check_fails_open_without_a_usable_state(helper):
    original = helper.hosts_file.read_bytes()
    helper.apply(["chatgpt.com"], False, UNTIL, now=NOW)
    helper.state_file.unlink()  # state lost: the block must not stay forever
    assert helper.check(now=NOW).action == "lifted-stale"
    assert helper.hosts_file.read_bytes() == original
    helper.apply(["chatgpt.com"], False, UNTIL, now=NOW)
    helper.state_file.write_text("{not json")
    assert helper.check(now=NOW).action == "lifted-stale"
    assert helper.hosts_file.read_bytes() == original
    assert (helper.state_dir / "hosts-block.json.unreadable").exists()
    assert [e["event"] for e in helper.events()]== ["apply", "lift-stale", "apply", "state-unreadable", "lift-stale"]


def test_helper_refuses_bad_input_and_changes_nothing(helper):
    original = helper.hosts_file.read_bytes()
    with pytest.raises(core.HostError, match=r"hosts\[1\] 'bad host'"):
        helper.apply(["ok.com", "bad host"], False, UNTIL, now=NOW)
    with pytest.raises(hosts_helper.HelperError, match="already past"):
        helper.apply(["ok.com"], False, NOW - timedelta(seconds=1), now=NOW)
    import socket

    with pytest.raises(core.HostError, match="system itself"):
        helper.apply([socket.gethostname()], False, UNTIL, now=NOW)
    assert helper.hosts_file.read_bytes() == original and not helper.state_file.exists()


def test_helper_command_line_and_sudo_restrictions(tmp_path):
    path, state = tmp_path / "hosts", tmp_path / "state"
    path.write_bytes(b"127.0.0.1 localhost\n")
    common = ["--hosts-file", str(path), "--state-dir", str(state)]
    run = helper_cmd(*common, "apply", "--until", "2030-01-01T00:00:00+00:00", "--www", "chatgpt.com")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("applied:") and b"0.0.0.0 www.chatgpt.com" in path.read_bytes()
    status = json.loads(helper_cmd(*common, "status").stdout)
    assert status["active"] and status["hosts"] == ["chatgpt.com"] and status["include_www"]
    assert helper_cmd(*common, "check", "--now", "2029-12-31T23:59:00+00:00").stdout.startswith("active")
    # through sudo (SUDO_UID of a user), only the system files and the real clock are allowed
    for extra in (common, ["--state-dir", str(state)]):
        refused = helper_cmd(*extra, "clear", env={"SUDO_UID": "1000", "SUDO_USER": "someone"})
        assert refused.returncode == 2 and "cannot be used through sudo" in refused.stderr
    assert helper_cmd("check", "--now", "2031-01-01", env={"SUDO_UID": "1000"}).returncode == 2
    bad = helper_cmd(*common, "apply", "--until", "2030-01-01T00:00:00+00:00", "good.com", "a#b")
    assert bad.returncode == 2 and "hosts[1] 'a#b'" in bad.stderr
    assert helper_cmd(*common, "check", "--now", "2030-01-01T00:00:00+00:00").stdout.startswith("lifted")
    assert path.read_bytes() == b"127.0.0.1 localhost\n"


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_apply_show_clear_on_a_hosts_file(home, tmp_path):
    path, state = tmp_path / "hosts", tmp_path / "state"
    original = b"127.0.0.1\tlocalhost\r\n# comment \xc3\xa9\r\n"
    path.write_bytes(original)
    run = ks("hosts", "apply", "--hosts-file", str(path), "--state-dir", str(state),
             "--until", "2030-01-01T00:00:00+01:00", "chatgpt.com", "bücher.example")
    assert run.returncode == 0, run.stderr
    assert "blocking 2 host(s)" in run.stdout and "DNS-over-HTTPS" in run.stdout
    assert b"0.0.0.0 xn--bcher-kva.example\r\n" in path.read_bytes()
    shown = ks("hosts", "show", "--hosts-file", str(path))
    assert "blocks 2 host(s) until 2030-01-01T00:00:00+01:00" in shown.stdout and "chatgpt.com" in shown.stdout
    assert json.loads(ks("hosts", "show", "--hosts-file", str(path), "--json").stdout)["hosts"] == [
        "chatgpt.com", "xn--bcher-kva.example"]
    cleared = ks("hosts", "clear", "--hosts-file", str(path), "--state-dir", str(state))
    assert cleared.returncode == 0 and "block removed" in cleared.stdout
    assert path.read_bytes() == original
    assert "No killswitch block" in ks("hosts", "show", "--hosts-file", str(path)).stdout


def test_cli_refuses_bad_names_and_times_changing_nothing(home, tmp_path):
    path = tmp_path / "hosts"
    path.write_bytes(b"127.0.0.1 localhost\n")
    for args, message in ((["ok.com", "chat gpt.com"], "hosts[1] 'chat gpt.com': contains a space"),
                          (["localhost"], "hosts[0] 'localhost'"), (["192.168.1.1"], "IP address"),
                          (["--until", "tomorrow", "ok.com"], "Invalid isoformat"),
                          (["--until", "2001-01-01T00:00:00+00:00", "ok.com"], "already past")):
        run = ks("hosts", "apply", "--hosts-file", str(path), *args)
        assert run.returncode == 2, (args, run.stderr)
        assert message in run.stderr and run.stderr.startswith("killswitch: ")
    assert path.read_bytes() == b"127.0.0.1 localhost\n"
    assert not (home.state_dir / "hosts" / "hosts-block.json").exists()


def test_cli_takes_hosts_and_www_from_the_config(home, tmp_path):
    path = tmp_path / "hosts"
    path.write_bytes(b"")
    write_config(home, '[offday]\nhosts = ["chatgpt.com", "claude.ai"]\ninclude_www = true\n')
    run = ks("hosts", "apply", "--hosts-file", str(path))
    assert run.returncode == 0, run.stderr
    assert core.parse_block(path.read_bytes()).hosts == ("chatgpt.com", "www.chatgpt.com", "claude.ai",
                                                         "www.claude.ai")
    assert (home.state_dir / "hosts" / "hosts-block.json").exists()  # the user's state dir by default
    assert ks("hosts", "apply", "--hosts-file", str(path), "--no-www", "x.org").returncode == 0
    assert core.parse_block(path.read_bytes()).hosts == ("x.org",)
    write_config(home, '[offday]\nhosts = ["chatgpt.com", "bad host"]\n')
    run = ks("hosts", "apply", "--hosts-file", str(path))
    assert run.returncode == 2 and "hosts[1] 'bad host'" in run.stderr
    write_config(home, "[offday]\nhosts = [\n")
    run = ks("hosts", "apply", "--hosts-file", str(path))
    assert run.returncode == 2 and "config.toml" in run.stderr
    write_config(home, "")
    run = ks("hosts", "apply", "--hosts-file", str(path))
    assert run.returncode == 2 and "[offday] hosts" in run.stderr
    assert core.parse_block(path.read_bytes()).hosts == ("x.org",)


# -- installing the helper -----------------------------------------------------------------------
def test_helper_install_dry_run_then_real_then_uninstall(tmp_path):
    root = tmp_path / "root"
    dry = ks("helper", "install", "--root", str(root), "--user", "root", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would write" in dry.stdout and not root.exists()
    real = ks("helper", "install", "--root", str(root), "--user", "root")
    assert real.returncode == 0, real.stderr
    expected = {
        "usr/local/sbin/killswitch-hosts-helper": 0o755, "etc/sudoers.d/killswitch-hosts": 0o440,
        "etc/systemd/system/killswitch-hosts.service": 0o644, "etc/systemd/system/killswitch-hosts.timer": 0o644,
        "etc/systemd/system/killswitch-hosts-resume.service": 0o644,
        "var/lib/killswitch/helper-files.json": 0o644,
        **{f"usr/local/lib/killswitch-helper/killswitch/{m}": 0o644 for m in helper_install.HELPER_MODULES},
    }
    found = {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}
    assert found == expected
    assert all(p.stat().st_uid == 0 for p in root.rglob("*"))
    assert stat.S_IMODE((root / "var/lib/killswitch").stat().st_mode) == 0o755
    sudoers = (root / "etc/sudoers.d/killswitch-hosts").read_text()
    assert "root ALL=(root) NOPASSWD: /usr/local/sbin/killswitch-hosts-helper apply *," in sudoers
    assert "@" not in sudoers.replace("@USER", "")  # every placeholder filled
    launcher = (root / "usr/local/sbin/killswitch-hosts-helper").read_text()
    assert launcher.startswith("#!/") and " -I\n" in launcher.splitlines()[0] + "\n"
    assert 'sys.path.insert(0, "/usr/local/lib/killswitch-helper")' in launcher
    timer = (root / "etc/systemd/system/killswitch-hosts.timer").read_text()
    assert "OnCalendar=*-*-* *:*:00" in timer and "OnBootSec=" in timer
    assert "ExecStart=/usr/local/sbin/killswitch-hosts-helper check" in (
        root / "etc/systemd/system/killswitch-hosts.service").read_text()
    # the copied helper runs on its own: standard library plus the copy, nothing from this checkout
    lib = root / "usr/local/lib/killswitch-helper"
    hosts = tmp_path / "hosts"
    hosts.write_bytes(b"127.0.0.1 localhost\n")
    code = (f"import sys; sys.path.insert(0, {str(lib)!r}); import killswitch.helper.root as h; "
            f"assert h.__file__.startswith({str(lib)!r}), h.__file__; sys.exit(h.main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-I", "-c", code, "--hosts-file", str(hosts), "--state-dir",
                          str(tmp_path / "st"), "apply", "--until", "2030-01-01T00:00:00+00:00", "chatgpt.com"],
                         capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    assert b"0.0.0.0 chatgpt.com" in hosts.read_bytes()
    # uninstall lifts the block first (fail open), then removes every file
    out = ks("helper", "uninstall", "--root", str(root), "--hosts-file", str(hosts), "--state-dir",
             str(tmp_path / "st"))
    assert out.returncode == 0, out.stderr
    assert hosts.read_bytes() == b"127.0.0.1 localhost\n"
    assert [p for p in root.rglob("*") if p.is_file()] == []


def test_helper_status_says_why_blocking_is_unavailable(tmp_path):
    state, reason = helper_client.availability(tmp_path)  # nothing installed under this root
    assert state == "warn" and "timer is not installed" in reason  # as root: writable, but no timer
    run = ks("helper", "status", "--root", str(tmp_path), "--state-dir", str(tmp_path / "st"))
    assert run.returncode == 0 and "Hosts blocking: available, with a caveat" in run.stdout
    as_nobody = ("import os, sys, pathlib\nfrom killswitch.helper import client as hb\n"
                 "from killswitch.cli import main\n"
                 # what the calls below import, loaded while this interpreter's files are still readable
                 "import argparse, killswitch.helper.root, killswitch.helper.install, killswitch.cli.hosts\n"
                 "os.setgid(65534)\nos.setuid(65534)\n"
                 "print(hb.availability(pathlib.Path(sys.argv[1])))\nb = hb.client_backend()\n"
                 "print(b.available, b.reason)\nsys.exit(main(['helper', 'install']))\n")
    nobody = subprocess.run([sys.executable, "-c", as_nobody, str(tmp_path)], capture_output=True, text=True,
                            cwd=ROOT)
    assert "'unavailable'" in nobody.stdout and "sudo killswitch helper install" in nobody.stdout, nobody.stderr
    assert "\nFalse " in nobody.stdout  # the app's backend says hosts blocking is unavailable, and why
    assert helper_client.client_backend(tmp_path / "hosts") is None  # another file: the app writes it itself
    assert nobody.returncode == 2 and "needs root: sudo killswitch helper install" in nobody.stderr


# -- /etc/hosts for real, in a private mount namespace --------------------------------------------
NAMESPACE_CHILD = textwrap.dedent("""
    import json, subprocess, sys
    fake, state = sys.argv[1], sys.argv[2]
    subprocess.run(["mount", "--bind", fake, "/etc/hosts"], check=True)
    def getent():
        r = subprocess.run(["getent", "hosts", "blocked.example"], capture_output=True, text=True)
        return [r.returncode, r.stdout.split()]
    def ks(*args):
        r = subprocess.run([sys.executable, "-m", "killswitch", "hosts", *args], capture_output=True,
                           text=True)
        return [r.returncode, r.stdout, r.stderr]
    out = {"before": getent()}
    out["apply"] = ks("apply", "--hosts-file", "/etc/hosts", "--state-dir", state, "--until",
                      "2099-01-01T00:00:00+00:00", "blocked.example")
    out["during"] = getent()
    out["other"] = subprocess.run(["getent", "hosts", "localhost"], capture_output=True, text=True).returncode
    out["clear"] = ks("clear", "--hosts-file", "/etc/hosts", "--state-dir", state)
    out["after"] = getent()
    # the app's side as root: the same helper logic in-process, recording its state
    from killswitch.helper import root as hh
    from killswitch.helper import client as helper_client
    hh.STATE_DIR = hh.Path(state) / "app"
    backend = helper_client.client_backend()
    out["backend"] = [backend.available, backend.apply(["blocked.example"], True, None), getent(),
                      (hh.STATE_DIR / "hosts-block.json").exists(), backend.clear(), getent()]
    print(json.dumps(out))
""")


def test_bind_mounted_etc_hosts_in_a_private_namespace_is_written_in_place(tmp_path):
    assert os.geteuid() == 0, "CI runs as root; this test needs it"
    real_before = Path("/etc/hosts").read_bytes()
    fake = tmp_path / "hosts"
    original = b"127.0.0.1 localhost\n::1 localhost ip6-localhost\n# no final newline here"
    fake.write_bytes(original)
    run = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", NAMESPACE_CHILD,
                          str(fake), str(tmp_path / "state")], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["before"][0] == 2  # not found
    assert out["apply"][0] == 0, out["apply"]
    assert "(in-place write)" in out["apply"][1]  # rename over a mount point: EBUSY, so in place
    assert out["during"][0] == 0 and out["during"][1][0] in ("0.0.0.0", "::")
    assert out["during"][1][1] == "blocked.example"
    assert out["other"] == 0
    assert out["clear"][0] == 0 and "(in-place write)" in out["clear"][1]
    assert out["after"][0] == 2
    available, applied, during, recorded, cleared, after = out["backend"]
    assert available and "in-place write" in applied and during[0] == 0 and recorded
    assert "block removed" in cleared and after[0] == 2
    assert fake.read_bytes() == original  # the bind-mounted file got the writes, and is back to its bytes
    assert Path("/etc/hosts").read_bytes() == real_before  # the real one was never touched
    events = [json.loads(line)["event"]
              for line in (tmp_path / "state" / "hosts-events.jsonl").read_text().splitlines()]
    assert events == ["apply", "clear"]


def test_helper_status_checks_the_installed_copy_against_the_recorded_hashes(tmp_path):
    root = tmp_path / "root"
    assert ks("helper", "install", "--root", str(root), "--user", "root").returncode == 0
    record = json.loads((root / "var/lib/killswitch/helper-files.json").read_text())
    assert "/usr/local/sbin/killswitch-hosts-helper" in record["files"] and record["installed_by"]
    ok = ks("helper", "status", "--root", str(root), "--state-dir", str(tmp_path / "st"))
    assert ok.returncode == 0 and "matches the hashes" in ok.stdout, ok.stderr
    # Someone edits the root-owned copy (here: this test, as root): status says so and exits 1.
    copied = root / "usr/local/lib/killswitch-helper/killswitch/helper/root.py"
    copied.write_text(copied.read_text() + "\n# an edit\n")
    bad = ks("helper", "status", "--root", str(root), "--state-dir", str(tmp_path / "st"), "--json")
    report = json.loads(bad.stdout)
    assert bad.returncode == 1 and report["integrity"] == "changed"
    assert any("root.py differs" in p for p in report["integrity_problems"])
    copied.chmod(0o666)
    text = ks("helper", "status", "--root", str(root), "--state-dir", str(tmp_path / "st"))
    assert text.returncode == 1 and "not root's alone" in text.stderr and "mode 0666" in text.stderr
    assert ks("helper", "uninstall", "--root", str(root)).returncode == 0
    assert not (root / "var/lib/killswitch/helper-files.json").exists()
