#!/usr/bin/env python3
"""hako run on a terminal: raw mode input reaches COM1, Ctrl-a h prints help, Ctrl-a x quits (exit status 0).
Runs hako on a pseudo-terminal with the uart test guest, which prints READY and answers "ping" with "pong".
usage: console_tty.py HAKO UART_GUEST"""
import os
import pty
import select
import sys
import time

hako, guest = sys.argv[1], sys.argv[2]


def spawn():
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(hako, [hako, "run", "--kernel", guest, "--debug-exit", "--memory", "64"])
    return pid, fd


def read_until(fd, needle, timeout, buf):
    end = time.time() + timeout
    while needle not in buf:
        left = end - time.time()
        if left <= 0:
            raise SystemExit(f"FAIL: no {needle!r} within {timeout}s; got:\n{buf.decode(errors='replace')}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                raise SystemExit(f"FAIL: hako closed the terminal before {needle!r}; got:\n{buf.decode(errors='replace')}")
            buf += data
    return buf


def wait(pid, timeout):
    end = time.time() + timeout
    while time.time() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    raise SystemExit("FAIL: hako did not exit")


# 1. Typed input reaches the guest's UART in raw mode: "ping" + newline gets "pong" back, the guest exits 0 (status 1).
pid, fd = spawn()
buf = read_until(fd, b"READY", 60, b"")
os.write(fd, b"ping\n")
buf = read_until(fd, b"pong", 60, buf)
status = wait(pid, 60)
if status != 1:
    raise SystemExit(f"FAIL: uart guest run ended with status {status}, expected 1\n{buf.decode(errors='replace')}")
print("PASS: input on a terminal reaches COM1 (ping/pong)")

# 2. Ctrl-a h prints the escape keys; Ctrl-a x quits with status 0.
pid, fd = spawn()
buf = read_until(fd, b"READY", 60, b"")
os.write(fd, b"\x01h")
buf = read_until(fd, b"C-a x", 10, buf)
os.write(fd, b"\x01x")
buf = read_until(fd, b"terminated by Ctrl-a x", 10, buf)
status = wait(pid, 10)
if status != 0:
    raise SystemExit(f"FAIL: Ctrl-a x gave status {status}, expected 0")
print("PASS: Ctrl-a h shows help, Ctrl-a x quits with status 0")

# 3. SIGTERM ends the VM cleanly with status 128 + 15 and a message.
import signal
pid, fd = spawn()
buf = read_until(fd, b"READY", 60, b"")
os.kill(pid, signal.SIGTERM)
buf = read_until(fd, b"terminating on signal 15", 10, buf)
status = wait(pid, 10)
if status != 128 + 15:
    raise SystemExit(f"FAIL: SIGTERM gave status {status}, expected 143")
print("PASS: SIGTERM ends the run with status 143")
