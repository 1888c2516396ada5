"""Fault points: named moments where the fault-injection tests (tests/test_faults.py) stop a real process.

No-op unless SERVICESCORE_FAULT_PAUSE is set. With SERVICESCORE_FAULT_PAUSE=<glob>, the first fault point
whose name matches the glob prints `fault point <name> reached: pausing (pid N)` on stderr and sleeps, so
that a test can SIGKILL the process at exactly that moment. Points:

  load:<feed>/<file name>   ingestion.loader.load_batch, once per file of the batch, after the batch's rows are
                            inserted, before COMMIT
"""

from __future__ import annotations

import fnmatch
import os
import sys
import time

ENV_VAR = "SERVICESCORE_FAULT_PAUSE"
PAUSE_SECONDS = 600


def fault_point(name: str) -> None:
    pattern = os.environ.get(ENV_VAR)
    if not pattern or not fnmatch.fnmatchcase(name, pattern):
        return
    print(f"fault point {name} reached: pausing (pid {os.getpid()})", file=sys.stderr, flush=True)
    time.sleep(PAUSE_SECONDS)
