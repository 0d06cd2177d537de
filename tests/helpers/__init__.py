"""What the tests, the benchmarks and the screenshot script share.

- `waiting`: `wait_for` (fails loudly on timeout), `wait_state` and `proc_state` for real processes.
- `clock`: `FakeClock`, the one hand-driven clock (wall time and monotonic time in step).
- `processes`: stand-in agent processes (`Agents`, `CHILD_TREE`, `ESCAPEE`), `rule_for`, `write_config`,
  and `converse` (the CLI in a pseudo-terminal).
- `xserver`: a private Xvfb and xdotool.  `desktop`: Xvfb + trayer + the tray app started as a user would.

Nothing here is a pytest fixture and nothing imports pytest: the fixtures are in tests/conftest.py.
"""
