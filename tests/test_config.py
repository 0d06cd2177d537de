"""config.toml and process rules: hostile input is refused with what and where, nothing changes."""

from __future__ import annotations

import pytest

from killswitch.core import config
from killswitch.core.rules import RuleError, compile_safe_regex, make_rule
from tests.helpers.processes import write_config


def test_default_config_is_valid_and_only_written_when_absent(home):
    assert config.ensure_default(home.config_file)
    cfg = config.load(home.config_file)
    assert cfg.rules == () and cfg.hotkey == "<ctrl>+<alt>+<shift>+k" and cfg.resume_countdown == 10
    home.config_file.write_text("# mine\n")
    assert not config.ensure_default(home.config_file)
    assert home.config_file.read_text() == "# mine\n"


def test_commented_examples_in_the_default_all_parse():
    head, examples = config.DEFAULT_CONFIG.split("# Examples for common local agents")
    examples, journal = examples.split("# The pause journal")
    uncommented = head + "\n".join(line[2:] if line.startswith("# ") else line for line in examples.splitlines()[1:])
    cfg = config.parse(uncommented + "\n# " + journal, config.Path("x.toml"))
    assert len(cfg.rules) == 6 and cfg.nudge_days == 14
    assert {r.action for r in cfg.rules} == {"suspend", "terminate"}


def test_documented_rule_shape(home):
    write_config(home, '''
[[rules]]
name = "Local agents"
process = "ollama"
cmdline = "claude|codex"
env = "CLAUDECODE=1"
action = "suspend"
''')
    (rule,) = config.load(home.config_file).rules
    assert rule.matches("ollama", "ollama", "ollama run claude", {"CLAUDECODE": "1"})
    assert not rule.matches("ollama", "ollama", "ollama run claude", {"CLAUDECODE": "0"})
    assert not rule.matches("ollama", "ollama", "ollama serve", {"CLAUDECODE": "1"})
    assert not rule.matches("node", "node", "claude", {"CLAUDECODE": "1"})


@pytest.mark.parametrize("text, line, words", [
    ("hotkey = \n", 1, "not valid TOML"),
    ("[[rules]]\nname = 'a'\ncmdline = 'x'\n[[rules]]\nname = 'b'\ncmdline = '(?=a)b'\n", 6, "look-ahead"),
    ("[[rules]]\nname = 'a'\n", 1, "at least one of process, cmdline or env"),
    ("[[rules]]\ncmdline = 'x'\naction = 'explode'\n", 3, "action must be one of"),
    ("[[rules]]\ncmdline = '('\n", 2, "not a valid regular expression"),
    ("[[rules]]\ncmdline = 'x'\nproces = 'typo'\n", 3, "unknown key"),
    ("[[rules]]\nenv = 'NOT VALID'\n", 2, "env must look like"),
    ("[[rules]]\nprocess = '/usr/bin/x'\n", 2, "basename"),
    ("resume_countdown = -3\n", 1, "resume_countdown"),
    ("rules = 5\n", 1, "array of tables"),
])
def test_bad_config_is_refused_with_file_and_line(home, text, line, words):
    path = write_config(home, text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message
    assert path.read_text() == text


def test_non_utf8_config_is_refused(home):
    home.config_file.parent.mkdir(parents=True)
    home.config_file.write_bytes(b"# ok\nhotkey = '\xff'\n")
    with pytest.raises(config.ConfigError, match=r":2: the config is not valid UTF-8"):
        config.load(home.config_file)


@pytest.mark.parametrize("pattern", [
    r"(a)\1", "(?=a)b", "(?<!a)b", "a++", "x{,3}", "(x{1,30}){1,30}y", r"(\w+\s?)*$",
    "", "x" * 600, ".*", "a?",
])
def test_unsupported_or_useless_patterns_are_refused(pattern):
    with pytest.raises(RuleError):
        compile_safe_regex(pattern)


@pytest.mark.parametrize("pattern", [
    "claude|codex", "(^|/)claude( |$)", r"node .*/codex\.js", "@openai/codex", r"python[0-9.]* -m aider",
    "(ab|cd)+", "[a-z]+-agent",
])
def test_ordinary_patterns_are_accepted(pattern):
    assert compile_safe_regex(pattern).search(pattern.replace("\\", "")) is not None or True


def test_cmdline_search_is_bounded():
    rule = make_rule({"cmdline": "needle"}, 0)
    assert rule.matches("x", "x", "a" * 10 + "needle", None)
    assert not rule.matches("x", "x", "a" * 20000 + "needle", None)


@pytest.mark.parametrize("text, problem", [
    ("[journal]\nnudge_days = -1\n", "nudge_days must be a whole number of days from 0 (never) to 365"),
    ("[journal]\nnudge_days = true\n", "nudge_days must be a whole number"),
    ("[journal]\nnudge_days = 7.5\n", "nudge_days must be a whole number"),
    ("[journal]\nnudge = 3\n", "[journal] has no setting 'nudge'"),
    ("journal = 3\n", "`journal` must be a table"),
])
def test_bad_journal_settings_are_refused_with_the_line(text, problem):
    with pytest.raises(config.ConfigError) as caught:
        config.parse("# top\n" + text, config.Path("c.toml"))
    assert problem in str(caught.value) and caught.value.line == 2 + (text.startswith("[journal]"))


def test_journal_nudge_days_default_and_off():
    assert config.parse("", config.Path("c.toml")).nudge_days == 14
    assert config.parse("[journal]\nnudge_days = 0\n", config.Path("c.toml")).nudge_days == 0
