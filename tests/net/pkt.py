#!/usr/bin/env python3
"""Packet helpers for netlink_smoke.sh; only ever aimed at addresses the test made.

  pkt.py listen IP PORT OUTFILE       write each UDP payload received, one a line;
                                      OUTFILE.ready appears once listening (sniff too)
  pkt.py send SRC DST PORT PAYLOAD    one UDP datagram from SRC (need not be local)
  pkt.py arp IFACE MAC IP             broadcast an ARP reply: "IP is at MAC"
  pkt.py frame IFACE SRC DST TYPE     one minimal Ethernet frame of ethertype TYPE (hex)
  pkt.py sniff IFACE SECONDS OUTFILE WORD...   write each WORD seen in a frame on IFACE
"""
import socket
import struct
import sys

IP_TRANSPARENT = 19


def listen(ip, port, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, int(port)))
    open(out + ".ready", "w").close()
    with open(out, "a", buffering=1) as f:
        while True:
            data, _ = s.recvfrom(2048)
            f.write(data.decode(errors="replace") + "\n")


def send(src, dst, port, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # A spoofed source is not configured locally: transparent sockets may
    # bind to it and route with it (freebind alone may bind, not route).
    s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    s.bind((src, 0))
    s.sendto(payload.encode(), (dst, int(port)))


def arp(iface, mac, ip):
    hw = bytes.fromhex(mac.replace(":", ""))
    pa = socket.inet_aton(ip)
    bcast = b"\xff" * 6
    frame = bcast + hw + struct.pack("!H", 0x0806)
    frame += struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + hw + pa + bcast + pa
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.send(frame)


def frame(iface, src, dst, ethertype):
    f = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", ""))
    f += struct.pack("!H", int(ethertype, 16)) + b"\0" * 46
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.send(f)


def sniff(iface, seconds, out, *words):
    import time
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((iface, 0))
    open(out + ".ready", "w").close()
    end = time.monotonic() + float(seconds)
    with open(out, "a", buffering=1) as f:
        while time.monotonic() < end:
            s.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = s.recv(4096)
            except (socket.timeout, OSError):
                break
            for w in words:
                if w.encode() in data:
                    f.write(w + "\n")


if __name__ == "__main__":
    {"listen": listen, "send": send, "arp": arp, "frame": frame, "sniff": sniff}[sys.argv[1]](*sys.argv[2:])
