"""`killswitch serve`: the engine without a tray, holding the stop path warm and enforcing a stop."""

from __future__ import annotations

import signal
import sys
import threading

from killswitch.core import config
from killswitch.core.engine import Engine
from killswitch.core.paths import Paths
from killswitch.service import Service


def serve(paths: Paths, refresh: float = 10.0) -> int:
    config.ensure_default(paths.config_file)
    engine = Engine(paths)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    service = Service(engine, paths)
    try:
        service.start()
    except OSError as exc:
        print(f"killswitch: {exc}", file=sys.stderr)
        return 1
    print(f"killswitch engine serving on {paths.socket_file}", flush=True)
    try:
        while not done.is_set():
            try:
                if engine.is_stopped():
                    engine.enforce()
                else:
                    engine.refresh()
            except config.ConfigError as exc:
                print(f"killswitch: {exc}", file=sys.stderr, flush=True)
            done.wait(max(refresh, 0.05))
    finally:
        service.close()
        engine.close()
    return 0
