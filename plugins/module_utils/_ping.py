# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ICMP / ICMPv6 echo from inside network namespaces, in pure Python.

No `ping` binary and no `ip netns exec`: each raw socket is created by a thread
that has entered its namespace (run_in_netns), and a socket stays in the
namespace it was created in, so the main thread can drive every probe (and
every capture) at once from one select() loop over non-blocking sockets
(_probes).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import time

from ansible_collections.linuxnet.tunnels.plugins.module_utils._enter import run_in_netns
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import NamespaceMissing, ResourceError, error_text, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import check_netns_name, netns_exists

# Linux values; the socket module of some Python builds lacks these names.
IP_MTU_DISCOVER = getattr(socket, 'IP_MTU_DISCOVER', 10)
IP_PMTUDISC_DONT = getattr(socket, 'IP_PMTUDISC_DONT', 0)
IP_PMTUDISC_DO = getattr(socket, 'IP_PMTUDISC_DO', 2)
IP_MTU = getattr(socket, 'IP_MTU', 14)
IPV6_MTU = getattr(socket, 'IPV6_MTU', 24)
IPV6_RECVHOPLIMIT = getattr(socket, 'IPV6_RECVHOPLIMIT', 51)
IPV6_HOPLIMIT = getattr(socket, 'IPV6_HOPLIMIT', 52)
IPV6_DONTFRAG = getattr(socket, 'IPV6_DONTFRAG', 62)
SOL_RAW = getattr(socket, 'SOL_RAW', 255)
ICMP_FILTER = 1  # SOL_RAW option of IPv4 raw ICMP sockets
ICMP6_FILTER = 1  # IPPROTO_ICMPV6 option of raw ICMPv6 sockets

ICMP_ECHO_REPLY, ICMP_ECHO = 0, 8
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129
# Errors that quote our request: IPv4 dest-unreachable, time-exceeded,
# parameter-problem; IPv6 dest-unreachable, packet-too-big, time-exceeded,
# parameter-problem.
ICMP_ERRORS = (3, 11, 12)
ICMP6_ERRORS = (1, 2, 3, 4)

IPV4_MAX_PAYLOAD = 65535 - 20 - 8
IPV6_MAX_PAYLOAD = 65535 - 8
MAX_COUNT = 65535  # one 16-bit sequence space: no wrap-around to disambiguate
COOKIE_LEN = 8  # random bytes at the head of the payload tell our replies apart

ICMP_UNREACH = {
    0: 'Destination Net Unreachable',
    1: 'Destination Host Unreachable',
    2: 'Destination Protocol Unreachable',
    3: 'Destination Port Unreachable',
    4: 'Fragmentation needed and DF set',
    5: 'Source Route Failed',
    9: 'Destination Net Prohibited',
    10: 'Destination Host Prohibited',
    13: 'Communication Administratively Prohibited',
}
ICMP6_UNREACH = {
    0: 'No route',
    1: 'Administratively prohibited',
    2: 'Beyond scope of source address',
    3: 'Address unreachable',
    4: 'Port unreachable',
    5: 'Source address failed ingress/egress policy',
    6: 'Reject route to destination',
}


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of an ICMPv4 message."""
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack(f'!{len(data) // 2}H', data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    kind = ICMP_ECHO if family == socket.AF_INET else ICMP6_ECHO_REQUEST
    header = struct.pack('!BBHHH', kind, 0, 0, ident, seq)
    if family == socket.AF_INET6:
        return header + payload  # the kernel fills in the ICMPv6 checksum (RFC 3542)
    csum = checksum(header + payload)
    return struct.pack('!BBHHH', kind, 0, csum, ident, seq) + payload


def validate(params: dict) -> None:
    """Refuse bad options before any socket is made."""
    if params.get('netns') is not None:
        check_netns_name(params['netns'])
    if not 1 <= params['count'] <= MAX_COUNT:
        raise ResourceError(f"count: must be between 1 and {MAX_COUNT}, got {params['count']}")
    if params['interval'] < 0:
        raise ResourceError(f"interval: must be 0 or more seconds, got {params['interval']}")
    if params['timeout'] <= 0:
        raise ResourceError(f"timeout: must be more than 0 seconds, got {params['timeout']}")
    if not 0 <= params['size'] <= IPV6_MAX_PAYLOAD:
        raise ResourceError(f"size: must be between 0 and {IPV6_MAX_PAYLOAD} bytes, got {params['size']}")
    if not 0 <= params['max_loss'] <= 100:
        raise ResourceError(f"max_loss: must be a percentage between 0 and 100, got {params['max_loss']}")
    if params.get('ttl') is not None and not 1 <= params['ttl'] <= 255:
        raise ResourceError(f"ttl: must be between 1 and 255, got {params['ttl']}")
    if params.get('ttl') is not None and params['expect'] == 'fail':
        raise ResourceError('ttl: a probe that expects to fail gets no reply whose TTL could be checked')
    if not params['dest'] or any(c.isspace() for c in params['dest']):
        raise ResourceError(f"dest: '{params['dest']}' is not an IP address or host name")


def _looks_numeric(dest: str) -> bool:
    """An IP literal gone wrong (999.1.1.1, fd00::zz): never a host name to look up."""
    if ':' in dest:
        return True
    return all(part.isdigit() for part in dest.split('.') if part)


def resolve(dest: str, netns: str | None) -> tuple:
    """(family, sockaddr) for dest; names resolve from inside the namespace."""
    def lookup(flags: int):
        return socket.getaddrinfo(dest, None, 0, socket.SOCK_RAW, 0, flags)

    try:
        infos = run_in_netns(netns, lookup, socket.AI_NUMERICHOST)
    except socket.gaierror:
        if '%' in dest:
            raise _scope_error(dest, netns) from None
        if _looks_numeric(dest):
            raise ResourceError(f"dest: '{dest}' is not a valid IPv4 or IPv6 address") from None
        try:
            infos = run_in_netns(netns, lookup, 0)
        except socket.gaierror as exc:
            raise ResourceError(f"dest: cannot resolve host name '{dest}' in {where(netns)}: {exc.strerror}") from None
    for family in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            if info[0] == family:
                return family, info[4]
    raise ResourceError(f"dest: '{dest}' has no IPv4 or IPv6 address")


def _scope_error(dest: str, netns: str | None) -> ResourceError:
    """Why glibc refused ADDRESS%IFNAME: the interface, or the address."""
    address, scope = dest.split('%', 1)
    try:
        run_in_netns(netns, socket.if_nametoindex, scope)
    except OSError:
        return ResourceError(f"dest: interface '{scope}' does not exist in {where(netns)} (in '{dest}')")
    return ResourceError(f"dest: '{address}' is not an IPv6 link-local address; only those take a %interface suffix (in '{dest}')")


def _set_filter(sock: socket.socket, family: int) -> None:
    """Let the kernel drop ICMP we never look at (a set bit blocks a type)."""
    if family == socket.AF_INET:
        wanted = (ICMP_ECHO_REPLY,) + ICMP_ERRORS
        mask = 0xFFFFFFFF
        for kind in wanted:
            mask &= ~(1 << kind)
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack('I', mask))
    else:
        words = [0xFFFFFFFF] * 8
        for kind in (ICMP6_ECHO_REPLY,) + ICMP6_ERRORS:
            words[kind >> 5] &= ~(1 << (kind & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack('8I', *words))


def open_socket(family: int, dont_fragment: bool) -> socket.socket:
    """The raw ICMP socket; called inside the namespace."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    sock = socket.socket(family, socket.SOCK_RAW, proto)
    try:
        if family == socket.AF_INET:
            # DO sets DF and refuses to fragment; DONT clears DF so that routers fragment.
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO if dont_fragment else IP_PMTUDISC_DONT)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1 if dont_fragment else 0)
        _set_filter(sock, family)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def path_mtu(family: int, sockaddr: tuple) -> int | None:
    """The kernel's path MTU towards sockaddr; called inside the namespace.

    Connecting a UDP socket sends nothing; it only looks up the route, whose
    MTU includes what ICMP 'fragmentation needed' / 'packet too big' taught.
    """
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((sockaddr[0], 9) + tuple(sockaddr[2:]))
            if family == socket.AF_INET:
                return probe.getsockopt(socket.IPPROTO_IP, IP_MTU)
            return probe.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
    except OSError:
        return None


class Pinger:
    """count echo requests `interval` apart; each reply counts if it comes within `timeout`."""

    def __init__(self, params: dict) -> None:
        self.params = params
        self.netns: str | None = params.get('netns') or None
        self.dest = params['dest']
        self.ident = int.from_bytes(os.urandom(2), 'big')
        size = params['size']
        self.payload = (os.urandom(COOKIE_LEN) + bytes(i & 0xFF for i in range(size)))[:size]
        self.sent: dict[int, float] = {}  # seq -> monotonic send time
        self.failed: set[int] = set()  # seqs the local kernel refused to send
        self.rtts: dict[int, float] = {}  # seq -> ms
        self.ttls: dict[int, int] = {}
        self.duplicates = 0
        self.errors: list[str] = []
        self.family = socket.AF_INET
        self.sockaddr: tuple = ()
        self.sock: socket.socket | None = None
        self.next_seq = 0  # requests sent so far
        self.next_send = 0.0  # monotonic time the next request is due

    # -- set-up -------------------------------------------------------------

    def open(self) -> None:
        if self.netns and not netns_exists(self.netns):
            raise NamespaceMissing(self.netns)
        self.family, self.sockaddr = resolve(self.dest, self.netns)
        ipv4 = self.family == socket.AF_INET
        limit = IPV4_MAX_PAYLOAD if ipv4 else IPV6_MAX_PAYLOAD
        if self.params['size'] > limit:
            raise ResourceError(f"size: at most {limit} bytes fit in one IPv{4 if ipv4 else 6} echo request, got {self.params['size']}")
        try:
            self.sock = run_in_netns(self.netns, open_socket, self.family, self.params['dont_fragment'])
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise ResourceError('could not open a raw ICMP socket: operation not permitted; the module needs root (become: true)') from None
            raise ResourceError(f'could not open a raw ICMP socket in {where(self.netns)}: {error_text(exc)}') from None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- the run (driven by run_together) -------------------------------------

    def step(self, now: float) -> float | None:
        """Send the request that is due; when to be called again, None once done.

        Returns `now` right after a send, so that whatever has arrived is read
        before the next decision to wait.
        """
        count, interval, timeout = self.params['count'], self.params['interval'], self.params['timeout']
        if self.next_seq < count and now >= self.next_send:
            self._send(self.sock, self.next_seq + 1)
            self.next_seq += 1
            self.next_send = now + interval
            return now
        waiting = [t + timeout for s, t in self.sent.items() if s not in self.rtts and s not in self.failed and t + timeout > now]
        if self.next_seq >= count and not waiting:
            return None
        return min(waiting + ([self.next_send] if self.next_seq < count else []))

    def _send(self, sock: socket.socket, seq: int) -> None:
        packet = echo_request(self.family, self.ident, seq, self.payload)
        self.sent[seq] = time.monotonic()
        try:
            sock.sendto(packet, self.sockaddr)
        except OSError as exc:
            # Counted as sent and lost, as ping(8) does for a local error.
            self.failed.add(seq)
            self.errors.append(f'icmp_seq={seq}: {self._local_error(exc)}')

    def _local_error(self, exc: OSError) -> str:
        if exc.errno == errno.EMSGSIZE:
            mtu = run_in_netns(self.netns, path_mtu, self.family, self.sockaddr)
            where_mtu = f', path MTU {mtu}' if mtu else ''
            fragment = ' and dont_fragment is set' if self.params['dont_fragment'] else ''
            return f'local error: message too long ({self.params["size"]} bytes of payload{fragment}{where_mtu})'
        return f'local error: {error_text(exc)}'

    def receive(self) -> None:
        """Read whatever has arrived (the socket is non-blocking)."""
        while True:
            try:
                data, ancdata, _flags, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(4))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.errors.append(f'receive error: {error_text(exc)}')
                return
            when = time.monotonic()
            if self.family == socket.AF_INET:
                self._handle_v4(data, addr[0], when)
            else:
                hoplimit = None
                for level, kind, value in ancdata:
                    if level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT and len(value) >= 4:
                        hoplimit = struct.unpack('i', value[:4])[0]
                self._handle_v6(data, addr[0], hoplimit, when)

    def _handle_v4(self, data: bytes, source: str, when: float) -> None:
        if len(data) < 20:
            return
        ihl = (data[0] & 0x0F) * 4
        ttl = data[8]
        icmp = data[ihl:]
        if len(icmp) < 8:
            return
        kind, code = icmp[0], icmp[1]
        if kind == ICMP_ECHO_REPLY:
            if source == self.sockaddr[0]:
                self._reply(icmp, ttl, when)
        elif kind in ICMP_ERRORS:
            inner = icmp[8:]
            if len(inner) < 28:
                return
            inner_ihl = (inner[0] & 0x0F) * 4
            quoted = inner[inner_ihl:inner_ihl + 8]
            inner_dest = socket.inet_ntop(socket.AF_INET, inner[16:20])
            if len(quoted) < 8 or inner_dest != self.sockaddr[0] or quoted[0] != ICMP_ECHO:
                return
            _k, _c, _s, ident, seq = struct.unpack('!BBHHH', quoted)
            if ident != self.ident:
                return
            if kind == 3:
                text = ICMP_UNREACH.get(code, f'Destination Unreachable (code {code})')
                if code == 4:
                    text += f' (next-hop MTU {struct.unpack("!H", icmp[6:8])[0]})'
            elif kind == 11:
                text = 'Time to live exceeded' if code == 0 else 'Fragment reassembly time exceeded'
            else:
                text = 'Parameter problem'
            self.errors.append(f'icmp_seq={seq}: {text} (from {source})')

    def _handle_v6(self, icmp: bytes, source: str, hoplimit: int | None, when: float) -> None:
        if len(icmp) < 8:
            return
        kind, code = icmp[0], icmp[1]
        source = source.split('%', 1)[0]
        if kind == ICMP6_ECHO_REPLY:
            if ipaddress.ip_address(source) == ipaddress.ip_address(self.sockaddr[0].split('%', 1)[0]):
                self._reply(icmp, hoplimit, when)
        elif kind in ICMP6_ERRORS:
            inner = icmp[8:]
            quoted = inner[40:48]
            if len(quoted) < 8 or quoted[0] != ICMP6_ECHO_REQUEST:
                return
            inner_dest = socket.inet_ntop(socket.AF_INET6, inner[24:40])
            if ipaddress.ip_address(inner_dest) != ipaddress.ip_address(self.sockaddr[0].split('%', 1)[0]):
                return
            _k, _c, _s, ident, seq = struct.unpack('!BBHHH', quoted)
            if ident != self.ident:
                return
            if kind == 1:
                text = ICMP6_UNREACH.get(code, f'Destination Unreachable (code {code})')
            elif kind == 2:
                text = f'Packet too big (MTU {struct.unpack("!I", icmp[4:8])[0]})'
            elif kind == 3:
                text = 'Hop limit exceeded in transit' if code == 0 else 'Fragment reassembly time exceeded'
            else:
                text = 'Parameter problem'
            self.errors.append(f'icmp_seq={seq}: {text} (from {source})')

    def _reply(self, icmp: bytes, ttl: int | None, when: float) -> None:
        _k, _c, _s, ident, seq = struct.unpack('!BBHHH', icmp[:8])
        if ident != self.ident or icmp[8:8 + COOKIE_LEN] != self.payload[:COOKIE_LEN]:
            return  # another pinger's reply (raw sockets see every ICMP packet)
        if seq not in self.sent or seq in self.failed:
            return
        if seq in self.rtts:
            self.duplicates += 1
            return
        rtt = (when - self.sent[seq]) * 1000.0
        if rtt > self.params['timeout'] * 1000.0:
            return  # too late: lost, as ping -W counts it
        self.rtts[seq] = rtt
        if ttl is not None:
            self.ttls[seq] = ttl

    # -- the result -----------------------------------------------------------

    def summary(self) -> dict:
        transmitted = len(self.sent)
        received = len(self.rtts)
        loss = round(100.0 * (transmitted - received) / transmitted, 3) if transmitted else 100.0
        rtts = [self.rtts[s] for s in sorted(self.rtts)]
        ttls = [self.ttls[s] for s in sorted(self.ttls)]
        return {
            'dest': self.dest,
            'address': self.sockaddr[0] if self.sockaddr else None,
            'family': 'ipv4' if self.family == socket.AF_INET else 'ipv6',
            'netns': self.netns,
            'transmitted': transmitted,
            'received': received,
            'duplicates': self.duplicates,
            'loss': loss,
            'rtt_min': round(min(rtts), 3) if rtts else None,
            'rtt_avg': round(sum(rtts) / len(rtts), 3) if rtts else None,
            'rtt_max': round(max(rtts), 3) if rtts else None,
            'ttl': ttls[0] if ttls else None,
            'ttls': sorted(set(ttls)),
            'errors': self.errors,
        }
