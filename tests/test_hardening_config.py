"""A hostile config.toml, as an attacker would write it: every refusal says what and where, and
nothing hangs, crashes or changes.

1. cmdline patterns are matched by RE2 (linear time): hostile patterns are refused at once or
   matched in bounded time, Python-only syntax is refused naming the construct, the file and line.
2. The file is bounded (size, nesting, dotted keys, rules, pattern size): `stop` still writes the
   flag, `rules` exits 2, `serve` keeps running and says what is wrong.
3. `[offday] hosts` are checked when the config is loaded, with the line of the bad name.

Everything runs on real files in the test's private home and through the real CLI with timeouts;
the time bounds are subprocess timeouts, generous on purpose (the old engine took 47 s to hours).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from killswitch.core import config, rules, schedule
from killswitch.core.rules import RuleError, compile_safe_regex, make_rule
from tests.helpers.processes import write_config
from tests.helpers.waiting import wait_for, wait_state
from tests.test_layers import HEAVY, STOP_BUDGET, STOP_MODULES, heavy, loaded_by_cli, ours

UTC = dt.timezone.utc


def ks(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    """The real CLI in its own process. A hang fails the test through the timeout."""
    return subprocess.run([sys.executable, "-m", "killswitch", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def rule(pattern: str, name: str = "hostile") -> str:
    return f"[[rules]]\nname = {json.dumps(name)}\ncmdline = {json.dumps(pattern)}\n"


def hostile_agent(agents):
    """A real process whose searched command line (its first 1024 characters) is the marker, ~900
    "a" and a "!": the strings that make a backtracking engine explode."""
    head = f"{sys.executable} -c import time; [time.sleep(0.05) for _ in iter(int, 1)]  # {agents.marker} "
    tail = "a" * (1024 - len(head) - 40) + "!"
    return agents.spawn(head.split(" -c ", 1)[1] + tail)


# ---------------------------------------------------------------------- 1. RE2: linear time
REFUSED_AT_ONCE = "refused"
MATCHES, NO_MATCH, ANY = "match", "no-match", "any"
HOSTILE = [
    # The issue's own pattern, and others the old checks timed or guessed at; {m} is the marker.
    ("(x{1,30}){1,30}y", REFUSED_AT_ONCE),
    ("{m} (x{1,30}){1,30}y", REFUSED_AT_ONCE),
    ("(a+)+$", ANY),
    ("{m} (a+)+$", NO_MATCH),
    ("{m} (a+)+!", MATCHES),
    ("(a|aa)*b", ANY),
    ("{m} (a|aa)*b", NO_MATCH),
    ("a.*a.*a.*b", ANY),
    ("{m} a.*a.*a.*!b", NO_MATCH),
    ("{m} a.*a.*a.*!", MATCHES),
    ("(.*a){20}", ANY),
    ("{m} (.*a){20}!", MATCHES),
    ("(a|ab)*c", ANY),
    ("(x+x+)+y", ANY),
    (r"(\w+\s?)*$", REFUSED_AT_ONCE),  # matches the empty string: every process
]


@pytest.mark.parametrize("template, expected", HOSTILE)
def test_hostile_patterns_are_refused_at_once_or_matched_in_bounded_time(home, agents, template, expected):
    victim = hostile_agent(agents)
    pattern = template.replace("{m}", agents.marker)
    path = write_config(home, "# hostile\n" + rule(pattern))
    listed = ks("rules", "--json", timeout=5)  # the old engine: 47 s to forever on this process
    assert "Traceback" not in listed.stderr, listed.stderr
    if expected == REFUSED_AT_ONCE:
        assert listed.returncode == 2 and listed.stdout == ""
        assert f"{path}:4: rules[0]: cmdline pattern" in listed.stderr and "refused" in listed.stderr
        return
    assert listed.returncode in (0, 2), listed.stderr  # 2: it also matches something protected
    (shown,) = json.loads(listed.stdout)["rules"]
    assert shown["cmdline"] == pattern
    matched = victim.pid in [m["pid"] for m in shown["matches"]]
    if expected != ANY:
        assert matched == (expected == MATCHES), shown


def test_a_cold_stop_freezes_what_a_hostile_pattern_matches_at_once(home, agents):
    victim = hostile_agent(agents)
    write_config(home, rule(f"{agents.marker} (a+)+!"))
    stopped = ks("stop", "--json", timeout=5)
    assert stopped.returncode == 0, stopped.stderr
    assert [p["pid"] for p in json.loads(stopped.stdout)["suspended"]] == [victim.pid]
    assert wait_state(victim.pid, "T") == "T"


@pytest.mark.parametrize("pattern, words", [
    (r"(a)\1", r"the back-reference \1 at character 4"),
    (r"(?P<n>ab)(?P=n)", "named back-reference (?P=name)"),
    ("(?=claude)c", "look-ahead (?=...)"),
    ("(?!claude)c", "negative look-ahead (?!...)"),
    ("(?<=/)claude", "look-behind (?<=...)"),
    ("(?<!x)claude", "negative look-behind (?<!...)"),
    ("(?>claude)", "atomic group (?>...)"),
    ("clau++de", "possessive repeat '++'"),
    ("(c)?(?(1)laude|odex)", "conditional group"),
    ("(?x) claude  # the agent", "verbose mode (?x)"),
    ("(?#agents)claude", "comment group (?#...)"),
    ("claude{,3}", "write {0,3}"),
    (r"claude\Z", r"RE2 writes it \z"),
    (r"\u263a", r"\x{263A}"),
    ("(x{1,1000}){1,1000}", "a counted repeat may be at most 1000"),
    ("(", "not a valid regular expression (RE2 syntax): missing )"),
    (".*", "matches an empty command line"),
    ("x|", "matches an empty command line"),
    (".{1,500}x", f"more than {rules.MAX_PROGRAM}"),
])
def test_what_re2_cannot_do_is_refused_naming_the_construct_the_file_and_the_line(home, pattern, words):
    text = rule("claude", "fine") + "\n" + rule(pattern, "bad")
    path = write_config(home, text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:7: rules[1]: "), message
    assert words in message, message
    assert path.read_text() == text
    listed = ks("rules")
    assert listed.returncode == 2 and f"{path}:7: rules[1]" in listed.stderr and words in listed.stderr
    assert "Traceback" not in listed.stderr and "re2.cc" not in listed.stderr  # RE2 logs nothing itself


def test_re2_keeps_case_sensitivity_and_search_semantics():
    def hit(pattern: str, cmdline: str) -> bool:
        return make_rule({"cmdline": pattern}, 0).matches("x", "x", cmdline, None)

    assert hit("claude", "/usr/bin/node /opt/claude --resume")  # searched, not anchored
    assert not hit("Claude", "/usr/bin/claude") and hit("(?i)Claude", "/usr/bin/CLAUDE")
    assert hit("^node ", "node x.js") and not hit("^node ", "/usr/bin/node x.js")
    assert hit("codex$", "npx codex") and not hit("codex$", "npx codex --full-auto")
    assert hit(r"(^|/)aider( |$)", "/home/u/.local/bin/aider --model x") and not hit(r"(^|/)aider( |$)", "raider")
    assert hit(r"python[0-9.]* -m aider", "python3.11 -m aider")
    assert hit("bücher-agent", "/opt/bücher-agent run")  # text is UTF-8 for RE2, positions are not bytes
    assert hit(r"\Q{,5}\E", "literal {,5}") and hit("[{,5}]x", ",x")
    assert hit("needle", "a" * 1000 + "needle") and not hit("needle", "a" * 1020 + "needle")  # first 1024 only
    assert hit("needle", "ü" * 1018 + "needle") and not hit("needle", "ü" * 1019 + "needle")  # characters, not bytes
    # Any program can put bytes that are not UTF-8 in its argv (psutil passes them as surrogate escapes).
    assert hit("claude", "/bin/claude \udcff\udcfe") and not hit("claude", "\udcff" * 2000)
    assert compile_safe_regex("claude|codex").search("codex") is not None


def test_patterns_that_were_refused_by_guesswork_are_now_fine_and_fast():
    # The old heuristics refused these as possibly slow; RE2 matches them in linear time.
    for pattern in ("(a+)+$", "(a|ab)*c", "a.*b.*c", "(ab|cd)+", r"node .*/codex\.js", "[a-z]+-agent"):
        assert compile_safe_regex(pattern).programsize <= rules.MAX_PROGRAM
    with pytest.raises(RuleError, match="longer than 512"):
        compile_safe_regex("x" * 513)


def test_a_cold_stop_loads_re2_only_when_a_rule_has_a_cmdline(home):
    write_config(home, '[[rules]]\nprocess = "no-such-agent-here"\n[[rules]]\nenv = "NO_SUCH_AGENT_VAR=1"\n')
    modules = loaded_by_cli(home, ["stop"])
    assert not [m for m in modules if m.split(".")[0] == "re2"], "re2 loaded without a cmdline rule"
    write_config(home, rule("no-such-agent-here-[0-9]+"))
    modules = loaded_by_cli(home, ["stop"])
    assert {"re2", "re2._re2"} <= set(modules)
    assert ours(modules) <= STOP_MODULES, ours(modules) - STOP_MODULES
    assert not heavy(modules, HEAVY), heavy(modules, HEAVY)
    assert len(modules) <= STOP_BUDGET, len(modules)


# ---------------------------------------------------------------------- 2. the file is bounded
def nested_arrays(n: int) -> str:
    return "a = " + "[" * n + "]" * n + "\n"


def nested_tables(n: int) -> str:
    return "a = " + "{b = " * n + "1" + "}" * n + "\n"


def many_rules(n: int) -> str:
    return "".join(f'[[rules]]\nname = "r{i}"\nprocess = "no-such-agent-{i}"\n' for i in range(n))


BIG = many_rules(150_000)  # 6.8 MB: 20 s of freezing delay before the bound
HOSTILE_FILES = {
    "20000 nested arrays": ("# top\n" + nested_arrays(20_000), 2, "nested more than 32 deep"),
    "5000 nested inline tables": ("# top\n\n" + nested_tables(5_000), 3, "nested more than 32 deep"),
    "150000 rules": (BIG, BIG[: config.MAX_BYTES].count("\n") + 1, "larger than 256 KiB"),
    "257 rules": (many_rules(257), 3 * 256 + 1, "257 rules; at most 256"),
    "a 20000-part dotted key": ("\n" + ".".join(["a"] * 20_000) + " = 1\n", 2, "more than 32 parts"),
    "a 20000-part table header": ("[" + ".".join(['"a"'] * 20_000) + "]\n", 1, "more than 32 parts"),
}


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_hostile_files_are_refused_with_the_line(home, name):
    text, line, words = HOSTILE_FILES[name]
    path = write_config(home, text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path)
    assert str(caught.value).startswith(f"{path}:{line}: ") and words in str(caught.value), str(caught.value)[:300]
    assert path.read_text() == text


@pytest.mark.parametrize("name", ["20000 nested arrays", "5000 nested inline tables", "150000 rules"])
def test_stop_and_rules_on_a_hostile_file_refuse_it_and_the_stop_still_holds(home, name):
    text, line, words = HOSTILE_FILES[name]
    path = write_config(home, text)
    stopped = ks("stop", timeout=5)
    assert stopped.returncode == 1 and home.flag.exists(), stopped.stderr
    assert f"process rules not applied: {path}:{line}: " in stopped.stderr and words in stopped.stderr
    assert "Traceback" not in stopped.stderr
    listed = ks("rules", timeout=5)
    assert listed.returncode == 2 and f"{path}:{line}: " in listed.stderr and words in listed.stderr
    assert "Traceback" not in listed.stderr
    assert path.read_text() == text


def test_serve_keeps_running_on_a_hostile_file_and_says_what_is_wrong(home):
    path = write_config(home, "# top\n" + nested_arrays(20_000))
    server = subprocess.Popen([sys.executable, "-m", "killswitch", "serve", "--refresh", "0.2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(server.stderr), daemon=True)
    reader.start()
    try:
        wait_for(home.socket_file.exists, timeout=20, message=lambda: f"the engine's socket; stderr: {errors}")
        wait_for(lambda: any(f"{path}:2: arrays and inline tables are nested" in e for e in errors), timeout=10,
                 message=lambda: f"the problem on stderr; got {errors}")
        assert server.poll() is None
        stopped = ks("stop", "--json", timeout=5)  # answered by the running engine: it is alive, not hung
        reply = json.loads(stopped.stdout)
        assert stopped.returncode == 1 and reply["flag_written"]
        assert any(f"{path}:2: " in e for e in reply["errors"]), reply
        assert json.loads(home.flag.read_text())["pid"] == server.pid
        assert server.poll() is None
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        reader.join(timeout=5)
    assert not any("Traceback" in e for e in errors), errors


def test_the_largest_allowed_file_of_the_worst_shape_reads_in_bounded_time(home):
    # 256 KiB of one-element arrays: the most tokens per byte. Reading it is measured in tenths of a second.
    body = "a = [" + "[1]," * ((config.MAX_BYTES - 40) // 4) + "]\n"
    path = write_config(home, body)
    assert len(path.read_bytes()) <= config.MAX_BYTES
    listed = ks("rules", timeout=5)
    assert listed.returncode == 0 and "No process rules" in listed.stdout, listed.stderr


def test_deep_but_reasonable_nesting_and_brackets_in_strings_are_fine(home):
    text = ("# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ a comment\n"
            f"deep = {'[' * 32}{']' * 32}\n"
            f"s = \"{'[' * 40}{{{{\"\n"
            f"m = '''\n{'[' * 40}\n'''\n"
            f"b = \"\"\"\n{'{' * 40}\\\"\"\"\n\"\"\"\n"
            "floats = [" + ", ".join(["1.5"] * 200) + "]\n"
            + ".".join(["k"] * 32) + " = 1\n")
    loaded = config.load(write_config(home, text))
    assert loaded.extra["s"].startswith("[[[") and loaded.extra["m"].count("[") == 40
    # Nesting in a multi-line string counts its lines: the refusal names the right one.
    with pytest.raises(config.ConfigError, match=r":8: arrays and inline tables are nested"):
        config.load(write_config(home, 'x = """\n\n\n"""\ny = \'\'\'\n\n\'\'\'\n' + nested_arrays(33)))


def test_the_size_of_all_patterns_together_is_bounded(home):
    big = "(x{1,16}){1,30}y"  # ~960 RE2 instructions: allowed alone
    assert compile_safe_regex(big).programsize <= rules.MAX_PROGRAM
    text = "".join(rule(f"{big}{i}", f"r{i}") for i in range(11))
    path = write_config(home, text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path)
    assert str(caught.value).startswith(f"{path}:33: rules[10]: ") and "RE2 instructions together" in str(caught.value)
    config.load(write_config(home, "".join(rule(f"agent-{i}-[0-9]+", f"r{i}") for i in range(256))))


def test_what_is_not_a_regular_file_is_refused_without_blocking(home, tmp_path):
    home.config_file.parent.mkdir(parents=True)
    os.mkfifo(home.config_file)  # reading a FIFO with no writer blocks forever
    listed = ks("rules", timeout=5)
    assert listed.returncode == 2 and "it is a FIFO, not a regular file" in listed.stderr, listed.stderr
    stopped = ks("stop", timeout=5)
    assert stopped.returncode == 1 and home.flag.exists() and "a FIFO" in stopped.stderr
    home.config_file.unlink()
    home.config_file.symlink_to("/dev/zero")  # endless
    with pytest.raises(config.ConfigError, match="it is a device"):
        config.load(home.config_file)
    home.config_file.unlink()
    home.config_file.mkdir()
    with pytest.raises(config.ConfigError, match="it is a directory"):
        config.load(home.config_file)


def test_recursion_is_caught_as_a_last_resort(monkeypatch):
    monkeypatch.setattr(config, "MAX_DEPTH", 10**6)  # as if check_shape missed it
    with pytest.raises(config.ConfigError, match="nested too deeply"):
        config.parse(nested_arrays(20_000), Path("c.toml"))


def test_parse_toml_is_the_bounded_reader_for_other_modules():
    assert config.parse_toml("a = 1\n", Path("c.toml")) == {"a": 1}
    with pytest.raises(config.ConfigError, match=r"c.toml:1: arrays"):
        config.parse_toml(nested_tables(5_000), Path("c.toml"))
    with pytest.raises(config.ConfigError, match="larger than 256 KiB"):
        config.parse_toml("#" * (config.MAX_BYTES + 1), Path("c.toml"))


# ---------------------------------------------------------------------- 3. [offday] hosts
@pytest.mark.parametrize("entry, reason", [
    ('"bad host"', "contains a space"),
    ('"localhost"', "a name the system itself needs"),
    ('"1.2.3.4"', "is an IP address"),
    ('"chat\\ngpt.com"', "contains a line break"),
    ('"*.openai.com"', "wildcards"),
])
def test_bad_offday_hosts_are_refused_on_load_with_their_line(home, entry, reason):
    text = f'# top\n[offday]\nhosts = [\n  "chatgpt.com",\n  {entry},\n]\n[[offday.rules]]\nweekly = ["SU"]\n'
    path = write_config(home, text)
    with pytest.raises(config.ConfigError) as caught:
        schedule.load_offday(path)
    assert str(caught.value).startswith(f"{path}:5: offday.hosts[1] "), str(caught.value)
    assert reason in str(caught.value)
    listed = ks("offday", "list")
    assert listed.returncode == 2 and f"{path}:5: offday.hosts[1]" in listed.stderr and reason in listed.stderr
    assert path.read_text() == text


def test_hosts_apply_says_where_a_bad_config_host_is(home, tmp_path):
    hosts_file = tmp_path / "hosts"
    original = hosts_file.read_bytes()
    path = write_config(home, '[offday]\nhosts = ["chatgpt.com", "bad host"]\n')
    applied = ks("hosts", "apply", "--hosts-file", str(hosts_file))
    assert applied.returncode == 2
    assert f"{path}:2: offday.hosts[1] 'bad host': contains a space; nothing changed" in applied.stderr
    given = ks("hosts", "apply", "--hosts-file", str(hosts_file), "bad host")  # typed: no file to name
    assert given.returncode == 2 and "hosts[0] 'bad host'" in given.stderr and str(path) not in given.stderr
    assert hosts_file.read_bytes() == original


def test_a_bad_host_is_reported_when_a_day_begins_not_silently_skipped(home):
    from killswitch.runtime.engine import Engine
    from killswitch.runtime.offday import Offdays

    path = write_config(home, '[offday]\nhosts = ["claude.ai", "1.2.3.4"]\n[[offday.rules]]\nweekly = '
                              '["MO", "TU", "WE", "TH", "FR", "SA", "SU"]\n')
    now = dt.datetime(2026, 3, 4, 12, tzinfo=UTC)
    outcome = Offdays(Engine(home), lambda: now, tz=UTC).reconcile(now)
    assert outcome.action == "unchanged"
    assert outcome.detail.startswith(f"off-days not applied: {path}:2: offday.hosts[1] '1.2.3.4'"), outcome.detail


def test_offday_rules_and_hosts_are_bounded(home):
    rules_text = "[offday]\n" + '[[offday.rules]]\nweekly = ["SU"]\n' * (schedule.MAX_RULES + 1)
    path = write_config(home, rules_text)
    with pytest.raises(config.ConfigError) as caught:
        schedule.load_offday(path)
    assert str(caught.value).startswith(f"{path}:{2 + 2 * schedule.MAX_RULES}: 65 off-day rules; at most 64")
    names = ", ".join(f'"h{i}.example"' for i in range(schedule.MAX_HOSTS + 1))
    path = write_config(home, f"# top\n[offday]\nhosts = [{names}]\n")
    with pytest.raises(config.ConfigError, match=r":3: offday.hosts has 1025 names; at most 1024"):
        schedule.load_offday(path)
    names = ", ".join(f'"h{i}.example"' for i in range(schedule.MAX_HOSTS))
    assert len(schedule.load_offday(write_config(home, f"[offday]\nhosts = [{names}]\n")).hosts) == 1024
