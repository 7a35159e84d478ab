"""`indexcalc serve`: a local web page for derive, backprop and check (SPEC §2).

The page (indexcalc/web/: index.html, app.js, style.css, and KaTeX vendored with its licence)
loads nothing from the internet and calls one JSON endpoint, POST /api/run. The server answers
GET only for the files under web/ (a table made at start, so no path from a request ever
reaches the file system) and sends a strict Content-Security-Policy with every response.

Each request runs in a worker process of its own, killed when it is over the time limit:
SymPy's work cannot be interrupted in a thread, and one slow request must not stall the other
tabs. The workers fork from a forkserver that has imported the pipeline once, so a request
does not pay for importing SymPy. What the user types goes only through indexcalc's parser,
exactly as on the command line; the answer is the command line's `--format json` output
(output.derive_json, Verdict.json) with the LaTeX the page renders beside it."""
from __future__ import annotations

import ipaddress
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

WEB = Path(__file__).with_name("web")
COMMANDS = ("derive", "backprop", "check")
MAX_FIELD = 2000            # characters of one input field (an expression, --where, --answer)
MAX_BODY = 16 * 1024        # bytes of one request
TIME_LIMIT = 30.0           # seconds of one derivation
PRELOAD = ["indexcalc.serve", "indexcalc.pipeline", "indexcalc.check", "indexcalc.output",
           "indexcalc.fold", "indexcalc.printing.latex", "indexcalc.index_pipeline"]

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".woff2": "font/woff2",
                 ".woff": "font/woff", ".ttf": "font/ttf", "": "text/plain; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cross-Origin-Resource-Policy": "same-origin"}


class RequestError(Exception):
    """A request the server refuses before any work: (HTTP status, the message shown)."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


# ---- the work (in a worker process) ---------------------------------------------------------

def validate(req) -> dict:
    """The request as the fields of one command, or RequestError. Only sizes and kinds are
    checked here; the text itself goes to the parser, which says what is wrong with it."""
    if not isinstance(req, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "the request is not a JSON object")
    command = req.get("command", "derive")
    if command not in COMMANDS:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"unknown command {command!r} (one of {', '.join(COMMANDS)})")
    out = {"command": command}
    needed = {"expr": True, "wrt": True, "where": False, "answer": command == "check"}
    words = {"expr": "the expression", "wrt": "--wrt", "where": "--where", "answer": "the claimed answer"}
    for name, required in needed.items():
        value = req.get(name) or ""
        if not isinstance(value, str):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{words[name]} must be text")
        if len(value) > MAX_FIELD:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"indexcalc: error: {words[name]} is {len(value)} characters long; "
                               f"the page takes at most {MAX_FIELD} (the command line has no limit)")
        if required and not value.strip():
            what = "the variable(s) to differentiate by" if name == "wrt" else words[name]
            # an input the user has yet to type: shown like the command's own errors (200)
            raise RequestError(HTTPStatus.OK, f"indexcalc: error: {what} is missing")
        out[name] = value
    order = req.get("order", 1)
    if order not in (1, 2, "1", "2") or (order in (2, "2") and command != "derive"):
        raise RequestError(HTTPStatus.BAD_REQUEST, "order is 1 or 2, and 2 only for derive")
    out["order"] = int(order)
    return out


def compute(req: dict) -> dict:
    """One validated request -> the answer the page shows: {"ok": true, ...} or
    {"ok": false, "error": the command line's message, "status": its exit status}."""
    from .errors import describe
    try:
        return {"ok": True, **_COMPUTE[req["command"]](req)}
    except Exception as e:  # noqa: BLE001 - the user sees the message, never a traceback
        message, status = describe(e)
        return {"ok": False, "error": message, "status": status}


def _derive(req) -> dict:
    from .pipeline import derive
    return _shown(derive(req["expr"], req["wrt"], req["where"] or None, order=req["order"]), "derive")


def _backprop(req) -> dict:
    from .pipeline import backprop
    return _shown(backprop(req["expr"], req["wrt"], req["where"] or None), "backprop")


def _check(req) -> dict:
    """check's verdict (as `check --format json` gives it), and the derivation it compared
    the claim with (derived once), shown as `derive` or `backprop` shows it."""
    from .check import compare, reference
    from .from_index_notation import is_equation
    from .printing.latex import to_latex
    ref = reference(req["expr"], req["wrt"], req["where"] or None)
    v = compare(ref, req["answer"])
    d = ref.derivation
    with d.latex_context():
        claimed = to_latex(v.claimed) if v.claimed is not None else ""
    command = "backprop" if is_equation(req["expr"]) else "derive"
    return {"verdict": v.json(), "claimed_latex": claimed, **_shown(d, command)}


def _shown(d, command) -> dict:
    """A derivation as `--format json` gives it, and as the page typesets it."""
    from . import output
    return {"derivation": json.loads(output.derive_json(d, command)), "display": display(d)}


_COMPUTE = {"derive": _derive, "backprop": _backprop, "check": _check}


def display(d) -> dict:
    """What the page typesets: the input as an equation, and for each result its steps in
    order (the rule, the row in LaTeX as the LaTeX output writes it, the rule used beside it)
    and the boxed answer."""
    from . import nodes as N
    from . import output
    from .printing.latex import symbol, to_latex
    from .shapes import show_shape
    with d.latex_context():
        if d.output is not None and d.rhs is not None:
            given = f"{symbol(d.output, d.rhs.is_scalar)} = {to_latex(d.rhs)}"
        elif d.output is None and d.tree != N.Sym(d.name, d.tree.shape):
            given = f"{d.name} = {to_latex(d.tree)}"
        else:                           # index notation: the page shows the input as typed
            given = ""
        results = []
        for r in d.results:
            first = next((s for s in r.steps if s.rule == "index"), None)
            goal = [{"rule": "index", "latex": first.latex, "note": ""}] if first is not None else []
            steps = []
            for rule, lhs, rhs, note in output.derivation_rows(d, r, with_rule=True):
                steps.append({"rule": rule, "latex": output.align_rows([(lhs, rhs, "")], env="aligned"),
                              "note": note})
            # the steps in the command line's order: the input as read first (SPEC §1.1), then
            # the derivative indexed
            at = 1 if steps and steps[0]["rule"] == "read as" else 0
            steps[at:at] = goal
            lhs, rhs = output.answer_latex(d, r)
            steps.append({"rule": "closed form" if r.closed is not None else "index form",
                          "latex": fr"{lhs} = \boxed{{{rhs}}}", "note": "", "answer": True})
            shape = show_shape(r.closed.shape) if r.closed is not None else "×".join(map(str, r.shape))
            results.append({"wrt": r.wrt, "steps": steps, "shape": shape})
    upstream = (fr"\frac{{\partial L}}{{\partial {symbol(d.output, False)}}}"   # an array: a scalar
                if d.upstream else "")           # output has none; named d.upstream in the NumPy code
    return {"given": given, "upstream": upstream, "upstream_name": d.upstream or "", "variables": output.declarations(d), "results": results}


def _worker(req, conn, time_limit) -> None:
    if hasattr(signal, "alarm"):        # ends the worker even if the server that waits for it has gone
        signal.alarm(math.ceil(time_limit) + 1)
    signal.signal(signal.SIGINT, signal.SIG_DFL)    # Ctrl-C in the terminal: end, no traceback
    try:
        conn.send(compute(req))
    finally:
        conn.close()


def run_limited(req: dict, time_limit: float) -> dict | None:
    """compute(req) in a worker process; None if it is not done within time_limit seconds
    (the worker is killed). A worker that dies without an answer is an internal error."""
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_worker, args=(req, send, time_limit), daemon=True)
    worker.start()
    send.close()
    try:
        if not receive.poll(time_limit):
            return None
        return receive.recv()
    except EOFError:
        return {"ok": False, "status": 3, "error": "indexcalc: internal error (a bug, please report "
                                                   "it): the worker process ended without an answer"}
    finally:
        receive.close()
        worker.join(0.5)
        if worker.is_alive():
            worker.kill()
            worker.join()


_CONTEXT = None


def _context():
    """forkserver (single-threaded, the pipeline imported once) where the platform has it."""
    global _CONTEXT
    if _CONTEXT is None:
        if "forkserver" in multiprocessing.get_all_start_methods():
            _CONTEXT = multiprocessing.get_context("forkserver")
            _CONTEXT.set_forkserver_preload(PRELOAD)
            from multiprocessing import forkserver
            forkserver.ensure_running()
        else:
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def strict_json(value) -> bytes:
    """JSON without NaN or Infinity (SPEC §4): a number that is not finite becomes its text."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(value), ensure_ascii=False, allow_nan=False).encode("utf-8")


# ---- the HTTP server ------------------------------------------------------------------------

def static_files(root: Path = WEB) -> dict:
    """{URL path: file} of every file the page may load: a fixed table, made once."""
    files = {"/" + p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}
    files["/"] = root / "index.html"
    return files


class Handler(BaseHTTPRequestHandler):
    def version_string(self):
        return "indexcalc"
    protocol_version = "HTTP/1.1"

    def parse_request(self) -> bool:
        """Every request names this server in its Host header: a page on another site whose
        name the attacker re-points at 127.0.0.1 (DNS rebinding) sends its own name, and is
        refused (403) before anything is served or computed."""
        if not super().parse_request():
            return False
        if not self.server.host_allowed(self.headers.get("Host")):
            self.close_connection = True
            self._send(HTTPStatus.FORBIDDEN, b"indexcalc: the request's Host header does not name this "
                       b"server (use http://localhost:PORT/ or http://127.0.0.1:PORT/)\n", CONTENT_TYPES[""])
            return False
        return True

    def do_GET(self):
        path = urlsplit(self.path).path
        file = self.server.files.get(path)
        if file is None:
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", CONTENT_TYPES[""])
        body = file.read_bytes()
        cache = "no-cache" if file.suffix in (".html", ".js", ".css") else "max-age=86400"
        self._send(HTTPStatus.OK, body, CONTENT_TYPES.get(file.suffix, CONTENT_TYPES[""]),
                   {"Cache-Control": cache})

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        if urlsplit(self.path).path != "/api/run":
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", CONTENT_TYPES[""])
        try:
            answer = self.server.answer(self._read_json())
            status = HTTPStatus.OK         # the command's answer, an error message among them
        except RequestError as e:
            answer, status = {"ok": False, "error": str(e), "status": 2}, e.status
        self._send(status, strict_json(answer), "application/json; charset=utf-8")

    def _read_json(self):
        # JSON only: a page elsewhere cannot send that without the browser asking first (CORS)
        if self.headers.get_content_type() != "application/json":
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the request must be application/json")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "the request has no Content-Length") from None
        if length > MAX_BODY:
            self.close_connection = True        # the body is not read
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"indexcalc: error: the input is {length} bytes long; the page takes "
                               f"at most {MAX_BODY} (the command line has no limit)")
        try:
            return json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the request is not JSON") from None

    def _send(self, status, body: bytes, content_type: str, extra=None):
        self.send_response(status)
        for k, v in {**HEADERS, "Content-Type": content_type, "Content-Length": str(len(body)),
                     **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, time_limit: float = TIME_LIMIT, workers: int | None = None):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.files = static_files()
        self.time_limit = time_limit
        self.slots = threading.BoundedSemaphore(workers or max(2, os.cpu_count() or 2))

    def host_allowed(self, host: str | None) -> bool:
        """Whether a Host header names this server: `localhost` or a loopback address, or the
        address it listens on (any address when it listens on all of them: an address typed
        by the user cannot be re-pointed), with the port it listens on (no port: 80)."""
        if not host:
            return False
        try:
            u = urlsplit("//" + host.strip())
            name, port = u.hostname, u.port or 80
        except ValueError:
            return False
        if name is None or port != self.server_address[1] or u.username is not None or u.password is not None:
            return False
        if name == "localhost":
            return True
        try:
            addr = ipaddress.ip_address(name)
        except ValueError:
            return False                  # a name other than localhost: what DNS rebinding uses
        try:
            bound = ipaddress.ip_address(self.server_address[0])
        except ValueError:
            bound = None
        return addr.is_loopback or addr == bound or (bound is not None and bound.is_unspecified)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def answer(self, req) -> dict:
        req = validate(req)
        if not self.slots.acquire(timeout=self.time_limit):
            raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, "indexcalc: error: the server is busy "
                                                               "with other derivations; try again")
        try:
            answer = run_limited(req, self.time_limit)
        finally:
            self.slots.release()
        if answer is None:
            raise RequestError(HTTPStatus.GATEWAY_TIMEOUT,
                               f"indexcalc: error: the derivation took longer than {self.time_limit:g} s, "
                               "the page's time limit, and was stopped (the command line has no limit)")
        return answer


def serve(host: str = "127.0.0.1", port: int = 8000, time_limit: float = TIME_LIMIT) -> int:
    from .errors import IndexCalcError
    if not 0 <= port <= 65535:
        raise IndexCalcError(f"--port {port}: a port is a number from 0 to 65535 (0: any free port)")
    if not 0 < time_limit < math.inf:
        raise IndexCalcError(f"--time-limit {time_limit:g}: the time limit is a number of seconds above 0")
    try:
        server = Server((host, port), time_limit)
    except OSError as e:
        raise IndexCalcError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    _context()                          # the forkserver starts now, not at the first request
    print(f"indexcalc: serving {server.url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt         # `kill` stops the server as Ctrl-C does
