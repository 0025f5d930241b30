"""One test at a time picks a free loopback port and starts its server on it, across processes (the two worker
processes of scripts/test.sh, or two test runs): a port picked free (:func:`tune.dashboard.free_port`) stays free
only until someone else binds it, so between the pick and the server's bind no other test may pick one."""
import fcntl
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def loopback_lock():
    """Held from picking a port until the server listens on it (and while PostgreSQL is installed with apt-get,
    which two processes cannot run at once); released when the block ends or the process dies."""
    with open(Path(tempfile.gettempdir()) / "spikeloop-tests-loopback.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
