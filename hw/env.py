"""Environment variables set for a block of code: the one way spikeloop changes ``os.environ`` for a while
(the synthesis tools' paths in :func:`hw.synth.synthesize`, the worker processes' thread-pool sizes in
:mod:`tune.workers`). Standard library only, so the lightest module may use it."""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set for the block (processes started in it inherit them); afterwards each of
    those variables is as it was, unset again if it was unset, also when the block raises."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        os.environ.update(values)       # inside: a value it refuses (not a str) leaves none of the others set
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
