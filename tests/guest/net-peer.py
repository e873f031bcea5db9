#!/usr/bin/env python3
"""The host side of the net guest test (run-net-test.sh).

  net-peer.py echo-server PORTFILE [TIMEOUT]
      Listens on 127.0.0.1 (ephemeral port, written to PORTFILE), accepts one connection, echoes everything until
      the peer closes, closes, prints "echo-server: echoed N bytes".
  net-peer.py client PORT BYTES [TIMEOUT]
      Connects to 127.0.0.1:PORT, sends BYTES of the guest's pattern (little-endian 32-bit word k is
      (k * 0x9E3779B1) ^ 0xA5A5A5A5) while reading, shuts down its sending side, reads until EOF and checks the echo
      equals what it sent. Exit status 0 on success.
  The address is 127.0.0.1 (user networking), or $NET_PEER_ADDR (the host's side of a tap).
"""
import os
import socket
import struct
import sys
import threading

ADDR = os.environ.get("NET_PEER_ADDR", "127.0.0.1")


def pattern(nbytes):
    words = nbytes // 4
    data = struct.pack("<%dI" % words, *(((k * 0x9E3779B1) ^ 0xA5A5A5A5) & 0xFFFFFFFF for k in range(words)))
    return data + bytes(nbytes - len(data))


def echo_server(portfile, timeout):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((ADDR, 0))
    srv.listen(1)
    srv.settimeout(timeout)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(tmp, portfile)
    conn, peer = srv.accept()
    print("echo-server: connection from %s:%d" % peer, flush=True)
    conn.settimeout(timeout)
    total = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
        total += len(data)
    conn.close()
    print("echo-server: echoed %d bytes" % total, flush=True)
    return 0


def client(port, nbytes, timeout):
    data = pattern(nbytes)
    sock = socket.create_connection((ADDR, port), timeout=timeout)
    errors = []

    def sender():
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=sender)
    t.start()
    got = bytearray()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        errors.append(e)
    t.join()
    sock.close()
    if errors:
        print("client: FAIL: %s (got %d of %d bytes back)" % (errors[0], len(got), nbytes))
        return 1
    if bytes(got) != data:
        bad = next((i for i in range(min(len(got), nbytes)) if got[i] != data[i]), min(len(got), nbytes))
        print("client: FAIL: got %d bytes back, expected %d; first difference at byte %d" % (len(got), nbytes, bad))
        return 1
    print("client: %d bytes echoed intact" % nbytes)
    return 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "echo-server":
        return echo_server(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 120)
    if len(sys.argv) >= 4 and sys.argv[1] == "client":
        return client(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 60)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
