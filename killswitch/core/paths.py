"""Where killswitch keeps its files. Every path follows the XDG variables, so tests move them all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, NamedTuple

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
    user's state dir is safer for a lock and a socket than a guessable /tmp path.
    """
    base = env.get("XDG_RUNTIME_DIR", "")
    if base and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
        return Path(base) / APP
    return state_dir / "run"


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
