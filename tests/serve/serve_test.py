#!/usr/bin/env python3
"""hako serve and hako vm against src/serve/openapi.yaml, with real VMs running the project's test guests.

The daemon runs with a unix socket and a TCP listener (bearer token). VMs: the poweroff guest in button mode
(prints READY, powers off on the ACPI power button) and the uart guest (prints READY, answers the line "ping" with
"pong", then exits through isa-debug-exit with status 1). The test covers:
  - every reply's status is one the contract lists for the path and method, and its JSON matches the schema;
  - the socket's mode (0600); TCP without the token or with a wrong one is 401, with it 200; the token as
    ?access_token= only on the event stream, the console and the vnc WebSocket (elsewhere 401);
  - the vnc WebSocket (the graphical console): 400 without an Upgrade, 409 for a VM without VNC, 404 for none
    (tests/web/web_test.mjs shows a real one in noVNC);
  - the web UI's files (--web-dir, a stand-in made here): / and its assets without the token, with their content
    types and a CSP; hidden files, subdirectories, symlinks, unknown extensions and traversal refused (404);
  - a running VM's usage figures (CPU time, resident memory) from procfs, null once stopped;
  - validation: VM names, disk paths (traversal, relative, ',' injection), unknown keys, bad values, not JSON: 400;
    unknown VM 404; unknown endpoint 404; wrong method 405;
  - the lifecycle: create, start, console output (console-log and the WebSocket), pause/resume and their 409s,
    edit and delete refused while running (409), shutdown through the power button (exit status 0), edit, clone,
    disk-create (a qcow2 image in images/), delete; the event stream shows each state change;
  - clone without blocking the daemon: a VM with a 4 GiB sparse raw image (a few data blocks) is cloned while the
    daemon's copy thread is held stopped (ptrace on that one thread), so the copy is in progress for certain: the
    API, GET /images, a new event stream, another VM's start and its console WebSocket are served meanwhile, the
    clone is listed as cloning, the clone request has no answer yet, and conflicting operations are 409 (start,
    edit, delete of the source; the new name taken; anything on the clone); released, the request answers 201, the
    copy has the source's size and data with its holes kept (st_blocks), and the clone boots. A clone whose source
    image is gone is a clear 500 that leaves no files; a daemon stopped during a copy removes the partial file and
    the clone does not exist afterwards;
  - console input through the WebSocket reaches the guest (uart: ping -> pong);
  - stop escalation: a guest that ignores the power button is powered off through its API after the timeout;
  - concurrent start/kill requests on one VM: every reply is 2xx or 409 with an error, and the VM ends consistent;
  - a VM process killed from outside: crashed with signal 9; with restart on-failure it is started again;
  - the daemon restarted while a VM runs: the VM survives, the new daemon re-attaches (same pid, running), pauses,
    resumes and shuts it down;
  - the CLI: hako vm list/show/create/start/stop/console/delete, --json, errors with exit status 1.
usage: serve_test.py HAKO GUEST_DIR
"""
import base64
import ctypes
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = yaml.safe_load(open(os.path.join(HERE, "..", "..", "src", "serve", "openapi.yaml")))
BASE = "/api/v1"
failures = []
WAIT = 90  # seconds any single wait may take before the test gives up on it (a bound, not an assertion on speed)


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)


def connect(where):
    if isinstance(where, tuple):
        s = socket.create_connection(where, timeout=60)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(where)
    return s


def http(where, method, path, body=None, raw_body=None, headers=None, declared_length=None):
    """One request; returns (status, JSON or None, raw bytes, head)."""
    s = connect(where)
    data = raw_body if raw_body is not None else (b"" if body is None else json.dumps(body).encode())
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    length = len(data) if declared_length is None else declared_length
    s.sendall((f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}"
               f"Content-Length: {length}\r\n\r\n").encode() + data)
    resp = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        resp += chunk
    s.close()
    head, _, payload = resp.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    parsed = None
    if b"application/json" in head.lower() and payload.strip():
        parsed = json.loads(payload)
    return status, parsed, payload, head.decode(errors="replace")


def node_ref(ref):
    return ref.lstrip("#/").split("/")


def deref(node):
    while isinstance(node, dict) and "$ref" in node:
        target = SPEC
        for part in node_ref(node["$ref"]):
            target = target[part]
        node = target
    return node


def validate(schema, value, where="$"):
    """The JSON Schema subset the contract uses: type, nullable, required, properties, items, enum, minimum, allOf."""
    schema = deref(schema)
    problems = []
    if "allOf" in schema:
        for sub in schema["allOf"]:
            problems += validate(sub, value, where)
        return problems
    if value is None and schema.get("nullable"):
        return []
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    t = schema.get("type")
    if t:
        ok = isinstance(value, types[t]) and not (t in ("integer", "number") and isinstance(value, bool))
        if not ok:
            return [f"{where}: expected {t}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{where}: {value} < {schema['minimum']}")
    if t == "object":
        for r in schema.get("required", []):
            if r not in value:
                problems.append(f"{where}: missing {r}")
        for k, v in value.items():
            if k in schema.get("properties", {}):
                problems += validate(schema["properties"][k], v, f"{where}.{k}")
    if t == "array":
        for i, item in enumerate(value):
            problems += validate(schema.get("items", {}), item, f"{where}[{i}]")
    return problems


def spec_op(path, method):
    """The contract's operation for a concrete path (/vms/x/start matches /vms/{name}/start)."""
    rel = path.split("?")[0][len(BASE):]
    for p, item in SPEC["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), rel):
            return item.get(method.lower())
    return None


seen_ops = set()


def api(where, method, path, body=None, raw_body=None, headers=None, expect=None, what=None):
    """A request checked against the contract: the status is listed for the operation, the body matches."""
    status, parsed, raw, head = http(where, method, path, body, raw_body, headers)
    what = what or f"{method} {path}"
    op = spec_op(path, method)
    if op is not None:
        seen_ops.add((spec_key(path), method.lower()))
        responses = op["responses"]
        if str(status) not in responses and status not in (401, 405, 413):
            check(False, f"{what}: status {status} is in the contract ({', '.join(responses)})")
        r = deref(responses.get(str(status), {}))
        schema = r.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            problems = validate(schema, parsed)
            if problems:
                check(False, f"{what}: body matches the schema ({problems})")
    if status >= 400:
        if not (isinstance(parsed, dict) and isinstance(parsed.get("error"), str)):
            check(False, f"{what}: a {status} has a JSON error body ({raw[:200]!r})")
    if expect is not None:
        check(status == expect, f"{what} -> {expect} (got {status}: {raw[:200].decode(errors='replace').strip()})")
    return status, parsed, raw


def spec_key(path):
    rel = path.split("?")[0][len(BASE):]
    for p in SPEC["paths"]:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), rel):
            return p
    return rel


def wait_until(fn, what, seconds=WAIT):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    check(False, f"{what} (gave up waiting after {seconds} s)")
    return None


class Events:
    """The server-sent event stream, collected on a thread."""

    def __init__(self, where):
        self.events = []
        self.lock = threading.Lock()
        self.sock = connect(where)
        self.sock.settimeout(None)
        self.sock.sendall(f"GET {BASE}/events HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n\n" in buf:
                msg, buf = buf.split(b"\n\n", 1)
                fields = {}
                for line in msg.decode().split("\n"):
                    if line.startswith(":") or ":" not in line:
                        continue
                    k, v = line.split(":", 1)
                    fields[k] = v.strip()
                if "event" in fields:
                    with self.lock:
                        self.events.append((fields["event"], json.loads(fields["data"])))

    def states(self, name):
        with self.lock:
            return [d["state"] for e, d in self.events if e == "vm" and d["name"] == name]

    def has(self, event, name):
        with self.lock:
            return any(e == event and d["name"] == name for e, d in self.events)

    def close(self):
        self.sock.close()


class WebSocket:
    """A minimal WebSocket client (RFC 6455) for the console endpoint."""

    def __init__(self, where, path):
        self.sock = connect(where)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        self.status = int(head.split(b" ")[1]) if head else 0
        self.data = b""
        self.lock = threading.Lock()
        if self.status == 101:
            threading.Thread(target=self.run, daemon=True).start()

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def run(self):
        try:
            while True:
                b0, b1 = self.recv_exact(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack(">H", self.recv_exact(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", self.recv_exact(8))[0]
                payload = self.recv_exact(n)
                if b0 & 0x0F in (1, 2, 0):
                    with self.lock:
                        self.data += payload
                elif b0 & 0x0F == 8:
                    return
        except (EOFError, OSError):
            return

    def send(self, data):
        mask = os.urandom(4)
        header = bytes([0x82])
        header += bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + struct.pack(">H", len(data))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def text(self):
        with self.lock:
            return self.data.decode(errors="replace")

    def close(self):
        self.sock.close()


class Daemon:
    def __init__(self, hako, tmp, port, token_file, web_dir):
        self.hako, self.tmp, self.port, self.token_file, self.web_dir = hako, tmp, port, token_file, web_dir
        self.sock = os.path.join(tmp, "hako.sock")
        self.state = os.path.join(tmp, "state")
        self.log = os.path.join(tmp, "serve.log")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.hako, "serve", "--socket", self.sock, "--state-dir", self.state, "--listen",
                                      f"127.0.0.1:{self.port}", "--token-file", self.token_file,
                                      "--web-dir", self.web_dir],
                                     stdin=subprocess.DEVNULL, stdout=open(self.log, "a"), stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                return True
            try:
                return http(self.sock, "GET", BASE + "/version")[0] == 200
            except OSError:
                return False
        wait_until(up, "the daemon answers")
        check(self.proc.poll() is None, "the daemon runs")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        check(rc == 0, f"the daemon exits 0 on SIGTERM ({rc})")


def vm_state(d, name):
    status, body, _, _ = http(d.sock, "GET", f"{BASE}/vms/{name}")
    return body if status == 200 else None


def wait_state(d, name, states, what):
    return wait_until(lambda: (lambda v: v if v and v["state"] in states else None)(vm_state(d, name)), what)


def wait_ready(s, name, pid):
    """Waits for READY in the console log after the daemon's marker for run `pid`."""
    marker = f"--- hako serve: started pid {pid} ---".encode()
    wait_until(lambda: b"READY" in http(s, "GET", f"{BASE}/vms/{name}/console-log")[2].rpartition(marker)[2]
               and marker in http(s, "GET", f"{BASE}/vms/{name}/console-log")[2], f"{name} (pid {pid}) is up")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is not alive.
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
LIBC.ptrace.restype = ctypes.c_long
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT, WALL = 17, 0x4206, 0x4207, 0x40000000


def thread_of(pid, comm):
    """The id of the thread of process `pid` named `comm`, or None."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            if open(f"/proc/{pid}/task/{tid}/comm").read().strip() == comm:
                return int(tid)
        except OSError:
            pass
    return None


class FrozenThread:
    """Holds one thread of a child process stopped (ptrace: seize, interrupt), the rest of the process running."""

    def __init__(self, tid):
        self.tid = tid
        if LIBC.ptrace(PTRACE_SEIZE, tid, None, None) != 0 or LIBC.ptrace(PTRACE_INTERRUPT, tid, None, None) != 0:
            raise OSError(ctypes.get_errno(), f"ptrace of thread {tid}: {os.strerror(ctypes.get_errno())}")
        os.waitpid(tid, WALL)  # the thread is in its ptrace stop once this returns
        self.frozen = True

    def release(self):
        if self.frozen:
            self.frozen = False
            check(LIBC.ptrace(PTRACE_DETACH, self.tid, None, None) == 0, f"the frozen thread {self.tid} is released")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sse_status(where, path):
    """The status of a GET of the event stream (which does not end): the first line only."""
    sock = connect(where)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    sock.close()
    return int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0


def make_web_dir(tmp):
    """A stand-in for the built UI with the things a static file server must not hand out."""
    web = os.path.join(tmp, "web")
    os.makedirs(os.path.join(web, "sub"))
    for name, text in [("index.html", "<!doctype html><title>hako-test-page</title>\n"), ("app.js", "console.log(1);\n"),
                       ("app.css", "body{}\n"), (".hidden.js", "secret\n"), ("sub/x.js", "nested\n"),
                       ("notes.txt", "unknown type\n")]:
        with open(os.path.join(web, name), "w") as f:
            f.write(text)
    os.symlink(os.path.join(tmp, "token"), os.path.join(web, "link.js"))
    return web


class background_request(threading.Thread):
    """Sends a request on a thread; .result is (status, JSON) once answered, None if the connection ended first."""

    def __init__(self, where, method, path, body=None):
        super().__init__(daemon=True)
        self.args_ = (where, method, path, body)
        self.result = None
        self.start()

    def run(self):
        try:
            st, parsed, _, _ = http(*self.args_)
            self.result = (st, parsed)
        except (OSError, IndexError, ValueError):
            self.result = None


def clone_while_live(d, s, events, good, uart, pids):
    """Clone a VM with a big sparse image while the copy thread is held, and check the daemon serves meanwhile."""
    size = 4 << 30
    status, img, _ = api(s, "POST", BASE + "/images", {"name": "big.raw", "format": "raw", "size_mib": size >> 20},
                         expect=201)
    big = img["path"]
    pieces = [(0, os.urandom(64 << 10)), ((1 << 30) + 4096, os.urandom(3 << 20)), (size - 4096, os.urandom(4096))]
    with open(big, "r+b") as f:
        for off, data in pieces:
            f.seek(off)
            f.write(data)
    api(s, "POST", BASE + "/vms", dict(good, name="src", disks=[{"path": "big.raw", "format": "raw"}]), expect=201)
    api(s, "GET", BASE + "/images", expect=200)

    copier = wait_until(lambda: thread_of(d.proc.pid, "hako-copy"), "the daemon's copy thread exists")
    frozen = FrozenThread(copier)
    try:
        pending = background_request(s, "POST", BASE + "/vms/src/clone", {"name": "dst"})
        wait_until(lambda: "cloning" in events.states("dst"), "the event stream shows dst cloning")
        status, vms, _ = api(s, "GET", BASE + "/vms", expect=200, what="GET /vms during the copy")
        listed = {v["name"]: v for v in vms or []}
        check("dst" in listed and listed["dst"]["state"] == "cloning" and listed["dst"]["pid"] is None,
              f"GET /vms is answered during the copy and lists dst as cloning ({listed.get('dst', {}).get('state')})")
        status, images, _ = api(s, "GET", BASE + "/images", expect=200, what="GET /images during the copy")
        byname = {i["name"]: i for i in images or []}
        check(byname.get("dst-disk0.raw", {}).get("state") == "copying" and byname.get("big.raw", {}).get("used_by") == ["src"],
              f"GET /images shows the target copying and the source used by src ({byname})")
        later = Events(s)
        wait_until(lambda: later.states("dst") == ["cloning"], "a new event stream's first picture has dst cloning")
        later.close()
        # Another VM starts and its console streams while the copy waits.
        api(s, "POST", BASE + "/vms", {"name": "side", "kernel": uart, "debug_exit": True, "memory_mib": 64}, expect=201)
        ws = WebSocket(s, BASE + "/vms/side/console?backlog=0")
        status, vm, _ = api(s, "POST", BASE + "/vms/side/start", expect=200, what="start another VM during the copy")
        if vm:
            pids.append(vm["pid"])
        wait_until(lambda: "READY" in ws.text(), "its console WebSocket shows READY during the copy")
        ws.close()
        api(s, "POST", BASE + "/vms/side/kill", expect=200, what="kill the other VM during the copy")
        check(pending.is_alive() and pending.result is None, "the clone request is not answered while the copy is held")
        # Conflicts, each a 409 with a JSON error.
        api(s, "POST", BASE + "/vms/src/start", expect=409, what="start the source during the copy")
        api(s, "PATCH", BASE + "/vms/src", {"memory_mib": 80}, expect=409, what="edit the source during the copy")
        api(s, "DELETE", BASE + "/vms/src", expect=409, what="delete the source during the copy")
        api(s, "POST", BASE + "/vms/src/disks", {"name": "more.qcow2", "size_mib": 1}, expect=409,
            what="add a disk to the source during the copy")
        api(s, "POST", BASE + "/vms", dict(good, name="dst"), expect=409, what="create a VM with the name being cloned to")
        api(s, "POST", BASE + "/vms/pw/clone", {"name": "dst"}, expect=409, what="clone to the name being cloned to")
        for method, path, body in [("POST", "/vms/dst/start", None), ("PATCH", "/vms/dst", {"cpus": 2}),
                                   ("DELETE", "/vms/dst", None), ("POST", "/vms/dst/clone", {"name": "dst3"}),
                                   ("POST", "/vms/dst/kill", None)]:
            status, body_, _ = api(s, method, BASE + path, body, expect=409, what=f"{method} {path} during the copy")
        status, body_, _ = api(s, "POST", BASE + "/vms/src/start", expect=409, what="start the source (message)")
        check(body_ and "being cloned" in body_["error"], f"the 409 says why ({body_ and body_['error']})")
        check(pending.is_alive() and pending.result is None, "still no answer to the clone request before the release")
    finally:
        frozen.release()
    pending.join(WAIT)
    status, vm = pending.result or (None, None)
    check(status == 201 and vm and vm["state"] == "stopped", f"the clone request answers 201 once the copy ran ({status})")
    problems = validate(SPEC["components"]["schemas"]["Vm"], vm) if vm else ["no body"]
    check(not problems, f"the clone's reply matches the Vm schema ({problems})")
    seen_ops.add(("/vms/{name}/clone", "post"))
    copy = vm and vm["config"]["disks"][0]["path"]
    check(copy and copy.endswith("/images/dst-disk0.raw"), f"the clone's disk is images/dst-disk0.raw ({copy})")
    if copy:
        st_src, st_dst = os.stat(big), os.stat(copy)
        check(st_dst.st_size == size, f"the copy has the source's size ({st_dst.st_size})")
        check(st_dst.st_blocks <= st_src.st_blocks + 64 and st_dst.st_blocks * 512 < (64 << 20),
              f"the copy keeps the holes (blocks: source {st_src.st_blocks}, copy {st_dst.st_blocks})")
        with open(copy, "rb") as f:
            same = True
            for off, data in pieces:
                f.seek(off)
                same = same and f.read(len(data)) == data
            f.seek(2 << 30)
            same = same and f.read(4096) == bytes(4096)
        check(same, "the copy has the source's data and zeros in its holes")
    wait_until(lambda: events.states("dst")[-1:] == ["stopped"], "the event stream shows dst stopped")
    check(events.states("dst") == ["cloning", "stopped"], f"the event stream shows dst cloning, then stopped ({events.states('dst')})")
    # The source is free again, and the clone boots with its copied disk.
    api(s, "PATCH", BASE + "/vms/src", {"memory_mib": 64}, expect=200, what="edit the source after the copy")
    status, vm, _ = api(s, "POST", BASE + "/vms/dst/start", expect=200, what="start the clone")
    if vm:
        pids.append(vm["pid"])
        wait_ready(s, "dst", vm["pid"])
    api(s, "POST", BASE + "/vms/dst/kill", expect=200, what="kill the clone")

    # A source image that is gone: a clear error, no partial file, the name stays free.
    api(s, "POST", BASE + "/images", {"name": "gone.raw", "format": "raw", "size_mib": 1}, expect=201)
    api(s, "POST", BASE + "/vms", dict(good, name="lost", disks=[{"path": "gone.raw"}]), expect=201)
    os.unlink(os.path.join(d.state, "images", "gone.raw"))
    status, body, _ = api(s, "POST", BASE + "/vms/lost/clone", {"name": "lost2"}, expect=500,
                          what="clone a VM whose image is gone")
    check(body and "gone.raw" in body["error"] and "No such file" in body["error"], f"the error names the image ({body})")
    check(not os.path.exists(os.path.join(d.state, "images", "lost2-disk0.raw")), "no file is left by the failed clone")
    api(s, "GET", BASE + "/vms/lost2", expect=404, what="the failed clone does not exist")
    api(s, "DELETE", BASE + "/vms/lost", expect=204)
    api(s, "DELETE", BASE + "/vms/side", expect=204)
    api(s, "DELETE", BASE + "/vms/dst", expect=204)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    hako, guests = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    poweroff, uart = os.path.join(guests, "poweroff.elf"), os.path.join(guests, "uart.elf")
    tmp = tempfile.mkdtemp(prefix="hako-serve.")
    token = base64.b16encode(os.urandom(16)).decode()
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write(token + "\n")
    os.chmod(token_file, 0o600)
    d = Daemon(hako, tmp, free_port(), token_file, make_web_dir(tmp))
    d.start()
    s = d.sock
    tcp = ("127.0.0.1", d.port)
    pids = []
    try:
        run(d, s, tcp, token, hako, poweroff, uart, pids)
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        if failures:
            print("----- daemon log -----")
            print(open(d.log, errors="replace").read()[-6000:])
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


def run(d, s, tcp, token, hako, poweroff, uart, pids):
    # Security: the socket's mode, TCP and the token.
    check(stat.S_IMODE(os.stat(s).st_mode) == 0o600, "the unix socket has mode 0600")
    status, body, _, head = http(tcp, "GET", BASE + "/vms")
    check(status == 401 and "error" in body, f"TCP without a token is 401 with an error ({status})")
    check("www-authenticate: bearer" in head.lower(), "the 401 names the Bearer scheme")
    status, _, _, _ = http(tcp, "GET", BASE + "/vms", headers={"Authorization": "Bearer " + "x" * len(token)})
    check(status == 401, "TCP with a wrong token is 401")
    status, body, _, _ = http(tcp, "GET", BASE + "/version", headers={"Authorization": "Bearer " + token})
    check(status == 200 and body.get("version"), "TCP with the token is served")
    # access_token in the query only where browsers cannot send a header: the event stream and the console.
    status, _, _, _ = http(tcp, "GET", f"{BASE}/version?access_token={token}")
    check(status == 401, f"TCP with access_token in the query of a plain endpoint is 401 ({status})")
    status, _, _, _ = http(tcp, "GET", f"{BASE}/vms?access_token={token}")
    check(status == 401, f"GET /vms with access_token in the query is 401 ({status})")
    status, _, _, _ = http(tcp, "GET", f"{BASE}/vms/x/console?access_token={'x' * len(token)}")
    check(status == 401, f"the console with a wrong access_token is 401 ({status})")
    status, _, _, _ = http(tcp, "GET", f"{BASE}/vms/x/console?access_token={token}")
    check(status == 400, f"the console with access_token passes the token check (400: not an upgrade; got {status})")
    check(sse_status(tcp, f"{BASE}/events") == 401, "the event stream over TCP without a token is 401")
    check(sse_status(tcp, f"{BASE}/events?access_token={token}") == 200,
          "the event stream over TCP with access_token in the query is served (for EventSource)")

    # The web UI's static files (--web-dir, a directory made by main()): public, one level, no traversal.
    status, _, raw, head = http(tcp, "GET", "/")
    check(status == 200 and b"hako-test-page" in raw and "content-type: text/html" in head.lower(),
          f"GET / over TCP without a token is the UI's index.html ({status})")
    check("content-security-policy:" in head.lower() and "x-content-type-options: nosniff" in head.lower(),
          "the page has a Content-Security-Policy and nosniff")
    status, _, raw, head = http(tcp, "GET", "/app.js")
    check(status == 200 and raw == b"console.log(1);\n" and "content-type: text/javascript" in head.lower(),
          f"GET /app.js is the script with its type ({status})")
    status, _, _, head = http(tcp, "GET", "/app.css")
    check(status == 200 and "content-type: text/css" in head.lower(), f"GET /app.css is a stylesheet ({status})")
    for bad in ["/link.js", "/.hidden.js", "/sub/x.js", "/..", "/../token", "/%2e%2e/token", "/token", "/notes.txt",
                "/nothing.js", "/sub"]:
        status, body, _, _ = http(tcp, "GET", bad)
        check(status in (400, 404) and body and "error" in body, f"GET {bad} is refused ({status})")
    status, _, _, _ = http(tcp, "POST", "/index.html")
    check(status == 405, f"POST to a static file is 405 ({status})")

    api(s, "GET", BASE + "/version", expect=200)
    api(s, "GET", BASE + "/vms", expect=200)
    events = Events(s)

    # Validation.
    good = {"kernel": poweroff, "cmdline": "button=1", "debug_exit": True, "memory_mib": 64}
    for bad_name in ["../x", "-a", "a" * 64, "a b", "", "a/b", ".hidden"]:
        api(s, "POST", BASE + "/vms", dict(good, name=bad_name), expect=400, what=f"create with name {bad_name!r}")
    for bad_path in ["../etc/passwd", "/tmp/../etc/passwd", "/tmp/a,format=qcow2", "images/x", "/tmp/./a", "x/../../y",
                     "/tmp/a\nb", "relative.img/"]:
        api(s, "POST", BASE + "/vms", dict(good, name="bad", disks=[{"path": bad_path}]), expect=400,
            what=f"create with disk path {bad_path!r}")
    for extra in [{"cpus": 0}, {"cpus": "2"}, {"memory_mib": -1}, {"nics": [{"mode": "tap"}]}, {"nics": [{"mac": "zz"}]},
                  {"vga": "cirrus"}, {"boot": ["disk", "disk"]}, {"restart": "sometimes"}, {"unknown": 1},
                  {"kernel": "vmlinuz"}, {"vnc": True}]:
        api(s, "POST", BASE + "/vms", dict(good, name="bad", **extra), expect=400, what=f"create with {extra}")
    api(s, "POST", BASE + "/vms", raw_body=b"{not json", expect=400, what="create with a body that is not JSON")
    api(s, "POST", BASE + "/vms", raw_body=b"[1,2]", expect=400, what="create with a JSON array")
    api(s, "GET", BASE + "/vms/nosuchvm", expect=404)
    api(s, "POST", BASE + "/vms/nosuchvm/start", expect=404)
    api(s, "GET", BASE + "/vms/..", expect=400, what="GET /vms/.. (not a name)")
    api(s, "GET", BASE + "/vms/%2e%2e%2fetc", expect=400, what="GET an encoded traversal")
    status, body, _, _ = http(s, "GET", BASE + "/nothing")
    check(status == 404 and "error" in body, "an unknown endpoint is 404 with an error")
    status, body, _, _ = http(s, "PUT", BASE + "/vms")
    check(status == 405 and "error" in body, "a wrong method is 405 with an error")
    status, body, _, _ = http(s, "POST", BASE + "/vms", declared_length=70 * 1024)  # refused before the body
    check(status == 413 and "error" in body, f"a body over 64 KiB is 413 ({status})")
    api(s, "POST", BASE + "/images", {"name": "../evil", "size_mib": 1}, expect=400, what="an image name with ..")
    api(s, "POST", BASE + "/images", {"name": "a.img", "size_mib": 0}, expect=400, what="an image of size 0")

    # The lifecycle with the poweroff guest.
    status, vm, _ = api(s, "POST", BASE + "/vms", dict(good, name="pw"), expect=201)
    check(vm and vm["state"] == "stopped" and vm["config"]["memory_mib"] == 64, "a new VM is stopped with its definition")
    api(s, "POST", BASE + "/vms", dict(good, name="pw"), expect=409, what="create an existing name")
    api(s, "POST", BASE + "/vms/pw/pause", expect=409, what="pause a stopped VM")
    api(s, "POST", BASE + "/vms/pw/shutdown", expect=409, what="shut down a stopped VM")
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/start", expect=200)
    check(vm and vm["state"] == "running" and isinstance(vm["pid"], int), "start answers running with a pid")
    pid = vm["pid"]
    pids.append(pid)
    check(vm["usage"] is not None and vm["usage"]["rss_bytes"] > 0 and vm["usage"]["cpu_seconds"] >= 0,
          f"a running VM has usage figures ({vm['usage']})")
    wait_until(lambda: b"READY" in http(s, "GET", BASE + "/vms/pw/console-log")[2], "console-log shows the guest's READY")
    u1 = api(s, "GET", BASE + "/vms/pw", expect=200)[1]["usage"]
    u2 = wait_until(lambda: (lambda u: u if u and u["sampled_at_ms"] > u1["sampled_at_ms"] else None)(
        api(s, "GET", BASE + "/vms/pw", expect=200)[1]["usage"]), "a later usage sample")
    check(u2 and u2["cpu_seconds"] >= u1["cpu_seconds"], f"CPU time does not go back ({u1} then {u2})")
    check(u1["rss_bytes"] >= 1024 * 1024, f"the VM's resident memory is at least 1 MiB ({u1['rss_bytes']})")
    api(s, "GET", BASE + "/vms/pw/console-log", expect=200)
    api(s, "POST", BASE + "/vms/pw/start", expect=409, what="start a running VM")
    api(s, "PATCH", BASE + "/vms/pw", {"memory_mib": 128}, expect=409, what="edit a running VM")
    api(s, "DELETE", BASE + "/vms/pw", expect=409, what="delete a running VM")
    api(s, "POST", BASE + "/vms/pw/clone", {"name": "pw-copy"}, expect=409, what="clone a running VM")
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/pause", expect=200)
    check(vm and vm["state"] == "paused", "pause answers paused")
    api(s, "POST", BASE + "/vms/pw/pause", expect=409, what="pause a paused VM")
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/resume", expect=200)
    check(vm and vm["state"] == "running", "resume answers running")
    api(s, "POST", BASE + "/vms/pw/resume", expect=409, what="resume a running VM")
    api(s, "POST", BASE + "/vms/pw/shutdown", {"timeout_s": "soon"}, expect=400, what="shutdown with a bad timeout")
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/shutdown", {"timeout_s": 60}, expect=202)
    check(vm and vm["state"] == "stopping", "shutdown answers stopping")
    vm = wait_state(d, "pw", ("stopped", "crashed"), "pw stops after the power button")
    check(vm and vm["state"] == "stopped" and vm["last_exit"]["status"] == 0,
          f"the guest powered off on the button: stopped, exit status 0 ({vm and vm['last_exit']})")
    check(vm and vm["usage"] is None, "a stopped VM has no usage figures")
    check(not pid_alive(pid), "the VM's process is gone")
    check("poweroff: power button pressed" in http(s, "GET", BASE + "/vms/pw/console-log")[2].decode(),
          "the console log shows the guest saw the button")
    wait_until(lambda: events.states("pw")[-1:] == ["stopped"], "the event stream reaches stopped")
    st = events.states("pw")
    want = ["stopped", "starting", "running", "paused", "running", "stopping", "stopped"]
    it = iter(st)
    check(all(w in it for w in want), f"the event stream shows {want} in order ({st})")
    status, vm, _ = api(s, "PATCH", BASE + "/vms/pw", {"memory_mib": 96, "restart": "no"}, expect=200)
    check(vm and vm["config"]["memory_mib"] == 96, "edit of a stopped VM changes it")
    api(s, "PATCH", BASE + "/vms/pw", {"name": "other"}, expect=400, what="edit cannot rename")
    api(s, "PATCH", BASE + "/vms/pw", {"disks": [{"path": "../../etc/shadow"}]}, expect=400, what="edit with a traversal")

    # Images, disks, clone, delete.
    status, img, _ = api(s, "POST", BASE + "/images", {"name": "base.img", "format": "raw", "size_mib": 4}, expect=201)
    check(img and os.path.getsize(img["path"]) == 4 << 20, "a raw image of 4 MiB is created in images/")
    api(s, "POST", BASE + "/images", {"name": "base.img", "format": "raw", "size_mib": 4}, expect=409,
        what="an existing image name")
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/disks", {"name": "pw-data.qcow2", "size_mib": 8, "format": "qcow2"},
                        expect=201)
    path = vm and vm["config"]["disks"][-1]["path"]
    check(path and path.endswith("/images/pw-data.qcow2") and open(path, "rb").read(4) == b"QFI\xfb",
          "disk-create makes a qcow2 image in images/ and attaches it")
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/clone", {"name": "pw2"}, expect=201)
    cpath = vm and vm["config"]["disks"][0]["path"]
    check(cpath and cpath.endswith("/images/pw2-disk0.qcow2") and os.path.exists(cpath), "clone copies the disk in images/")
    api(s, "POST", BASE + "/vms/pw/clone", {"name": "pw2"}, expect=409, what="clone to an existing name")
    api(s, "POST", BASE + "/vms/pw/clone", {"name": "../x"}, expect=400, what="clone to a bad name")
    api(s, "DELETE", BASE + "/vms/pw2", expect=204)
    api(s, "GET", BASE + "/vms/pw2", expect=404, what="a deleted VM is gone")
    wait_until(lambda: events.has("vm-deleted", "pw2"), "the event stream shows the deletion")
    api(s, "PATCH", BASE + "/vms/pw", {"disks": []}, expect=200, what="detach the disks")
    # The VM with its disk started once: the image is used (hako locks it).

    clone_while_live(d, s, events, good, uart, pids)

    # Console input and output through the WebSocket (uart guest).
    api(s, "POST", BASE + "/vms", {"name": "uart", "kernel": uart, "debug_exit": True, "memory_mib": 64}, expect=201)
    ws = WebSocket(s, BASE + "/vms/uart/console?backlog=0")
    check(ws.status == 101, f"the console WebSocket is accepted ({ws.status})")
    api(s, "POST", BASE + "/vms/uart/start", expect=200)
    wait_until(lambda: "READY" in ws.text(), "the console WebSocket shows READY")
    ws.send(b"ping\n")
    wait_until(lambda: "pong" in ws.text(), "input typed through the WebSocket reaches the guest (pong)")
    vm = wait_state(d, "uart", ("stopped", "crashed"), "the uart guest ends")
    check(vm and vm["last_exit"]["status"] == 1, f"the uart guest passed (debug-exit status 1: {vm and vm['last_exit']})")
    check("PASS" in ws.text(), "the console shows the guest's PASS")
    ws.close()
    status, _, raw, _ = http(s, "GET", BASE + "/vms/uart/console")
    check(status == 400, "the console endpoint without an Upgrade is 400")
    api(s, "GET", BASE + "/vms/uart/vnc", expect=400, what="the vnc endpoint without an Upgrade")
    ws = WebSocket(s, BASE + "/vms/uart/vnc")
    check(ws.status == 409, f"the vnc WebSocket of a VM without VNC is 409 ({ws.status})")
    ws.close()
    ws = WebSocket(s, BASE + "/vms/nosuchvm/vnc")
    check(ws.status == 404, f"the vnc WebSocket of an unknown VM is 404 ({ws.status})")
    ws.close()

    # Reboot: the power button, the guest powers off, the daemon starts it again.
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/start", expect=200, what="start pw again")
    pid1 = vm["pid"]
    pids.append(pid1)
    wait_ready(s, "pw", pid1)
    api(s, "POST", BASE + "/vms/pw/reboot", {"timeout_s": 60}, expect=202)
    vm = wait_until(lambda: (lambda v: v if v and v["state"] == "running" and v["pid"] != pid1 else None)(vm_state(d, "pw")),
                    "reboot brings pw back with a new process")
    check(vm and vm["last_exit"]["status"] == 0 and vm["restarts"] == 0,
          f"the reboot went through the guest's power off, not counted as a restart ({vm and (vm['last_exit'], vm['restarts'])})")
    if vm:
        pids.append(vm["pid"])
    api(s, "POST", BASE + "/vms/pw/kill", expect=200, what="kill pw")
    api(s, "POST", BASE + "/vms/pw/kill", expect=409, what="kill a stopped VM")

    # Stop escalation: a guest that ignores the power button (uart waits for its line) is powered off after
    # the timeout (0 s here) through the VM's API.
    api(s, "POST", BASE + "/vms/uart/start", expect=200, what="start uart again")
    upid = vm_state(d, "uart")["pid"]
    pids.append(upid)
    wait_ready(s, "uart", upid)
    api(s, "POST", BASE + "/vms/uart/shutdown", {"timeout_s": 0}, expect=202, what="shutdown uart with timeout 0")
    vm = wait_state(d, "uart", ("stopped", "crashed"), "uart is forced off")
    check(vm and vm["state"] == "stopped" and vm["last_exit"]["status"] == 0 and not pid_alive(upid),
          f"a guest ignoring the button is powered off after the timeout ({vm and vm['last_exit']})")
    check("PASS" not in http(s, "GET", BASE + "/vms/uart/console-log")[2].decode().rpartition(f"pid {upid}")[2],
          "the forced-off guest did not finish on its own")

    # Concurrent start and kill on one VM.
    results = []

    def worker(i):
        op = "start" if i % 2 == 0 else "kill"
        st_, body_, _, _ = http(s, "POST", f"{BASE}/vms/pw/{op}")
        results.append((op, st_, body_))
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [(op, st_) for op, st_, b in results
           if not (st_ in (200, 202) or (st_ in (409, 500) and isinstance(b, dict) and "error" in b))]
    check(not bad, f"concurrent start/kill: each reply is a success or a JSON error ({[r[:2] for r in results]})")
    vm = wait_state(d, "pw", ("running", "stopped", "crashed"), "pw settles after the concurrent requests")
    if vm and vm["state"] == "running":
        check(pid_alive(vm["pid"]), "after the race the running VM's process is alive")
        pids.append(vm["pid"])
        api(s, "POST", BASE + "/vms/pw/kill", expect=200)
    vm = vm_state(d, "pw")
    check(vm and vm["state"] in ("stopped", "crashed"), f"pw ends stopped ({vm and vm['state']})")
    procs = subprocess.run(["pgrep", "-f", os.path.join(d.state, "vms", "pw", "api.sock")], capture_output=True, text=True)
    check(procs.stdout.strip() == "", f"no hako run process of pw is left ({procs.stdout.strip()})")

    # A VM process killed from outside: crashed; the restart policy.
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/start", expect=200)
    pid = vm["pid"]
    pids.append(pid)
    os.kill(pid, signal.SIGKILL)
    vm = wait_state(d, "pw", ("crashed", "stopped"), "pw notices its process was killed")
    check(vm and vm["state"] == "crashed" and vm["last_exit"]["signal"] == 9,
          f"a killed VM is crashed with signal 9 ({vm and (vm['state'], vm['last_exit'])})")
    api(s, "PATCH", BASE + "/vms/pw", {"restart": "on-failure"}, expect=200)
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/start", expect=200)
    pid = vm["pid"]
    pids.append(pid)
    os.kill(pid, signal.SIGKILL)
    vm = wait_until(lambda: (lambda v: v if v and v["state"] == "running" and v["pid"] != pid else None)(vm_state(d, "pw")),
                    "restart on-failure starts the VM again")
    check(vm and vm["restarts"] == 1 and vm["last_exit"]["signal"] == 9,
          f"the restart is counted and the crash recorded ({vm and (vm['restarts'], vm['last_exit'])})")
    pid = vm["pid"] if vm else pid
    pids.append(pid)
    wait_ready(s, "pw", pid)

    # The daemon restarted while the VM runs, and while a clone is being copied: the copy stops, its partial file
    # is removed, the clone does not exist for the next daemon.
    events.close()
    copier = wait_until(lambda: thread_of(d.proc.pid, "hako-copy"), "the daemon's copy thread exists")
    frozen = FrozenThread(copier)
    try:
        pending = background_request(s, "POST", BASE + "/vms/src/clone", {"name": "half"})
        wait_until(lambda: (vm_state(d, "half") or {}).get("state") == "cloning", "the clone 'half' is in progress")
        check(os.path.exists(os.path.join(d.state, "images", "half-disk0.raw")), "the copy's target exists while it is copied")
        d.proc.send_signal(signal.SIGTERM)
        # Once the daemon logged its exit, its io_context runs nothing more: the copy cannot complete the clone.
        wait_until(lambda: "exiting" in open(d.log, errors="replace").read().rpartition("listening on")[2],
                   "the daemon took the SIGTERM")
    finally:
        frozen.release()
    rc = d.proc.wait(timeout=60)
    check(rc == 0, f"the daemon exits 0 on SIGTERM during a copy ({rc})")
    pending.join(60)
    check(not pending.is_alive() and pending.result is None,
          f"the clone request got no answer from the daemon that exited ({pending.result})")
    check(not os.path.exists(os.path.join(d.state, "images", "half-disk0.raw")), "the partial copy is removed on exit")
    check(pid_alive(pid), "the VM survives the daemon's exit")
    d.start()
    vm = vm_state(d, "pw")
    check(vm and vm["state"] == "running" and vm["pid"] == pid, f"the new daemon re-attaches to pw ({vm and (vm['state'], vm['pid'])})")
    api(s, "GET", BASE + "/vms/half", expect=404, what="a clone the previous daemon did not finish does not exist")
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/pause", expect=200, what="pause after re-attach")
    status, vm, _ = api(s, "POST", BASE + "/vms/pw/resume", expect=200, what="resume after re-attach")
    ws = WebSocket(s, BASE + "/vms/pw/console?backlog=65536")
    wait_until(lambda: "READY" in ws.text(), "the re-attached console's backlog shows READY")
    ws.close()
    api(s, "PATCH", BASE + "/vms/pw", {"restart": "no"}, expect=409, what="edit while running after re-attach")
    api(s, "POST", BASE + "/vms/pw/shutdown", {"timeout_s": 60}, expect=202, what="shutdown after re-attach")
    vm = wait_state(d, "pw", ("stopped", "crashed"), "the re-attached VM stops")
    check(vm and vm["state"] == "stopped" and not pid_alive(pid), "the re-attached VM powered off")
    api(s, "PATCH", BASE + "/vms/pw", {"restart": "no"}, expect=200)

    # The CLI.
    env = dict(os.environ, HAKO_SOCKET=s)

    def cli(*args):
        return subprocess.run([hako, "vm", *args], capture_output=True, text=True, env=env, timeout=120)
    r = cli("list")
    check(r.returncode == 0 and re.search(r"^pw\s+stopped", r.stdout, re.M), f"hako vm list shows pw ({r.stdout!r})")
    r = cli("--json", "list")
    check(r.returncode == 0 and any(v["name"] == "uart" for v in json.loads(r.stdout)), "hako vm --json list is JSON")
    r = cli("create", "clivm", "--kernel", poweroff, "--cmdline", "button=1", "--memory", "64M", "--debug-exit", "on")
    check(r.returncode == 0 and "state:     stopped" in r.stdout, f"hako vm create ({r.stdout!r} {r.stderr!r})")
    r = cli("create", "bad/name", "--kernel", poweroff)
    check(r.returncode == 1 and "name" in r.stderr, f"hako vm create with a bad name fails with 1 ({r.stderr.strip()})")
    r = cli("start", "clivm")
    check(r.returncode == 0 and "state:     running" in r.stdout, f"hako vm start ({r.stdout!r} {r.stderr!r})")
    if r.returncode == 0:
        pids.append(vm_state(d, "clivm")["pid"])
    wait_until(lambda: b"READY" in http(s, "GET", BASE + "/vms/clivm/console-log")[2], "clivm is up")
    con = subprocess.Popen([hako, "vm", "--socket", s, "console", "clivm", "--backlog", "65536"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    deadline = time.time() + WAIT
    os.set_blocking(con.stdout.fileno(), False)
    while b"READY" not in out and time.time() < deadline and con.poll() is None:
        try:
            out += con.stdout.read() or b""
        except BlockingIOError:
            pass
        time.sleep(0.05)
    check(b"READY" in out, f"hako vm console shows the guest's output ({out[-200:]!r})")
    con.stdin.write(b"\x1d")
    con.stdin.flush()
    try:
        rc = con.wait(timeout=30)
    except subprocess.TimeoutExpired:
        con.kill()
        rc = None
    check(rc == 0, f"Ctrl-] detaches hako vm console with status 0 ({rc})")
    r = cli("show", "clivm")
    check(r.returncode == 0 and "running" in r.stdout, "the VM runs on after the console detached")
    r = cli("stop", "clivm", "--timeout", "60")
    check(r.returncode == 0 and "state:     stopped" in r.stdout, f"hako vm stop waits for stopped ({r.stdout!r} {r.stderr!r})")
    r = cli("stop", "clivm")
    check(r.returncode == 1 and "stopped" in r.stderr, f"hako vm stop of a stopped VM fails with 1 ({r.stderr.strip()})")
    r = cli("delete", "clivm")
    check(r.returncode == 0, "hako vm delete")
    r = cli("show", "clivm")
    check(r.returncode == 1 and "No VM" in r.stderr, "hako vm show of a deleted VM fails with 1")
    r = subprocess.run([hako, "vm", "--socket", "/nonexistent/hako.sock", "list"], capture_output=True, text=True)
    check(r.returncode == 3 and "Cannot reach" in r.stderr, f"an unreachable daemon is exit status 3 ({r.stderr.strip()})")

    # Every operation of the contract was exercised.
    listed = {(p, m) for p, item in SPEC["paths"].items() for m in item if m != "parameters"}
    missing = listed - seen_ops - {("/vms/{name}/console", "get"), ("/events", "get")}
    check(not missing, f"every operation of the contract was called ({sorted(missing)})")


if __name__ == "__main__":
    main()
