"""`indexcalc serve` over plain HTTP: the API gives what the command line gives, the limits
hold, and only the page's own files are served (the browser tests are in test_serve_browser)."""
import http.client
import json
import re
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from indexcalc.cli import main
from indexcalc.serve import MAX_BODY, MAX_FIELD, compute, static_files, validate

from .served import Served

SLOW = "tr(" + " ".join(["X"] * 200) + ")"      # its Hessian takes about 30 s (tr(X^60): 3 s, too near the limit)


@pytest.fixture(scope="module")
def server():
    s = Served("--time-limit", "3")
    yield s
    s.stop()


def cli(capsys, *args):
    """The command line, in this process: (exit status, standard output, standard error)."""
    capsys.readouterr()
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def raw_get(server, path):
    """GET with the path sent as written (urllib would normalise ../)."""
    u = urlsplit(server.url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    return r.status, r.read()


def test_derive_is_the_json_of_the_command_line(server, rng, capsys):
    status, a = server.post({"command": "derive", "expr": "x^T B x", "wrt": "x"})
    assert status == 200 and a["ok"]
    assert a["derivation"] == json.loads(cli(capsys, "derive", "x^T B x", "--wrt", "x", "--format", "json")[1])
    r = a["derivation"]["results"][0]
    x, B = rng.standard_normal(4), rng.standard_normal((4, 4))
    got = eval(r["numpy"], {"np": np, "x": x, "B": B})          # the code the page offers to copy
    assert np.allclose(got, (B + B.T) @ x)
    rules = [s["rule"] for s in a["display"]["results"][0]["steps"]]
    assert rules[:2] == ["read as", "index"] and rules[-1] == "closed form"     # as the command line
    assert rules[:-1] == [s["rule"] for s in r["steps"] if s["rule"] != "closed form"]
    assert r["latex"] in a["display"]["results"][0]["steps"][-1]["latex"]


def test_backprop_and_second_derivative(server, rng):
    status, a = server.post({"command": "backprop", "expr": "Y = X W^T + b", "wrt": "W,b",
                             "where": "X: S×M, W: N×M, b: 1×N"})
    assert status == 200 and a["ok"]
    X, W, b, dY = rng.standard_normal((5, 3)), rng.standard_normal((2, 3)), rng.standard_normal((1, 2)), \
        rng.standard_normal((5, 2))
    env = {"np": np, "X": X, "W": W, "b": b, "dY": dY}
    dW, db = (eval(r["numpy"], env) for r in a["derivation"]["results"])
    assert np.allclose(dW, dY.T @ X) and np.allclose(np.reshape(db, (1, 2)), dY.sum(axis=0, keepdims=True))
    assert a["display"]["upstream"] and a["display"]["upstream_name"] == "dY"
    status, a = server.post({"command": "derive", "expr": "x^T B x", "wrt": "x", "order": 2})
    B = rng.standard_normal((3, 3))
    assert a["ok"] and np.allclose(eval(a["derivation"]["results"][0]["numpy"], {"np": np, "B": B}), B + B.T)


def test_check_gives_the_verdict_and_the_derivation(server, capsys):
    status, a = server.post({"command": "check", "expr": "x^T B x", "wrt": "x", "answer": "2 B x"})
    assert status == 200 and a["ok"]
    assert a["verdict"] == json.loads(cli(capsys, "check", "x^T B x", "--wrt", "x", "--answer", "2 B x",
                                          "--format", "json")[1])
    v = a["verdict"]
    assert v["correct"] is False and v["counterexample"]["claimed"] != pytest.approx(v["counterexample"]["actual"])
    assert a["derivation"]["results"][0]["closed_form"] == "(B + B^T) x" and a["claimed_latex"]
    _, a = server.post({"command": "check", "expr": "x^T B x", "wrt": "x", "answer": "B x + B^T x"})
    assert a["ok"] and a["verdict"]["correct"] is True


@pytest.mark.parametrize("args", [
    ("derive", "x^T B +", "x", ""),
    ("derive", "x^T B x", "y", ""),
    ("derive", "A x", "x", "A: n×m, x: k"),
    ("backprop", "x^T B x", "x", ""),
    ("derive", "x^T B x", "x", "x: n, B: m×m"),
])
def test_errors_are_the_command_lines(server, args, capsys):
    command, expr, wrt, where = args
    status, a = server.post({"command": command, "expr": expr, "wrt": wrt, "where": where})
    code, _, err = cli(capsys, command, expr, "--wrt", wrt, *(["--where", where] if where else []))
    assert code == 2 and status == 200 and not a["ok"] and a["status"] == 2
    assert a["error"] == err.strip()
    if expr.endswith("+"):
        assert a["error"].splitlines()[-1] == "  " + " " * len(expr) + "^"       # the caret


def test_missing_field(server):
    _, a = server.post({"command": "derive", "expr": "x^T x", "wrt": " "})
    assert not a["ok"] and "missing" in a["error"]
    _status, a = server.post({"command": "check", "expr": "x^T x", "wrt": "x"})
    assert not a["ok"] and "claimed answer is missing" in a["error"]


def test_nothing_typed_is_run_as_code(server, tmp_path):
    marker = tmp_path / "ran"
    for expr in [f"__import__('os').system('touch {marker}')", f"exec(\"open('{marker}','w')\")"]:
        status, a = server.post({"command": "derive", "expr": expr, "wrt": "x"})
        assert status == 200 and not a["ok"] and a["status"] == 2
    assert not marker.exists()


def test_size_limits(server):
    status, a = server.post({"command": "derive", "expr": " + ".join(["x"] * 700), "wrt": "x"})
    assert status == 413 and f"at most {MAX_FIELD}" in a["error"]
    status, a = server.post(b'{"command": "derive", "expr": "' + b"x" * (MAX_BODY + 1) + b'", "wrt": "x"}')
    assert status == 413 and f"at most {MAX_BODY}" in a["error"]
    status, a = server.post({"command": "derive", "expr": "x^T x", "wrt": "x"})     # still serving
    assert a["ok"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"command": "solve", "expr": "x", "wrt": "x"}',
                                  b'{"command": "derive", "expr": 3, "wrt": "x"}',
                                  b'{"command": "backprop", "expr": "Y = x", "wrt": "x", "order": 2}'])
def test_malformed_requests(server, body):
    status, a = server.post(body)
    assert status == 400 and not a["ok"]


def test_time_limit_never_stalls_the_others(server):
    """A derivation over the time limit is stopped with a message; meanwhile other requests
    are answered at once."""
    slow = {}

    def run_slow():
        t = time.monotonic()
        slow["answer"] = server.post({"command": "derive", "expr": SLOW, "wrt": "X", "order": 2})
        slow["seconds"] = time.monotonic() - t
    thread = threading.Thread(target=run_slow)
    thread.start()
    time.sleep(0.3)
    t = time.monotonic()
    status, a = server.post({"command": "derive", "expr": "sum(exp(x))", "wrt": "x"})
    quick = time.monotonic() - t
    thread.join(60)
    assert a["ok"] and quick < 3
    status, a = slow["answer"]
    assert status == 504 and "took longer than 3 s" in a["error"] and slow["seconds"] < 10


def test_a_stopped_worker_is_killed(server):
    """The stopped worker is killed, not left computing: no process of the server's tree is
    still busy a moment after the time limit."""
    server.post({"command": "derive", "expr": SLOW, "wrt": "X", "order": 2})
    time.sleep(0.5)
    children = subprocess.run(["ps", "-o", "pid=,stat=,pcpu=", "--ppid", str(server.proc.pid)],
                              capture_output=True, text=True, check=False).stdout.split()
    forkservers = children[::3]
    busy = []
    for pid in forkservers:
        out = subprocess.run(["ps", "-o", "pid=,stat=", "--ppid", pid], capture_output=True, text=True, check=False).stdout
        busy += [line for line in out.splitlines() if line.split()[1][0] in "RD"]
    assert not busy


def test_static_files_only(server):
    status, headers, body = server.get("/")
    assert status == 200 and b"<title>indexcalc</title>" in body
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    for path in ["/../serve.py", "/%2e%2e/serve.py", "/katex/../../serve.py", "/..%2f..%2fcli.py",
                 "//etc/passwd", "/web/index.html", "/katex/", "/app.js/", "/index.html%00", "/../../../etc/passwd"]:
        status, body = raw_get(server, path)
        assert status == 404, path
    assert server.post({}, path="api/other")[0] == 404


def test_the_page_loads_only_its_own_files(server):
    """Every file the page names (HTML, CSS url(), scripts) is served, and none is elsewhere."""
    web = Path(__file__).resolve().parents[1] / "indexcalc" / "web"
    html = (web / "index.html").read_text()
    names = re.findall(r'(?:src|href)="([^"?#]+)"', html)
    css = (web / "katex" / "katex.min.css").read_text()
    names += ["katex/" + u for u in re.findall(r"url\(([^)]+)\)", css)]
    assert len(names) > 60
    for name in names:
        assert not re.match(r"[a-z]+:|//", name), name
        status, _headers, body = server.get("/" + name)
        assert status == 200 and body, name
    for own in ["index.html", "app.js", "style.css"]:
        assert not re.search(r"https?:|//[a-z]", (web / own).read_text().replace("://", ":")
                             .replace("// ", "")), own
    assert "/katex/LICENSE" in static_files() and "/katex/katex.min.js" in static_files()


def test_compute_in_process():
    """The worker's function itself (no server): the steps in order, the boxed answer."""
    a = compute(validate({"command": "derive", "expr": "tr(V X W)", "wrt": "X",
                          "where": "V: n×m, X: m×p, W: p×n"}))
    assert a["ok"] and a["derivation"]["results"][0]["closed_form"] == "V^T W^T"
    steps = a["display"]["results"][0]["steps"]
    assert "\\boxed" in steps[-1]["latex"] and a["display"]["variables"].startswith("V: n×m")


def test_serve_options_are_checked(capsys):
    code, _, err = cli(capsys, "serve", "--port", "70000")
    assert code == 2 and "65535" in err
    for bad in ["0", "nan", "inf"]:
        code, _, err = cli(capsys, "serve", "--time-limit", bad)
        assert code == 2 and "time limit" in err


@pytest.mark.parametrize("req", [
    {"command": "derive", "expr": "Q^T Q", "wrt": "Q"},                            # index form only
    {"command": "derive", "expr": "log(sum(exp(x)))", "wrt": "x", "order": 2},     # two closed forms
    {"command": "backprop", "expr": "Y = softmax(X)", "wrt": "X"},
    {"command": "backprop", "expr": "L = -sum(T ∘ log(softmax(X))) / S", "wrt": "X", "where": "X: S×C, T: S×C"},
    {"command": "backprop", "expr": "Y_ij = sum_k X_ik W_jk", "wrt": "W"},        # index notation
    {"command": "derive", "expr": "sum_i x_i^2", "wrt": "x"},
    {"command": "check", "expr": "Y = X W^T + b", "wrt": "W", "where": "X: S×M, W: N×M, b: 1×N",
     "answer": "dY^T X"},
])
def test_every_kind_of_derivation_is_shown(req):
    a = compute(validate(req))
    assert a["ok"], a
    for shown, r in zip(a["display"]["results"], a["derivation"]["results"]):
        assert [s.get("answer", False) for s in shown["steps"]] == [False] * (len(shown["steps"]) - 1) + [True]
        assert "\\boxed" in shown["steps"][-1]["latex"] and shown["wrt"] == r["wrt"]
    assert a.get("verdict", {"correct": True})["correct"] is True


def test_readme_shows_the_page():
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "    indexcalc serve" in readme and "](docs/serve.png)" in readme
    assert (root / "docs" / "serve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_json_is_accepted(server):
    """A form or text/plain POST (which another site's page could send without asking) is refused."""
    u = urlsplit(server.url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("POST", "/api/run", body=json.dumps({"command": "derive", "expr": "x^T x", "wrt": "x"}),
              headers={"Content-Type": "text/plain"})
    assert c.getresponse().status == 415


def test_pip_install_ships_every_file_of_the_page():
    """pyproject's package-data globs match every file under indexcalc/web (the fonts too)."""
    import tomllib
    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["indexcalc"]
    web = root / "indexcalc" / "web"
    files = [p.relative_to(root / "indexcalc") for p in web.rglob("*") if p.is_file()]
    assert len(files) > 60
    for f in files:
        assert any(f.match(g) and len(f.parts) == len(Path(g).parts) for g in globs), f


def test_a_foreign_host_header_is_refused(server):
    """DNS rebinding: a page on evil.example whose name is re-pointed at 127.0.0.1 reaches the
    server with its own name in the Host header; that request is refused (403) before anything
    is served or computed. The server's own names, with its port, are served."""
    u = urlsplit(server.url)

    def ask(method, host, body=None):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        c.putrequest(method, "/api/run" if body else "/", skip_host=True, skip_accept_encoding=True)
        if host is not None:
            c.putheader("Host", host)
        if body:
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, r.read()

    run = json.dumps({"command": "derive", "expr": "x^T x", "wrt": "x"}).encode()
    for host in (f"evil.example:{u.port}", "evil.example", f"localhost:{u.port + 1}", f"127.0.0.1.evil.example:{u.port}",
                 f"user@localhost:{u.port}", "", None):
        assert ask("GET", host)[0] == 403, host
        status, body = ask("POST", host, run)
        assert status == 403 and b"Host" in body and b"2 x" not in body, host
    for host in (f"localhost:{u.port}", f"127.0.0.1:{u.port}", f"LOCALHOST:{u.port}", f"127.0.0.2:{u.port}", f"[::1]:{u.port}"):
        assert ask("GET", host)[0] == 200, host
        status, body = ask("POST", host, run)
        assert status == 200 and json.loads(body)["ok"], host
