"""Start moto in server mode with this project's ECR additions.

    python moto_launcher.py [--host 127.0.0.1] [--port 0] [--log-file PATH]
                            [--stdin-watch auto|on|off] [--verbose]

Port 0 picks a free port.  Once the server answers, exactly one line is
printed to stdout:

    READY http://127.0.0.1:PORT

after which stdout is pointed at stderr, so a parent that stops reading
stdout cannot block the server.  The server stops on SIGTERM or SIGINT, and
(with the default ``--stdin-watch auto``, when stdin is a pipe or socket) when
stdin reaches end of file: a test process that spawns the launcher with a
piped stdin and dies takes the server with it.

The server is moto's own Flask application, with the additions of
``moto_ecr_ext`` (paging, pull through cache rules, ...), ``moto_ecr_public_ext``
(Amazon ECR Public, which moto lacks), ``moto_sts_ext`` (AssumeRole refused
by the trust policy of an existing role; how to reach other accounts) and
``EcrExtMiddleware`` (fault switch and call counters under
``/moto-api/ecr-ext/``), served by werkzeug with one thread per connection.
``Middleware`` below adds a count of the injected faults actually served
(``GET /moto-api/ecr-ext/calls/served``): a fault that never hit a call
proves nothing.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from typing import Any, Callable
from urllib.parse import parse_qs
import signal
import stat
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import moto_ecr_ext  # noqa: E402  (patches moto's ECR classes on import)
import moto_ecr_public_ext  # noqa: E402,F401  (registers ECR Public on import)
import moto_sts_ext  # noqa: E402,F401  (AssumeRole checks trust policies on import)
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import ThreadedWSGIServer  # noqa: E402


class Server(ThreadedWSGIServer):
    # Clients (the operator's SDK) open a new connection per request, since
    # werkzeug closes each; socketserver's default backlog of 5 would drop
    # bursts of concurrent connects.
    request_queue_size = 256
    daemon_threads = True


def served_label(service: str, fault: Any) -> str:
    """How a served fault is counted: ``latency:<ms>ms``, or the kind and
    the error code the call was answered with (``throttle:ThrottlingException``,
    ``server_error:ServerException``, ``server_error:ServiceUnavailableException``)."""
    if fault.kind == "latency":
        return f"latency:{fault.latency_ms:g}ms"
    if fault.kind == "throttle":
        code = fault.error_code or "ThrottlingException"
    else:
        code = fault.error_code or moto_ecr_ext.SERVER_ERROR_CODES.get(service, "InternalFailure")
    return f"{fault.kind}:{code}"


class Middleware(moto_ecr_ext.EcrExtMiddleware):
    """``EcrExtMiddleware`` with a count of the faults it served.

    ``GET /moto-api/ecr-ext/calls/served`` (``?service=`` as for ``calls``):
    ``{"<Operation>": {"<label>": n, ...}, ...}``, how many calls of each
    operation each injected fault hit, labelled by ``served_label``.  A fault
    counts when it fired: an error answered the call, or a latency delayed
    it; a fault defined but expired, cleared or lost unserved counts nothing.
    ``DELETE .../calls`` and ``POST /moto-api/reset`` reset it with the other
    counters.
    """

    def __init__(self, app: Callable[..., Any]):
        super().__init__(app)
        # Held around each decision (and each new fault), so that what fired
        # for one call is told apart from what fired for another.
        self._served_lock = threading.Lock()
        self._served: dict[str, dict[str, Counter[str]]] = {}

    def reset(self) -> None:
        super().reset()
        with self._served_lock:
            self._served.clear()

    def add_fault(self, spec: dict[str, Any]) -> Any:
        with self._served_lock:
            return super().add_fault(spec)

    def _decide(self, service: str, operation: str) -> tuple[float, Any]:
        with self._served_lock:
            faults = list(self._faults)
            before = [fault.injected for fault in faults]
            decision = super()._decide(service, operation)
            for fault, injected in zip(faults, before):
                if fault.injected > injected:
                    counts = self._served.setdefault(service, {}).setdefault(operation, Counter())
                    counts[served_label(service, fault)] += 1
        return decision

    def _control(
        self, environ: dict[str, Any], start_response: Callable[..., Any], sub: str, method: str
    ) -> list[bytes]:
        path = sub.rstrip("/")
        if path == "/calls/served" and method == "GET":
            service = parse_qs(environ.get("QUERY_STRING", "")).get("service", ["ecr"])[0]
            with self._served_lock:
                served = {op: dict(counts) for op, counts in self._served.get(service, {}).items()}
            return moto_ecr_ext._json(start_response, 200, served)
        if path == "/calls" and method == "DELETE":
            with self._served_lock:
                self._served.clear()
        return super()._control(environ, start_response, sub, method)


class QuietRequestHandler(MotoRequestHandler):
    """Moto's request handler without the access log (errors still logged)."""

    def log_request(self, code: object = "-", size: object = "-") -> None:
        pass


def _watch_stdin(enabled: str) -> bool:
    if enabled != "auto":
        return enabled == "on"
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _wait_for_stdin_eof(stop: threading.Event) -> None:
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    stop.set()


def _wait_until_answering(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/moto-api/ecr-ext/faults", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--log-file", help="write stderr (errors, tracebacks) here")
    parser.add_argument("--stdin-watch", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    if args.log_file:
        log = open(args.log_file, "ab", buffering=0)
        os.dup2(log.fileno(), 2)

    app = Middleware(DomainDispatcherApplication(create_backend_app))
    handler = MotoRequestHandler if args.verbose else QuietRequestHandler
    server = Server(args.host, args.port, app, handler=handler)
    host, port = server.server_address[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    _wait_until_answering(url)

    sys.stdout.write(f"READY {url}\n")
    sys.stdout.flush()
    # From here on anything printed (moto prints a few warnings) goes to stderr.
    os.dup2(2, 1)

    if _watch_stdin(args.stdin_watch):
        threading.Thread(target=_wait_for_stdin_eof, args=(stop,), daemon=True).start()
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
