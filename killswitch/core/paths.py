"""Where killswitch keeps its files. Every path follows the XDG variables, so tests move them all.

Every directory is checked before it is used (`core/atomic.dir_problem`): ours, and not writable by
group or others. Ours but too open (older versions made them 0755) is tightened to 0700 silently;
a runtime dir that is someone else's, or sits where others can swap it, is not used at all (a
private one under the state dir is); the other directories cannot move (the config, the journal
and the flag are where the README says), so a problem with one is said on stderr, and writing
into a directory that is not ours is refused (`ensure_dir`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, NamedTuple

from killswitch.core import atomic as _atomic
from killswitch.core import flag as _flag

APP = "killswitch"


class Paths(NamedTuple):
    config_dir: Path
    state_dir: Path
    data_dir: Path
    runtime_dir: Path
    flag: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def frozen_file(self) -> Path:
        """The processes the current stop froze or terminated, so a restart can resume them."""
        return self.state_dir / "frozen.json"

    @property
    def lock_file(self) -> Path:
        return self.runtime_dir / "engine.lock"

    @property
    def socket_file(self) -> Path:
        return self.runtime_dir / "engine.sock"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Paths":
        env = os.environ if environ is None else environ
        import platformdirs

        # platformdirs reads os.environ itself; only the runtime dir and the flag need care here.
        config_dir = Path(platformdirs.user_config_dir(APP, appauthor=False))
        data_dir = Path(platformdirs.user_data_dir(APP, appauthor=False))
        state_dir = _flag.default_state_dir(env)
        for directory in (state_dir, data_dir, config_dir):
            problem = _atomic.dir_problem(directory, tighten=True) or _atomic.parent_problem(directory)
            if problem:
                _atomic.warn(f"{directory} {problem}; other users may read or change what killswitch keeps there")
        return cls(
            config_dir=config_dir,
            state_dir=state_dir,
            data_dir=data_dir,
            runtime_dir=_runtime_dir(env, state_dir),
            flag=_flag.flag_path(env),
        )


def _runtime_dir(env: Mapping[str, str], state_dir: Path) -> Path:
    """`$XDG_RUNTIME_DIR/killswitch`; without a usable runtime dir (cron, CI, su), the state dir.

    platformdirs would fall back to /tmp/runtime-UID with a warning; a private dir under the
    user's state dir is safer for a lock and a socket than a guessable /tmp path. The same private
    dir is used when `$XDG_RUNTIME_DIR/killswitch` is not safely ours (a shared runtime dir where
    another user made it first, with an engine socket of their own): that is said on stderr.
    """
    base = env.get("XDG_RUNTIME_DIR", "")
    fallback = state_dir / "run"
    if base and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
        candidate = Path(base) / APP
        problem = _atomic.dir_problem(candidate, tighten=True) or _atomic.parent_problem(candidate)
        if problem is None:
            return candidate
        _atomic.warn(f"ignoring {candidate} and any engine socket or lock in it: it {problem}; "
                     f"using {fallback} instead")
    return fallback


def ensure_dir(path: Path) -> Path:
    """Create `path` (and missing parents) 0700; tighten it if it is ours and too open; refuse it
    (PermissionError, an OSError) if it is someone else's or not a directory."""
    return _atomic.private_dir(path, tighten=True)
