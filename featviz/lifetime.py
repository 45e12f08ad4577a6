"""A featviz process ends with the process that started it (Linux only).

`dvc repro` runs each stage as a child process; when DVC itself is killed, its child would
otherwise go on running, orphaned, and write outputs nobody waits for. The parent-death signal
ends it instead. Where a shell stands between DVC and featviz (DVC runs commands through the
user's shell, and not every shell hands over to a single command), the shell is the parent and
survives; then the check that the params file is unchanged (stages/common/outputs.py) keeps the
orphan from writing over a newer run's outputs.
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def end_with_parent() -> bool:
    """Ask the kernel to send SIGTERM when the parent process ends; False where it cannot."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    return prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
