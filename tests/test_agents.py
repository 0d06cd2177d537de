"""Hooks for each agent: merging into real-looking settings, and running the installed command."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from killswitch import agents
from killswitch.agents import SUPPORTED, HookError, hook_command, install, is_installed, uninstall
from killswitch.core.flag import make_flag, write_flag

# Shells the agents may hand the command to (Codex: $SHELL -lc; Claude: sometimes the login shell).
SHELLS = [s for s in ("/bin/sh", "bash", "zsh", "fish") if shutil.which(s)]
JSON_AGENTS = [a for a in SUPPORTED if a != "cline"]
USER_CMD = "/usr/local/bin/my-guard --strict"

EXISTING: dict[str, dict] = {
    "claude": {
        "model": "opus",
        "permissions": {"allow": ["Bash(git status)"], "deny": ["Read(./.env)"]},
        "hooks": {
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": USER_CMD}]}],
            "PostToolUse": [{"matcher": "Edit|Write", "hooks": [{"type": "command", "command": "prettier -w"}]}],
        },
        "statusLine": {"type": "command", "command": "echo hi"},
    },
    "codex": {
        "hooks": {
            "UserPromptSubmit": [{"hooks": [{"type": "command", "command": USER_CMD, "timeout": 30}]}],
            "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
        }
    },
    "gemini": {
        "theme": "GitHub",
        "general": {"vimMode": True},
        "hooks": {
            "BeforeTool": [{"matcher": "run_shell_command", "hooks": [
                {"type": "command", "name": "guard", "command": USER_CMD, "timeout": 5000}]}],
        },
        "mcpServers": {"x": {"command": "npx", "args": ["x"]}},
    },
    "cursor": {
        "version": 1,
        "hooks": {
            "preToolUse": [{"command": USER_CMD, "matcher": "Shell"}],
            "afterFileEdit": [{"command": "./hooks/format.sh"}],
        },
    },
    "goose": {
        "hooks": {
            "PreToolUse": [{"matcher": "developer__shell", "hooks": [{"type": "command", "command": USER_CMD}]}],
            "SessionEnd": [{"hooks": [{"command": "${PLUGIN_ROOT}/log.sh"}]}],
        }
    },
}

EVENTS = {
    "claude": ["PreToolUse", "UserPromptSubmit"],
    "codex": ["PreToolUse", "UserPromptSubmit"],
    "gemini": ["BeforeTool", "BeforeAgent"],
    "cursor": ["preToolUse", "beforeSubmitPrompt"],
    "cline": ["PreToolUse", "UserPromptSubmit"],
    "goose": ["PreToolUse"],
}


def payload(agent: str, event: str, cwd: str) -> bytes:
    """A realistic stdin document for that agent's event."""
    tool = event in ("PreToolUse", "BeforeTool", "preToolUse")
    if agent in ("claude", "codex"):
        doc = {"session_id": "abc123", "transcript_path": f"{cwd}/t.jsonl", "cwd": cwd,
               "permission_mode": "default", "hook_event_name": event}
        if agent == "codex":
            doc.update(turn_id="turn-1", model="gpt-5")
        doc.update({"tool_name": "Bash", "tool_input": {"command": "rm -rf build", "description": "clean"},
                    "tool_use_id": "toolu_01"} if tool else {"prompt": "keep going"})
    elif agent == "gemini":
        doc = {"session_id": "s1", "transcript_path": f"{cwd}/t.json", "cwd": cwd, "hook_event_name": event,
               "timestamp": "2026-11-22T10:00:00Z"}
        doc.update({"tool_name": "run_shell_command", "tool_input": {"command": "ls"}} if tool
                   else {"prompt": "continue"})
    elif agent == "cursor":
        doc = {"conversation_id": "c1", "generation_id": "g1", "model": "gpt-5", "hook_event_name": event,
               "cursor_version": "2.1.0", "workspace_roots": [cwd], "user_email": "u@example.com"}
        doc.update({"tool_name": "Shell", "tool_input": {"command": "ls"}} if tool
                   else {"prompt": "fix it", "attachments": []})
    elif agent == "cline":
        doc = {"clineVersion": "3.40.0", "hookName": event, "timestamp": "1763800000000", "taskId": "t1",
               "workspaceRoots": [cwd], "userId": "u1"}
        doc["preToolUse" if tool else "userPromptSubmit"] = (
            {"toolName": "execute_command", "parameters": {"command": "ls"}} if tool
            else {"prompt": "go on", "attachments": []})
    else:
        doc = {"event": event, "session_id": "s1", "matcher_context": "developer__shell",
               "tool_name": "developer__shell", "tool_input": {"command": "ls"}, "working_dir": cwd,
               "tool_call_id": "call-1"}
    return json.dumps(doc).encode()


def strip_ours(data: dict) -> dict:
    """`data` without killswitch entries, dropping lists we emptied and Cursor's version we added."""
    out = copy.deepcopy(data)
    for event in list(out.get("hooks", {})):
        kept = []
        for group in out["hooks"][event]:
            if "hooks" in group and isinstance(group["hooks"], list):
                group["hooks"] = [h for h in group["hooks"] if "killswitch-hook" not in h.get("command", "")]
                if group["hooks"]:
                    kept.append(group)
            elif "killswitch-hook" not in group.get("command", ""):
                kept.append(group)
        if kept:
            out["hooks"][event] = kept
        else:
            del out["hooks"][event]
    return out


def ours(agent: str, home: Path) -> dict[str, list[str]]:
    """Installed killswitch commands (Cline: file paths) per event."""
    if agent == "cline":
        d = agents.settings_path("cline", home)
        return {e: [str(d / e)] for e in EVENTS["cline"] if (d / e).exists()}
    data = json.loads(agents.settings_path(agent, home).read_text())
    found: dict[str, list[str]] = {}
    for event, groups in data.get("hooks", {}).items():
        handlers = groups if agent == "cursor" else [h for g in groups for h in g.get("hooks", [])]
        cmds = [h["command"] for h in handlers if "killswitch-hook" in h.get("command", "")]
        if cmds:
            found[event] = cmds
    return found


def seed(agent: str, home: Path) -> Path:
    path = agents.settings_path(agent, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(EXISTING[agent], indent=4) + "\n")
    os.chmod(path, 0o600)
    return path


def run(agent: str, target: str, stdin: bytes, env_flag: Path | str | None, home: Path, shell: str = "/bin/sh"):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    if env_flag is not None:
        env["KILLSWITCH_FLAG"] = str(env_flag)
    argv = [target] if agent == "cline" else [shell, "-c", target]
    return subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=30, cwd=home)


def assert_allowed(agent: str, event: str, proc) -> None:
    assert proc.returncode == 0, proc
    assert proc.stderr == b""
    if agent == "cursor":
        want = {"permission": "allow"} if event == "preToolUse" else {"continue": True}
        assert json.loads(proc.stdout) == want
    elif agent == "cline":
        assert json.loads(proc.stdout) == {"cancel": False}
    else:
        assert proc.stdout == b""


def assert_blocked(agent: str, event: str, proc) -> None:
    if agent == "cursor":
        assert proc.returncode == 2, proc
        out = json.loads(proc.stdout)
        if event == "preToolUse":
            assert out["permission"] == "deny" and "kill switch" in out["agent_message"]
        else:
            assert out["continue"] is False and "kill switch" in out["user_message"]
    elif agent == "cline":
        assert proc.returncode == 0, proc
        out = json.loads(proc.stdout)
        assert out["cancel"] is True and "Do not retry" in out["errorMessage"]
    else:
        assert proc.returncode == 2, proc
        assert proc.stdout == b""
        message = proc.stderr.decode()
        assert "kill switch" in message and "Do not retry" in message and "resumes" in message


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.mark.parametrize("agent", JSON_AGENTS)
def test_install_merges_backs_up_and_is_idempotent(agent: str, home: Path, tmp_path: Path) -> None:
    path = seed(agent, home)
    before = path.read_bytes()
    flag = tmp_path / "state" / "STOP"
    result = install(agent, home, flag)
    assert result.changed and result.path == path and result.agent == agent
    assert result.backup is not None and result.backup.read_bytes() == before
    assert ".killswitch-backup-" in result.backup.name
    data = json.loads(path.read_text())
    assert strip_ours(data) == EXISTING[agent]
    assert list(strip_ours(data)) == list(EXISTING[agent])  # key order kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(ours(agent, home)) == sorted(EVENTS[agent])
    assert all(len(c) == 1 for c in ours(agent, home).values())
    assert is_installed(agent, home)
    # the user's own hook for the same event still sits before ours
    first = data["hooks"][EVENTS[agent][0]][0]
    if agent in ("claude", "gemini", "cursor", "goose"):
        assert USER_CMD in json.dumps(first)

    again = install(agent, home, flag)
    assert not again.changed and again.backup is None
    assert json.loads(path.read_text()) == data
    assert len(list(path.parent.glob("*.killswitch-backup-*"))) == 1
    assert all(len(c) == 1 for c in ours(agent, home).values())


@pytest.mark.parametrize("agent", JSON_AGENTS)
def test_agent_specific_shape(agent: str, home: Path, tmp_path: Path) -> None:
    install(agent, home, tmp_path / "STOP")
    data = json.loads(agents.settings_path(agent, home).read_text())
    if agent == "cursor":
        assert data["version"] == 1 and set(data["hooks"]) == {"preToolUse", "beforeSubmitPrompt"}
        return
    group = data["hooks"][EVENTS[agent][0]][0]
    handler = group["hooks"][0]
    assert handler["type"] == "command"
    assert group["matcher"] == {"claude": "*", "codex": "*", "gemini": ".*", "goose": ".*"}[agent]
    assert handler["timeout"] == (10000 if agent == "gemini" else 10)  # Gemini counts milliseconds
    assert set(ours(agent, home)) == set(EVENTS[agent])  # never on Stop: blocking it means "go on"
    if agent == "goose":
        manifest = json.loads((home / ".agents/plugins/killswitch/plugin.json").read_text())
        assert manifest["name"] == "killswitch"


@pytest.mark.parametrize("agent", SUPPORTED)
@pytest.mark.parametrize("shell", SHELLS)
def test_installed_command_blocks_only_while_flag_exists(agent: str, shell: str, home: Path, tmp_path: Path) -> None:
    if agent != "cline":
        seed(agent, home)
    install(agent, home, tmp_path / "default" / "STOP")
    env_flag = tmp_path / "env" / "STOP"
    for event, targets in ours(agent, home).items():
        (target,) = targets
        stdin = payload(agent, event, str(home))
        assert_allowed(agent, event, run(agent, target, stdin, env_flag, home, shell))
        write_flag(env_flag, make_flag("cli", message="lunch"))
        assert_blocked(agent, event, run(agent, target, stdin, env_flag, home, shell))
        env_flag.write_bytes(b"")  # empty: still stop
        assert_blocked(agent, event, run(agent, target, stdin, env_flag, home, shell))
        env_flag.write_bytes(b"\x00\xff{not json")  # garbled: still stop
        assert_blocked(agent, event, run(agent, target, stdin, env_flag, home, shell))
        env_flag.unlink()
        assert_allowed(agent, event, run(agent, target, stdin, env_flag, home, shell))


@pytest.mark.parametrize("agent", SUPPORTED)
def test_baked_path_with_spaces_and_quote(agent: str, home: Path, tmp_path: Path) -> None:
    flag = tmp_path / "it's a \"dir\" $HOME `x`" / "STOP"
    install(agent, home, flag)
    for event, (target,) in ours(agent, home).items():
        stdin = payload(agent, event, str(home))
        for shell in SHELLS:
            assert_allowed(agent, event, run(agent, target, stdin, None, home, shell))
        write_flag(flag, make_flag("cli"))
        for shell in SHELLS:
            assert_blocked(agent, event, run(agent, target, stdin, None, home, shell))
            # an empty $KILLSWITCH_FLAG means "unset", as in flag_path()
            assert_blocked(agent, event, run(agent, target, stdin, "", home, shell))
        flag.unlink()


@pytest.mark.parametrize("agent", SUPPORTED)
def test_hostile_stdin(agent: str, home: Path, tmp_path: Path) -> None:
    install(agent, home, tmp_path / "STOP")
    flag = tmp_path / "STOP"
    junk = os.urandom(3 * 1024 * 1024) + b"\x00" * 1024 + b"\n}{\xff"
    for event, (target,) in ours(agent, home).items():
        assert_allowed(agent, event, run(agent, target, junk, None, home))
        assert_allowed(agent, event, run(agent, target, b"", None, home))
        write_flag(flag, make_flag("cli"))
        assert_blocked(agent, event, run(agent, target, junk, None, home))
        assert_blocked(agent, event, run(agent, target, b"", None, home))
        flag.unlink()


def test_block_drains_large_stdin_so_writers_do_not_see_a_broken_pipe(home: Path, tmp_path: Path) -> None:
    flag = tmp_path / "STOP"
    write_flag(flag, make_flag("cli"))
    proc = subprocess.Popen(["/bin/sh", "-c", hook_command("codex", flag)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"x" * (8 * 1024 * 1024))  # far beyond a pipe buffer: raises if the hook quit early
    proc.stdin.close()
    assert proc.wait(timeout=30) == 2
    assert b"kill switch" in proc.stderr.read()


@pytest.mark.parametrize("agent", SUPPORTED)
def test_uninstall_removes_only_ours(agent: str, home: Path, tmp_path: Path) -> None:
    if agent == "cline":
        install(agent, home, tmp_path / "STOP")
        result = uninstall(agent, home)
        assert result.changed and not any(agents.settings_path("cline", home).iterdir())
        assert not is_installed(agent, home)
        assert not uninstall(agent, home).changed
        return
    path = seed(agent, home)
    install(agent, home, tmp_path / "STOP")
    result = uninstall(agent, home)
    assert result.changed and result.backup is not None
    data = json.loads(path.read_text())
    assert data == EXISTING[agent] and list(data) == list(EXISTING[agent])
    assert not is_installed(agent, home)
    assert not uninstall(agent, home).changed


def test_uninstall_without_file_is_a_no_op(home: Path) -> None:
    for agent in SUPPORTED:
        assert not uninstall(agent, home).changed
        assert not is_installed(agent, home)


def test_goose_uninstall_removes_our_empty_plugin(home: Path, tmp_path: Path) -> None:
    install("goose", home, tmp_path / "STOP")
    assert is_installed("goose", home)
    uninstall("goose", home)
    assert not (home / ".agents" / "plugins" / "killswitch").exists()


@pytest.mark.parametrize("agent", JSON_AGENTS)
def test_reinstall_with_new_flag_replaces_ours_in_place(agent: str, home: Path, tmp_path: Path) -> None:
    seed(agent, home)
    install(agent, home, tmp_path / "old" / "STOP")
    order = json.loads(agents.settings_path(agent, home).read_text())
    result = install(agent, home, tmp_path / "new" / "STOP")
    assert result.changed
    found = ours(agent, home)
    assert all(len(c) == 1 and "/new/STOP" in c[0] and "/old/" not in c[0] for c in found.values())
    data = json.loads(agents.settings_path(agent, home).read_text())
    assert strip_ours(data) == strip_ours(order)


@pytest.mark.parametrize("agent", JSON_AGENTS)
@pytest.mark.parametrize("bad,line", [
    ('{\n  "model": "opus",\n  "hooks": {\n    "PreToolUse": [\n  }\n', 5),
    ('{"a": 1,}\n', 1),
    ("", None),  # empty file is fine: treated as {}
])
def test_invalid_json_is_refused_and_left_alone(agent: str, bad: str, line: int | None, home: Path,
                                                tmp_path: Path) -> None:
    path = agents.settings_path(agent, home)
    path.parent.mkdir(parents=True)
    path.write_text(bad)
    if line is None:
        assert install(agent, home, tmp_path / "STOP").changed
        return
    with pytest.raises(HookError) as err:
        install(agent, home, tmp_path / "STOP")
    assert f"{path}:{line}:" in str(err.value) and "nothing was changed" in str(err.value)
    assert path.read_text() == bad
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    with pytest.raises(HookError):
        uninstall(agent, home)
    assert path.read_text() == bad
    assert not is_installed(agent, home)


@pytest.mark.parametrize("text,where", [
    ('{"hooks": []}', "hooks"),
    ('[1, 2]', "top level"),
    ('{"hooks": {"PreToolUse": {"matcher": "*"}, "preToolUse": {}, "BeforeTool": 3}}', "must be a list"),
    ('{"a": 1, "a": 2}', "duplicate key"),
])
def test_wrong_shape_is_refused(text: str, where: str, home: Path, tmp_path: Path) -> None:
    for agent in ("claude", "gemini", "cursor"):
        path = agents.settings_path(agent, home)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        with pytest.raises(HookError) as err:
            install(agent, home, tmp_path / "STOP")
        assert str(path) in str(err.value) and where in str(err.value)
        assert path.read_text() == text
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_symlinked_settings_are_written_through(home: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "claude.json"
    real.parent.mkdir()
    real.write_text(json.dumps(EXISTING["claude"]))
    link = agents.settings_path("claude", home)
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    install("claude", home, tmp_path / "STOP")
    assert link.is_symlink() and is_installed("claude", home)
    assert strip_ours(json.loads(real.read_text())) == EXISTING["claude"]


def test_missing_dirs_are_created(home: Path, tmp_path: Path) -> None:
    for agent in SUPPORTED:
        result = install(agent, home, tmp_path / "STOP")
        assert result.changed and result.backup is None and is_installed(agent, home)


def test_cline_files_are_executable_marked_and_refuse_foreign(home: Path, tmp_path: Path) -> None:
    result = install("cline", home, tmp_path / "STOP")
    hooks_dir = home / "Documents" / "Cline" / "Hooks"
    assert result.path == hooks_dir and result.changed
    for name in ("PreToolUse", "UserPromptSubmit"):
        body = (hooks_dir / name).read_text()
        assert body.startswith("#!/bin/sh\n") and "# killswitch-hook v1" in body
        assert stat.S_IMODE((hooks_dir / name).stat().st_mode) == 0o755
    assert not install("cline", home, tmp_path / "STOP").changed
    uninstall("cline", home)

    mine = "#!/bin/sh\necho '{\"cancel\": false}'\n"
    (hooks_dir / "UserPromptSubmit").write_text(mine)
    with pytest.raises(HookError) as err:
        install("cline", home, tmp_path / "STOP")
    assert "UserPromptSubmit" in str(err.value) and "not a killswitch hook" in str(err.value)
    assert (hooks_dir / "UserPromptSubmit").read_text() == mine
    assert not (hooks_dir / "PreToolUse").exists()  # all or nothing
    assert not uninstall("cline", home).changed
    assert (hooks_dir / "UserPromptSubmit").read_text() == mine


def test_unknown_agent_lists_supported(home: Path, tmp_path: Path) -> None:
    for call in (lambda: install("aider", home, tmp_path), lambda: uninstall("aider", home),
                 lambda: is_installed("aider", home), lambda: hook_command("aider", tmp_path),
                 lambda: agents.snippet("aider", tmp_path), lambda: agents.settings_path("aider", home)):
        with pytest.raises(HookError) as err:
            call()
        assert all(name in str(err.value) for name in SUPPORTED)


@pytest.mark.parametrize("agent", SUPPORTED)
def test_snippet_shows_where_and_what(agent: str, tmp_path: Path) -> None:
    flag = tmp_path / "STOP"
    text = agents.snippet(agent, flag)
    assert str(flag) in text and "killswitch-hook" in text
    where = {"claude": "~/.claude/settings.json", "codex": "~/.codex/hooks.json",
             "gemini": "~/.gemini/settings.json", "cursor": "~/.cursor/hooks.json",
             "cline": "~/Documents/Cline/Hooks/PreToolUse",
             "goose": "~/.agents/plugins/killswitch/hooks/hooks.json"}[agent]
    assert where in text
    if agent != "cline":
        block = json.loads(text[text.index("{"): text.rindex("}") + 1].split("\nAlso")[0])
        assert set(block["hooks"]) == set(EVENTS[agent])


def test_allow_path_is_cheap(tmp_path: Path) -> None:
    """The installed command costs about what `sh -c 'test -e FILE'` costs (target: at most 2x)."""
    flag = tmp_path / "STOP"

    def best(cmd: str) -> float:
        times = []
        for _ in range(60):
            start = time.perf_counter()
            subprocess.run(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        return min(times)

    base = best(f"test -e '{flag}'")
    for agent in JSON_AGENTS:
        assert best(hook_command(agent, flag)) <= 2 * base
