"""A rogue VRRPv3 speaker: adverts with a chosen VRID and priority sent to the given addresses.

Standard library only, run as a plain script inside a lab namespace (the client's) by the `rogue-vrrp`
fault: `python3 rogue_vrrp.py VRID PRIORITY SECONDS VIP TARGET...`. The checksum covers the IPv4
pseudo-header, as RFC 5798 and keepalived's VRRPv3 expect.
"""

from __future__ import annotations

import socket
import struct
import sys
import time

VRRP = 112


def checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return int(~(total + (total >> 16)) & 0xFFFF)


def advert(vrid: int, priority: int, vip: str, src: str, dst: str, centis: int = 10) -> bytes:
    body = struct.pack("!BBBBHH", 0x31, vrid, priority, 1, centis, 0) + socket.inet_aton(vip)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, VRRP, len(body))
    return body[:6] + struct.pack("!H", checksum(pseudo + body)) + body[8:]


def main(argv: list[str]) -> int:
    vrid, priority, seconds, vip, targets = int(argv[0]), int(argv[1]), float(argv[2]), argv[3], argv[4:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, VRRP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
    sources = {}
    for dst in targets:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((dst, 9))
            sources[dst] = probe.getsockname()[0]
    end = time.time() + seconds
    while time.time() < end:
        for dst in targets:
            sock.sendto(advert(vrid, priority, vip, sources[dst], dst), (dst, 0))
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
