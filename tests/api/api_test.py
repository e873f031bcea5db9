#!/usr/bin/env python3
"""The VM API socket against its contract (src/api/openapi.yaml), with a real VM.

hako runs the poweroff test guest in button mode (it waits for the ACPI power button) with a virtio-rng and a disk,
and --api-socket. The test:
  - checks that every path and method in openapi.yaml is served, and that each response's status is one the
    contract lists and its JSON body matches the schema (a small validator for the subset of JSON Schema used);
  - checks that the server knows no path the contract does not list (404) and refuses other methods (405);
  - runs pause/resume and their 409s, bad JSON (400), a malformed request (400), the socket's mode (0600),
    a second VM refused the same socket path;
  - presses the power button: the guest sees the SCI and powers off, hako exits 0 and removes the socket.
With --qemu GUEST it instead runs the same guest under QEMU and presses the button through QMP (reference: the guest
does what a real PC's OS does).
usage: api_test.py HAKO GUEST [--qemu QEMU]
"""
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(HERE, "..", "..", "src", "api", "openapi.yaml")
failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def http(sock_path, method, path, body=None, raw=None):
    """One request on a fresh connection; returns (status, parsed JSON or None, raw body)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    if raw is None:
        data = b"" if body is None else body.encode()
        raw = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
               f"Content-Length: {len(data)}\r\n\r\n").encode() + data
    s.sendall(raw)
    resp = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        resp += chunk
    s.close()
    head, _, payload = resp.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    is_json = b"content-type: application/json" in head.lower()
    parsed = json.loads(payload) if payload.strip() and is_json else None
    return status, parsed, payload


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"].lstrip("#/").split("/")
        node = spec
        for part in ref:
            node = node[part]
    return node


def validate(spec, schema, value, where="$"):
    """The JSON Schema subset openapi.yaml uses: type, required, properties, additionalProperties, items, enum,
    minimum. Returns a list of problems."""
    schema = resolve(spec, schema)
    problems = []
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
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                problems += validate(spec, props[k], v, f"{where}.{k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += validate(spec, schema["additionalProperties"], v, f"{where}.{k}")
    if t == "array":
        for i, item in enumerate(value):
            problems += validate(spec, schema.get("items", {}), item, f"{where}[{i}]")
    return problems


def check_response(spec, op, status, body, what, raw=b""):
    responses = op["responses"]
    check(str(status) in responses, f"{what}: status {status} is in the contract ({', '.join(responses)})")
    r = resolve(spec, responses.get(str(status), {}))
    if "image/png" in r.get("content", {}):
        check(raw.startswith(b"\x89PNG\r\n\x1a\n"), f"{what}: the body is a PNG")
        return
    schema = r.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        problems = validate(spec, schema, body)
        check(not problems, f"{what}: body matches the schema" + (f" ({problems})" if problems else ""))
    elif status != 204:
        check(body is not None, f"{what}: has a JSON body")


def wait_for(path, text, proc, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path) and text in open(path, errors="replace").read():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def run_hako(hako, guest):
    spec = yaml.safe_load(open(SPEC))
    base = spec["servers"][0]["url"].split("localhost", 1)[1]
    tmp = tempfile.mkdtemp(prefix="hako-api.")
    sock = os.path.join(tmp, "api.sock")
    log = os.path.join(tmp, "serial.log")
    disk = os.path.join(tmp, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    cmd = [hako, "run", "--kernel", guest, "--cmdline", "button=1", "--debug-exit", "--device", "virtio-rng", "--vga", "std",
           "--disk", f"path={disk},serial=api-disk", "--api-socket", sock]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        check(wait_for(log, "READY", proc), "the guest is up and waits for the power button")
        check(stat.S_IMODE(os.stat(sock).st_mode) == 0o600, "the socket has mode 0600")

        # Every path and method of the contract; the state-changing ones in a safe order.
        order = {"vm.pause": 1, "vm.resume": 2, "vm.power-button": 8, "vm.power-off": 9}
        ops = sorted(((p, m, op) for p, item in spec["paths"].items() for m, op in item.items()),
                     key=lambda x: order.get(x[0].lstrip("/"), 0))
        served = set()
        for path, method, op in ops:
            if path in ("/vm.power-button", "/vm.power-off"):
                continue  # they end the VM: below
            status, body, raw = http(sock, method.upper(), base + path)
            check_response(spec, op, status, body, f"{method.upper()} {path}", raw)
            served.add(path)
            if path == "/vm.pause":
                status, body, _ = http(sock, "GET", base + "/vm.info")
                check(status == 200 and body["state"] == "paused", "vm.info says paused after vm.pause")
                status, body, _ = http(sock, "PUT", base + "/vm.pause")
                check_response(spec, op, status, body, "PUT /vm.pause again")
                check(status == 409, "a second pause is a 409")
            if path == "/vm.resume":
                status, body, _ = http(sock, "GET", base + "/vm.info")
                check(status == 200 and body["state"] == "running", "vm.info says running after vm.resume")
                status, body, _ = http(sock, "PUT", base + "/vm.resume")
                check(status == 409 and "error" in body, "resume while running is a 409 with an error")

        status, info, _ = http(sock, "GET", base + "/vm.info")
        names = [d["name"] for d in info["devices"]]
        check(names == ["std-vga", "virtio-blk0", "virtio-rng"], f"vm.info lists the devices ({names})")
        check(info["disks"] == [{"path": disk, "readonly": False, "serial": "api-disk"}], "vm.info lists the disk")
        status, counters, _ = http(sock, "GET", base + "/vm.counters")
        check("virtio-rng" in counters and "transport" in counters["virtio-rng"], "vm.counters has the rng's counters")
        emulated = counters.get("emulated-instructions")
        check(isinstance(emulated, dict) and all(isinstance(n, int) and n > 0 for n in emulated.values()),
              f"vm.counters has the emulated instructions by mnemonic ({emulated})")

        # Outside the contract.
        status, body, _ = http(sock, "GET", base + "/vm.nothing")
        check(status == 404 and "error" in body, "an unknown path is a 404 with an error")
        status, body, _ = http(sock, "DELETE", base + "/vm.info")
        check(status == 405 and "error" in body, "a wrong method is a 405 with an error")
        status, body, _ = http(sock, "PUT", base + "/vm.pause", body="{not json")
        check(status == 400 and "error" in body, "a body that is not JSON is a 400")
        status, body, _ = http(sock, "GET", base + "/vm.info", raw=b"this is not HTTP\r\n\r\n")
        check(status == 400, "a malformed request is a 400")

        # A second VM cannot take the socket.
        second = subprocess.run([hako, "run", "--kernel", guest, "--api-socket", sock], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=30)
        check(second.returncode == 4 and "is in use" in second.stderr,
              f"a second VM on the same socket fails with status 4 ({second.returncode}: {second.stderr.strip()})")

        # The power button: the guest handles the SCI and powers off.
        op = spec["paths"]["/vm.power-button"]["put"]
        status, body, _ = http(sock, "PUT", base + "/vm.power-button")
        check_response(spec, op, status, body, "PUT /vm.power-button")
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, f"hako exits 0 after the guest's power-off (status {rc})")
        check("poweroff: power button pressed" in open(log).read(), "the guest saw the power button")
        check(not os.path.exists(sock), "the socket is gone")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if failures:
            print("----- serial log -----")
            print(open(log, errors="replace").read())


def run_qemu(qemu, guest):
    tmp = tempfile.mkdtemp(prefix="hako-api-qemu.")
    qmp = os.path.join(tmp, "qmp.sock")
    log = os.path.join(tmp, "serial.log")
    cmd = [qemu, "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-M", "pc", "-m", "64", "-nographic",
           "-net", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", guest,
           "-append", "button=1", "-no-reboot", "-qmp", f"unix:{qmp},server=on,wait=off"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        check(wait_for(log, "READY", proc), "the guest is up and waits for the power button")
        s = socket.socket(socket.AF_UNIX)
        s.connect(qmp)
        f = s.makefile("rw")
        f.readline()
        for c in ("qmp_capabilities", "system_powerdown"):
            f.write(json.dumps({"execute": c}) + "\n")
            f.flush()
            f.readline()
        rc = proc.wait(timeout=60)
        check(rc == 0, f"QEMU exits 0 after the guest's power-off (status {rc})")
        check("poweroff: power button pressed" in open(log).read(), "the guest saw the power button")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if failures:
            print(open(log, errors="replace").read())


def main():
    if len(sys.argv) == 5 and sys.argv[3] == "--qemu":
        run_qemu(sys.argv[4], sys.argv[2])
    elif len(sys.argv) == 3:
        run_hako(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
