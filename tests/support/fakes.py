"""Hand-written fakes that wrap real parts and record what happened (no mock.patch)."""

from __future__ import annotations

import contextlib


class SimulatedCrash(BaseException):
    """The process died at this point: nothing after it runs, no cleanup handler
    that catches Exception sees it."""


class CrashingGateway:
    """A real gateway whose named call goes through, after which the process 'dies'
    before our code hears the answer: the gateway has acted, our commit never happens."""

    def __init__(self, inner, crash_after: str, times: int = 1):
        self.inner = inner
        self.crash_after = crash_after
        self.remaining = times
        self.calls: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def __getattr__(self, method):
        real = getattr(self.inner, method)
        if not callable(real):
            return real

        def call(*args, **kwargs):
            self.calls.append(method)
            result = real(*args, **kwargs)
            if method == self.crash_after and self.remaining > 0:
                self.remaining -= 1
                raise SimulatedCrash(f"crashed after {method}")
            return result

        return call


class FlakyGateway:
    """A real gateway whose named call first fails with `error` `failures` times."""

    def __init__(self, inner, method: str, error: Exception, failures: int = 1):
        self.inner = inner
        self.method = method
        self.error = error
        self.failures = failures
        self.calls: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def __getattr__(self, method):
        real = getattr(self.inner, method)
        if not callable(real):
            return real

        def call(*args, **kwargs):
            self.calls.append(method)
            if method == self.method and self.failures > 0:
                self.failures -= 1
                raise self.error
            return real(*args, **kwargs)

        return call


class InterleavingDatabase:
    """The real Database; `after(kind)` runs each time a "read" or "write" transaction
    through it has ended, in the thread that ran it: a second actor acting at one exact
    point between another's steps."""

    def __init__(self, db, after):
        self._db, self._after = db, after

    def __getattr__(self, name):
        return getattr(self._db, name)

    @contextlib.contextmanager
    def _transaction(self, kind: str):
        with getattr(self._db, kind)() as conn:
            yield conn
        self._after(kind)

    def read(self):
        return self._transaction("read")

    def write(self):
        return self._transaction("write")


class AfterNth:
    """An `after` for InterleavingDatabase: runs `action` once, when the `n`-th
    transaction of `kind` has ended; `done` says whether it ran."""

    def __init__(self, kind: str, n: int, action):
        self.kind, self.left, self.action, self.done = kind, n, action, False

    def __call__(self, kind: str) -> None:
        if kind != self.kind or self.done:
            return
        self.left -= 1
        if self.left == 0:
            self.done = True
            self.action()
