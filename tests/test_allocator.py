import subprocess
import sys

import pytest

# Allocate and free 256 MiB, then report how much of it the process still holds (MiB).
HELD_AFTER_FREE = """
import os, sys
from featviz.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def resident_mib():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
before = resident_mib()
block = bytearray(256 * 2**20)
del block
print(resident_mib() - before)
"""


def held_after_free(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", HELD_AFTER_FREE, mode], capture_output=True,
                          text=True, check=True)
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
@pytest.mark.stage  # a subprocess or a full-size network: seconds
def test_freed_memory_stays_in_the_process_only_when_asked():
    assert held_after_free("default") < 16
    assert held_after_free("keep") > 200
