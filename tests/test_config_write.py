"""Writing config.toml: only the edited keys change, bad values never reach the disk."""

from __future__ import annotations

import os
import re
import stat

import pytest

from killswitch.core import config
from killswitch.core.config import ConfigError
from killswitch.core.config_write import update_config, validate_countdown, validate_rule
from tests.helpers.processes import write_config

USER = '''\
# My killswitch config. Hand-written, please keep.
hotkey = "<ctrl>+<alt>+j"   # the chord I can reach one-handed

# Long enough to think twice.
resume_countdown = 10
terminate_grace = 2.5

# --- agents ---
[[rules]]   # the main one
name = "Claude"    # shown in the tray
cmdline = "(^|/)claude( |$)"
# note: also matches claude-code

# Local models
[[rules]]
name = "Ollama"
process = "ollama"
action = "terminate"  # frees the GPU

# [[rules]]
# name = "Aider, some day"
# cmdline = "aider"

[offday]
# A later feature's section: never touched by the settings dialog.
days = ["sat", "sun"]   # weekend
note = 'literal \\d string'
'''

CLAUDE = {"name": "Claude", "cmdline": "(^|/)claude( |$)"}
OLLAMA = {"name": "Ollama", "process": "ollama", "action": "terminate"}


def snapshot(path):
    st = os.stat(path)
    return path.read_bytes(), st.st_ino, st.st_mtime_ns


def test_scalar_edits_change_only_their_values(home):
    path = write_config(home, USER)
    update_config(path, hotkey="<ctrl>+<alt>+<shift>+k", resume_countdown=42)
    expected = (USER.replace('hotkey = "<ctrl>+<alt>+j"', 'hotkey = "<ctrl>+<alt>+<shift>+k"')
                .replace("resume_countdown = 10", "resume_countdown = 42"))
    assert path.read_text() == expected
    cfg = config.load(path)
    assert cfg.hotkey == "<ctrl>+<alt>+<shift>+k" and cfg.resume_countdown == 42
    assert cfg.extra == {"offday": {"days": ["sat", "sun"], "note": "literal \\d string"}}


def test_unchanged_values_leave_the_file_untouched(home):
    path = write_config(home, USER)
    before = snapshot(path)
    update_config(path, hotkey="<ctrl>+<alt>+j", resume_countdown=10, rules=[CLAUDE, {**OLLAMA}])
    assert snapshot(path) == before


def test_added_rule_goes_after_the_others_and_comments_stay(home):
    path = write_config(home, USER)
    new = {"name": "Codex", "process": None, "cmdline": r"\bcodex\b", "env": "", "action": "suspend"}
    update_config(path, rules=[CLAUDE, OLLAMA, new])
    expected = USER.replace(
        'action = "terminate"  # frees the GPU\n',
        'action = "terminate"  # frees the GPU\n\n'
        "[[rules]]\n"
        'name = "Codex"\n'
        "cmdline = '\\bcodex\\b'\n"  # a regex reads better without doubled backslashes
        'action = "suspend"\n',
    )
    assert path.read_text() == expected
    rules = config.load(path).rules
    assert [r.name for r in rules] == ["Claude", "Ollama", "Codex"]
    assert rules[2].cmdline == r"\bcodex\b" and rules[2].process is None and rules[2].env is None


def test_edited_rule_keeps_its_comments_on_unchanged_keys(home):
    path = write_config(home, USER)
    update_config(path, rules=[CLAUDE, {**OLLAMA, "action": "suspend", "env": "OLLAMA_HOST"}])
    expected = USER.replace('action = "terminate"  # frees the GPU\n',
                            'action = "suspend"  # frees the GPU\nenv = "OLLAMA_HOST"\n')
    assert path.read_text() == expected


def test_removed_rule_takes_its_heading_and_the_file_comments_stay(home):
    path = write_config(home, USER)
    update_config(path, rules=[CLAUDE])
    text = path.read_text()
    assert "Ollama" not in text and "# Local models" not in text
    head, _, tail = USER.partition("# Local models\n")
    assert text == head + tail.partition('# frees the GPU\n\n')[2]
    assert [r.name for r in config.load(path).rules] == ["Claude"]


def test_removing_every_rule_keeps_the_comments_between_them(home):
    path = write_config(home, USER)
    update_config(path, rules=[])
    text = path.read_text()
    assert not re.search(r"^\[\[rules", text, re.M)
    # The notes and headings of the rules go with them; the file's own comments stay.
    assert "# note: also matches" not in text and "# Local models" not in text
    assert text == USER.partition("[[rules]]")[0] + "\n" + USER.partition('# frees the GPU\n\n')[2]
    assert config.load(path).rules == ()


def test_a_rule_moves_with_its_heading_and_note(home):
    path = write_config(home, USER)
    update_config(path, rules=[OLLAMA, CLAUDE])
    text = path.read_text()
    assert ("# --- agents ---\n# Local models\n[[rules]]\nname = \"Ollama\"\nprocess = \"ollama\"\n"
            "action = \"terminate\"  # frees the GPU\n\n[[rules]]   # the main one\n"
            "name = \"Claude\"    # shown in the tray\ncmdline = \"(^|/)claude( |$)\"\n"
            "# note: also matches claude-code\n\n# [[rules]]\n# name = \"Aider, some day\"") in text
    assert [r.name for r in config.load(path).rules] == ["Ollama", "Claude"]


def test_rules_written_inline_are_replaced_by_tables(home):
    path = write_config(home, 'rules = [{ name = "x", process = "x" }]\nhotkey = "<ctrl>+<alt>+x"\n')
    update_config(path, rules=[{"name": "y", "process": "y"}])
    cfg = config.load(path)
    assert [r.name for r in cfg.rules] == ["y"] and cfg.hotkey == "<ctrl>+<alt>+x"


@pytest.mark.parametrize("change, words", [
    ({"rules": [CLAUDE, {"name": "bad", "cmdline": "(?=a)b"}]}, ["Rule 2 (bad)", "cmdline", "look-ahead"]),
    ({"rules": [{"name": "nothing to match"}]}, ["Rule 1", "at least one of"]),
    ({"rules": [{"process": "x", "action": "kill"}]}, ["action"]),
    ({"rules": [{"process": "x", "colour": "red"}]}, ["unknown key"]),
    ({"resume_countdown": 601}, ["0 to 600"]),
    ({"resume_countdown": True}, ["0 to 600"]),
    ({"hotkey": "  "}, ["hotkey"]),
])
def test_invalid_values_are_refused_and_the_file_stays_byte_identical(home, change, words):
    path = write_config(home, USER)
    before = snapshot(path)
    with pytest.raises(ConfigError) as caught:
        update_config(path, **change)
    assert str(caught.value).startswith(f"{path}: not saved")
    for word in words:
        assert word in str(caught.value)
    assert snapshot(path) == before
    assert sorted(os.listdir(path.parent)) == ["config.toml"]


def test_a_file_that_is_not_toml_is_never_overwritten(home):
    broken = USER.replace('process = "ollama"', 'process = "ollama')
    path = write_config(home, broken)
    before = snapshot(path)
    with pytest.raises(ConfigError) as caught:
        update_config(path, resume_countdown=20)
    line = broken.splitlines().index('process = "ollama') + 1
    assert caught.value.line == line and str(caught.value).startswith(f"{path}:{line}: not valid TOML")
    assert "not saved" in str(caught.value)
    assert snapshot(path) == before


def test_a_file_tomlkit_would_reorder_is_refused(home):
    # [[rules]] split around another table: tomlkit would move the second part up.
    text = '[[rules]]\nprocess = "a"\n\n[offday]\ndays = []\n\n[[rules]]\nprocess = "b"\n'
    path = write_config(home, text)
    with pytest.raises(ConfigError, match=r"keep all \[\[rules\]\] tables together"):
        update_config(path, resume_countdown=20)
    assert path.read_text() == text


def test_an_invalid_config_can_be_repaired(home):
    path = write_config(home, USER.replace('process = "ollama"', 'process = "/usr/bin/ollama"'))
    with pytest.raises(ConfigError):
        config.load(path)
    update_config(path, rules=[CLAUDE, OLLAMA])
    assert [r.process for r in config.load(path).rules] == [None, "ollama"]


def test_missing_file_starts_from_the_commented_default(home):
    path = home.config_file
    assert not path.exists()
    update_config(path, rules=[{"name": "mine", "process": "agent"}])
    text = path.read_text()
    assert text.startswith(config.DEFAULT_CONFIG)
    assert text[len(config.DEFAULT_CONFIG):] == '\n[[rules]]\nname = "mine"\nprocess = "agent"\n'
    cfg = config.load(path)
    assert [r.name for r in cfg.rules] == ["mine"] and cfg.resume_countdown == 10
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_mode_is_kept_and_no_temporary_file_is_left(home):
    path = write_config(home, USER)
    os.chmod(path, 0o600)
    update_config(path, resume_countdown=30)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(path.parent)) == ["config.toml"]


def test_a_symlinked_config_stays_a_symlink(home, tmp_path):
    real = tmp_path / "dotfiles" / "killswitch.toml"
    real.parent.mkdir()
    real.write_text(USER)
    home.config_file.parent.mkdir(parents=True)
    home.config_file.symlink_to(real)
    update_config(home.config_file, resume_countdown=30)
    assert home.config_file.is_symlink()
    assert config.load(real).resume_countdown == 30


def test_a_failed_write_is_reported_and_nothing_changes(home, monkeypatch):
    path = write_config(home, USER)
    before = snapshot(path)

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ConfigError, match="cannot write the config: No space left on device"):
        update_config(path, resume_countdown=30)
    monkeypatch.undo()
    assert snapshot(path) == before
    assert sorted(os.listdir(path.parent)) == ["config.toml"]


def test_field_checks_name_the_rule_and_the_key():
    assert validate_rule(CLAUDE, 0) is None
    message = validate_rule({"name": "Agents", "cmdline": "(?=a)b"}, 2)
    assert message.startswith("Rule 3 (Agents), cmdline: ") and "(?=a)b" in message
    assert validate_rule({"env": "1BAD"}, 0).startswith("Rule 1, env: ")
    assert "at least one of" in validate_rule({"name": "x", "process": ""}, 0)
    assert validate_countdown(0) is None and validate_countdown(600) is None
    for bad in (-1, 601, 1.5, True, "10"):
        assert validate_countdown(bad)
