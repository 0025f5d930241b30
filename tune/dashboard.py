"""``spikeloop study dashboard``: optuna-dashboard on a study's storage, served on loopback only.

The server is wsgiref's (single process, as ``optuna-dashboard`` itself runs it) bound to ``127.0.0.1``: the
dashboard can rename and delete studies, so it is never exposed beyond this machine (use an SSH tunnel).
"""
from __future__ import annotations

import socket
from wsgiref.simple_server import WSGIRequestHandler, make_server

from hw.config import ConfigError
from tune.config import StudyConfig
from tune.study import existing_study, storage_for

HOST = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):       # no access log on stderr
        pass


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_dashboard(sc: StudyConfig, port: int):
    """A WSGI server (not yet serving) of optuna-dashboard over ``sc.storage``; the study must exist."""
    from optuna_dashboard import wsgi
    existing_study(sc)                           # a clear error for a wrong --storage/--name
    app = wsgi(storage_for(sc.storage, create=False))
    try:
        return make_server(HOST, port, app, handler_class=_QuietHandler)
    except OSError as e:
        raise ConfigError(f"--port {port}: cannot listen on {HOST}:{port} ({e.strerror or type(e).__name__})")
