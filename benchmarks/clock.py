"""The clock every benchmark reads: wall time by default; ``use("cpu")`` switches to this
process's CPU time (``time.process_time``), which other people's jobs on the same cores
disturb far less. CPU time is only meaningful for single-threaded rows: a multi-threaded
library's CPU time adds up all its threads (and their spinning)."""

import time

_now = time.perf_counter
NAME = "wall"


def use(name: str) -> None:
    global _now, NAME
    _now = {"wall": time.perf_counter, "cpu": time.process_time}[name]
    NAME = name


def now() -> float:
    return _now()
