#!/usr/bin/env python3
"""A stand-in for the repo-server's real clients during a rotation (tests/real_node.rs scenario
13): every INTERVAL seconds, one gRPC-style call attempt at HOST:PORT over TLS with the client
certificate currently in DIR (client.crt, client.key, re-read at every attempt, as Argo CD's
clients reload theirs when the file changes), proven accepted only when the server's HTTP/2
SETTINGS frame arrives after our preface (under TLS 1.3 a refusal arrives only on that read).
One JSON line per attempt on stdout: {"t": unix seconds, "ok": bool, "why": text}. Runs until
SIGTERM. Test-only.

  prober.py HOST PORT DIR INTERVAL
"""
import json
import signal
import socket
import ssl
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"

running = True


def stop(*_):
    global running
    running = False


def attempt(host, port, directory):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    ctx.load_cert_chain(f"{directory}/client.crt", f"{directory}/client.key")
    with socket.create_connection((host, port), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="argocd-repo-server") as tls:
            tls.sendall(PREFACE + EMPTY_SETTINGS)
            head = b""
            while len(head) < 9:
                chunk = tls.recv(9 - len(head))
                if not chunk:
                    return False, "closed before any frame"
                head += chunk
            if head[3] != 4:
                return False, f"first frame type {head[3]}, not SETTINGS"
            return True, "SETTINGS"


def main():
    host, port, directory, interval = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while running:
        started = time.time()
        try:
            ok, why = attempt(host, port, directory)
        except Exception as e:  # every failure is a data point, not a crash
            ok, why = False, f"{type(e).__name__}: {e}"
        print(json.dumps({"t": started, "ok": ok, "why": why}), flush=True)
        time.sleep(max(0.0, interval - (time.time() - started)))


if __name__ == "__main__":
    main()
