"""A throwaway localstripe (a fake of Stripe's API) for the test session.

`running_localstripe()` starts ``python -m localstripe --port PORT --from-scratch``
on a free port, waits until it answers HTTP and yields its base URL,
``http://127.0.0.1:PORT``, for `StripeGateway(api_base=...)` / STRIPE_API_BASE. On
exit the process is terminated (killed if it does not stop within a few seconds).

`localstripe_url` is the session-scoped pytest fixture built on it; mark the tests
that use it with ``pytest.mark.stripe``.

If ORDERS_TEST_LOCALSTRIPE_URL is set, that server is used instead and nothing is
started.

What to know about localstripe (1.15):
  * it listens on all interfaces ('::', IPv4 and IPv6); we only ever talk to 127.0.0.1;
  * it accepts any API key that starts with ``sk_`` (not ``rk_``) and ignores
    Idempotency-Key headers;
  * after every change it pickles its whole store to /tmp/localstripe.pickle (a
    fixed path). ``--from-scratch`` stops it from loading that file at start, so
    parallel sessions never see each other's objects, but they do overwrite it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

EXTERNAL_URL_ENV = "ORDERS_TEST_LOCALSTRIPE_URL"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class LocalstripeUnavailable(RuntimeError):
    """localstripe is not installed, or it would not start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Straight to the loopback port, whatever HTTP_PROXY says.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers_http(url: str) -> bool:
    try:
        # No key: localstripe answers 401, which is an answer all the same.
        with _DIRECT.open(f"{url}/v1/payment_intents", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


def _start(workdir: Path, attempt: int) -> tuple[subprocess.Popen, str, Path]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / f"localstripe-{attempt}.log"
    # Output goes to a file, not a pipe: localstripe logs every request, and a pipe
    # nobody reads would fill up and freeze it.
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return proc, url, log_path


@contextlib.contextmanager
def running_localstripe() -> Iterator[str]:
    """Yield the base URL of a localstripe started for the caller, stopped afterwards."""
    external = os.environ.get(EXTERNAL_URL_ENV, "").strip().rstrip("/")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="localstripe-") as tmp:
        workdir = Path(tmp)
        problem = "it did not start"
        for attempt in range(1, 4):  # a free port can be taken before localstripe binds it
            proc, url, log_path = _start(workdir, attempt)
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while proc.poll() is None and not _answers_http(url):
                    if time.monotonic() > deadline:
                        problem = (
                            f"it did not answer on {url} within {START_TIMEOUT:.0f}s:\n{_tail(log_path)}"
                        )
                        break
                    time.sleep(0.1)
                else:
                    if proc.poll() is None:
                        yield url
                        return
                    # It exited: most likely the port was taken; try another one.
                    problem = f"it exited with status {proc.returncode}:\n{_tail(log_path)}"
                    continue
                break  # timed out: a retry would not do better
            finally:
                _stop(proc)
        raise LocalstripeUnavailable(
            f"Could not start localstripe ({sys.executable} -m localstripe): {problem}"
        )


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """Base URL (http://127.0.0.1:PORT) of the session's localstripe."""
    with running_localstripe() as url:
        yield url
