"""`indexcalc serve` in a subprocess for the tests: started on a free port, its log kept."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Served:
    def __init__(self, *args):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "indexcalc", "serve", "--port", "0", *args],
                                     cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, encoding="utf-8")
        first = self.proc.stderr.readline()
        if "serving http://" not in first:
            self.proc.kill()
            raise RuntimeError(f"indexcalc serve did not start: {first}{self.proc.stderr.read()}")
        self.url = first.split("serving ", 1)[1].split()[0]
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def statuses(self) -> list:
        """(path, HTTP status) of every request in the server's log."""
        out = []
        for line in self.log:
            if '"' in line:
                request, rest = line.split('"', 2)[1:]
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out.append((request.split(" ")[1] if " " in request else request, int(parts[0])))
        return out

    def post(self, body, path="api/run", timeout=60):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, (json.loads(text) if text.startswith(b"{") else text)

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        time.sleep(0)
