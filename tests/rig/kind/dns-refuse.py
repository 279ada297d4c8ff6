#!/usr/bin/env python3
"""The upstream resolver of the kind rig's nodes: answers every DNS query over UDP with REFUSED,
at once. Docker's embedded DNS forwards the names it does not know to the host's resolvers, from
inside the container; the rig keeps forwarding off (--ip-forward=false), so those queries would
be lost and every lookup of an outside name would wait out its timeouts (grpc-go asks for
_grpc_config.localhost when the repo-server's liveness check dials itself: 8 s, and the kubelet,
whose limit is 5 s, kills the pod). engine.sh points docker's --dns here; an offline resolver
refuses at once, and so does this.
  dns-refuse.py ADDRESS"""
import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], 53))
while True:
    query, peer = sock.recvfrom(4096)
    if len(query) < 12:
        continue
    # Same ID and question; QR=1, opcode and RD copied, RA=1, RCODE=5 (REFUSED); no answers.
    flags = 0x8000 | (query[2] << 8 & 0x7900) | 0x0080 | 5
    sock.sendto(query[:2] + flags.to_bytes(2, "big") + query[4:6] + b"\0\0\0\0\0\0" + query[12:], peer)
