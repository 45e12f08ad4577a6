"""Downloads of a registry model's pretrained weights: only where the machine can reach the
host, and never when the environment says offline."""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TypeVar

from featviz.errors import WeightsUnavailableError
from featviz.models.spec import RANDOM_WEIGHTS

DOWNLOAD_TIMEOUT_S = 30
T = TypeVar("T")


def download(fetch: Callable[[], T], url: str, missing: str, how: str) -> T:
    """``fetch()``, which downloads from ``url``; a WeightsUnavailableError that says what is
    ``missing`` and ``how`` to get it where it cannot, without waiting on a dead network."""
    how += f"; weights: {RANDOM_WEIGHTS} runs it with random weights (tests, speed, no pictures)"
    if offline() or not reachable(url):
        raise WeightsUnavailableError(f"{missing} and cannot be downloaded here: {how}")
    try:
        with socket_timeout(DOWNLOAD_TIMEOUT_S):
            return fetch()
    except Exception as error:
        raise WeightsUnavailableError(f"{missing}; download failed ({error}): {how}") from error


def offline() -> bool:
    """HF_HUB_OFFLINE=1 is the usual way to say "never download"; it applies to all sources."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def reachable(url: str) -> bool:
    """A quick TCP connect, so that a machine without network fails at once, not after retries."""
    host = urllib.parse.urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
