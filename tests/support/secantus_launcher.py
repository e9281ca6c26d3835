"""SecantusDB as the tests start it: `python -m secantus`, with a shorter transaction lifetime.

    python -m tests.support.secantus_launcher [--transaction-lifetime-seconds N] <secantus args>
    python tests/support/secantus_launcher.py ...   (the same, by path: what `command()` runs)

SecantusDB keeps a transaction whose client died (a service killed -9 mid-transaction)
until it has been idle for `transaction_lifetime_seconds` (60 s, mongod's default for
`transactionLifetimeLimitSeconds`); until then a write touching the same documents
conflicts, so every test that kills a process mid-burst waited about a minute for the
store to let go. Real MongoDB has the same knob and an operator may set it at runtime;
SecantusDB takes it only as a constructor argument (its CLI has no flag for it and
`setParameter` does not accept it), so this launcher passes it in and then runs the
ordinary CLI with the remaining arguments.

"Idle" is time since the transaction's last statement (secantus/transactions.py,
`_prune_locked`: `last_use` is refreshed by every statement, commit and abort), not
since it started; a live transaction of this codebase is never idle for more than a
fraction of a second between statements, and one reaped anyway fails its commit with a
TransientTransactionError that the driver retries. Only the tests shorten the lifetime:
`make run` and `bench/` run the store with its default, through the same
`desk_runtime.embedded_store` (which this launcher runs after setting the lifetime).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":
    # run by path, this folder is sys.path[0]: its modules (mail.py, metrics.py, ...) must
    # not shadow anything the store imports
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

#: the lifetime the tests run the store with unless told otherwise
DEFAULT_TEST_LIFETIME_SECONDS = 10.0
ENV_VAR = "DESK_TEST_STORE_TRANSACTION_LIFETIME_SECONDS"
FLAG = "--transaction-lifetime-seconds"


def command(*args: str) -> list[str]:
    """The argv that starts the store the way the tests do (secantus's own arguments).

    By path, so it works whatever the current directory is."""
    return [sys.executable, str(HERE / "secantus_launcher.py"), *args]


def split_args(argv: list[str]) -> tuple[float, list[str]]:
    """The lifetime (flag, else env var, else the test default) and secantus's arguments."""
    rest: list[str] = []
    value: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == FLAG:
            if i + 1 >= len(argv):
                raise SystemExit(f"{FLAG} needs a value")
            value = argv[i + 1]
            i += 2
            continue
        if arg.startswith(FLAG + "="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    lifetime = float(value) if value is not None else configured_lifetime()
    if lifetime <= 0:
        raise SystemExit(f"{FLAG} must be positive, not {value}")
    return lifetime, rest


def configured_lifetime() -> float:
    """The lifetime the tests use: the env var's, else 10 s."""
    return float(os.environ.get(ENV_VAR) or DEFAULT_TEST_LIFETIME_SECONDS)


def install(lifetime: float) -> None:
    """Every `SecantusDBServer` built from now on gets `lifetime` unless it is passed one."""
    from secantus.server import SecantusDBServer

    original = SecantusDBServer.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):  # noqa: N807 (wrapping the constructor)
        kwargs.setdefault("transaction_lifetime_seconds", lifetime)
        original(self, *args, **kwargs)

    SecantusDBServer.__init__ = __init__


def main(argv: list[str] | None = None) -> int:
    lifetime, rest = split_args(sys.argv[1:] if argv is None else argv)
    install(lifetime)
    # the store as the product runs it (desk_runtime.embedded_store), lifetime aside
    from desk_runtime.embedded_store import main as run_store

    return run_store(rest)


if __name__ == "__main__":
    raise SystemExit(main())
