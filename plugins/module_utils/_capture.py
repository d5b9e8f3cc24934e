# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Packet capture on a link inside a namespace, and the decoding of what it caught.

A packet socket (AF_PACKET, SOCK_DGRAM: the network-layer packet without the
link-layer header, so veths and tunnel devices look the same) is made by a
thread inside the namespace and bound to one link. The decoding is pure:
outer IPv4/IPv6 header, GRE where present, the packet inside, ICMP/ICMPv6.
"""

from __future__ import annotations

import errno
import socket
import struct
import time

from ansible_collections.linuxnet.tunnels.plugins.module_utils._enter import run_in_netns
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import NamespaceMissing, ResourceError, error_text, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import check_ifname, check_netns_name, netns_exists

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ARP = 0x0806
ETH_P_TEB = 0x6558  # transparent Ethernet bridging: gretap
ETHERTYPES = {ETH_P_ARP: 'arp'}  # names for the summary of a packet that is not IP
PACKET_OUTGOING = 4
SNAPLEN = 262144
LINKTYPE_RAW = 101  # pcap: the packet starts with its IPv4 or IPv6 header

PROTOCOLS = {1: 'icmp', 2: 'igmp', 4: 'ipip', 6: 'tcp', 17: 'udp', 41: 'ipv6', 47: 'gre', 50: 'esp', 51: 'ah',
             58: 'icmpv6', 89: 'ospf', 132: 'sctp'}
# What the outer header carrying each protocol is called as a tunnel, by outer IP version.
ENCAPSULATIONS = {(4, 4): 'ipip', (4, 41): 'sit', (4, 47): 'gre', (6, 4): 'ipip6', (6, 41): 'ip6ip6', (6, 47): 'ip6gre'}
ICMP_TYPES = {0: 'echo-reply', 3: 'unreachable', 4: 'source-quench', 5: 'redirect', 8: 'echo-request',
              11: 'time-exceeded', 12: 'parameter-problem', 13: 'timestamp', 14: 'timestamp-reply'}
ICMP6_TYPES = {1: 'unreachable', 2: 'packet-too-big', 3: 'time-exceeded', 4: 'parameter-problem',
               128: 'echo-request', 129: 'echo-reply', 130: 'mld-query', 131: 'mld-report', 132: 'mld-done',
               133: 'router-solicitation', 134: 'router-advertisement', 135: 'neighbor-solicitation',
               136: 'neighbor-advertisement', 137: 'redirect', 143: 'mldv2-report'}
ECHO_TYPES = {(4, 0), (4, 8), (6, 128), (6, 129)}
# IPv6 extension headers skipped on the way to the upper-layer protocol.
IPV6_EXTENSIONS = {0, 43, 60}
IPV6_FRAGMENT = 44
GRE_FLAG_CSUM, GRE_FLAG_KEY, GRE_FLAG_SEQ = 0x8000, 0x2000, 0x1000
MAX_DEPTH = 4  # nested tunnels decoded before giving up


def decode(data: bytes) -> dict:
    """A network-layer packet, layer by layer.

    `outer` is the first IP header, `gre` the GRE header after it (null
    without one), `inner` the IP packet inside a tunnel (null for a plain
    packet; an inner packet that is itself a tunnel packet is in
    `inner.inner`). Each IP layer: version, src, dst, ttl (the hop limit for
    IPv6), protocol (name), protocol_number, and for ICMP/ICMPv6 the `icmp`
    type name, `icmp_type`, `icmp_code` (and `id`, `seq` of an echo).
    """
    record: dict = {'length': len(data), 'outer': None, 'gre': None, 'inner': None}
    if not data:
        return record
    outer = _ip_layer(data, 0)
    record['outer'] = outer
    if outer is None:
        return record
    record['gre'] = outer.pop('gre', None)
    record['inner'] = outer.pop('inner', None)
    return record


def _ip_layer(data: bytes, depth: int) -> dict | None:
    version = data[0] >> 4 if data else 0
    if version == 4 and len(data) >= 20:
        ihl = (data[0] & 0x0F) * 4
        layer = {
            'version': 4,
            'src': socket.inet_ntop(socket.AF_INET, data[12:16]),
            'dst': socket.inet_ntop(socket.AF_INET, data[16:20]),
            'ttl': data[8],
            'protocol_number': data[9],
        }
        fragment_offset = struct.unpack('!H', data[6:8])[0] & 0x1FFF
        payload = data[ihl:] if fragment_offset == 0 else b''
        if fragment_offset:
            layer['fragment_offset'] = fragment_offset * 8
    elif version == 6 and len(data) >= 40:
        layer = {
            'version': 6,
            'src': socket.inet_ntop(socket.AF_INET6, data[8:24]),
            'dst': socket.inet_ntop(socket.AF_INET6, data[24:40]),
            'ttl': data[7],
        }
        proto, payload = _ipv6_upper(data[6], data[40:], layer)
        layer['protocol_number'] = proto
    else:
        return None
    proto = layer['protocol_number']
    layer['protocol'] = PROTOCOLS.get(proto, str(proto))
    if not payload:
        return layer
    if proto in (1, 58) and len(payload) >= 4:
        _icmp(layer, payload)
    elif proto == 47 and len(payload) >= 4:
        layer['gre'], inner = _gre(payload)
        if inner is not None and depth < MAX_DEPTH:
            layer['inner'] = _ip_layer(inner, depth + 1)
    elif proto in (4, 41) and depth < MAX_DEPTH:
        layer['inner'] = _ip_layer(payload, depth + 1)
    elif proto == 50 and len(payload) >= 8:
        spi, seq = struct.unpack('!II', payload[:8])
        layer['esp'] = {'spi': spi, 'seq': seq}
    return layer


def _ipv6_upper(next_header: int, data: bytes, layer: dict) -> tuple[int, bytes]:
    """Skip hop-by-hop, routing and destination options headers; stop at a non-first fragment."""
    while next_header in IPV6_EXTENSIONS or next_header == IPV6_FRAGMENT:
        if len(data) < 8:
            return next_header, b''
        if next_header == IPV6_FRAGMENT:
            offset = struct.unpack('!H', data[2:4])[0] & 0xFFF8
            next_header, data = data[0], data[8:]
            if offset:
                layer['fragment_offset'] = offset
                return next_header, b''
            continue
        next_header, data = data[0], data[(data[1] + 1) * 8:]
    return next_header, data


def _icmp(layer: dict, payload: bytes) -> None:
    kind, code = payload[0], payload[1]
    names = ICMP_TYPES if layer['version'] == 4 else ICMP6_TYPES
    layer['icmp'] = names.get(kind, f'type-{kind}')
    layer['icmp_type'] = kind
    layer['icmp_code'] = code
    if (layer['version'], kind) in ECHO_TYPES and len(payload) >= 8:
        layer['id'], layer['seq'] = struct.unpack('!HH', payload[4:8])


def _gre(payload: bytes) -> tuple[dict, bytes | None]:
    flags, proto = struct.unpack('!HH', payload[:4])
    offset = 4 + (4 if flags & GRE_FLAG_CSUM else 0)
    gre: dict = {'key': None, 'protocol': proto, 'version': flags & 0x7}
    if flags & GRE_FLAG_KEY:
        if len(payload) < offset + 4:
            return gre, None
        gre['key'] = struct.unpack('!I', payload[offset:offset + 4])[0]
        offset += 4
    if flags & GRE_FLAG_SEQ:
        offset += 4
    inner = payload[offset:]
    if proto == ETH_P_TEB and len(inner) >= 14:
        gre['ethernet'] = True
        proto, inner = struct.unpack('!H', inner[12:14])[0], inner[14:]
    if proto not in (ETH_P_IP, ETH_P_IPV6):
        return gre, None
    return gre, inner


def describe(record: dict) -> str:
    """One line per packet, the walkthrough's way:
    `10.10.10.2 > 10.10.20.2 gre key 1 | 10.10.100.10 > 10.10.200.10 icmp echo-request`."""
    if record['outer'] is None:
        return f"non-IP packet ({record['length']} bytes)"
    return _describe_layer(record['outer'], record['gre'], record['inner'])


def _describe_layer(layer: dict, gre: dict | None, inner: dict | None) -> str:
    text = f"{layer['src']} > {layer['dst']} "
    encapsulation = ENCAPSULATIONS.get((layer['version'], layer['protocol_number']))
    if inner is not None and encapsulation:
        text += encapsulation
        if gre is not None and gre['key'] is not None:
            text += f" key {gre['key']}"
        return text + ' | ' + _describe_layer(inner, inner.get('gre'), inner.get('inner'))
    text += layer['protocol']
    if 'icmp' in layer:
        text += ' ' + layer['icmp']
    if 'esp' in layer:
        text += f" spi 0x{layer['esp']['spi']:08x}"
    if gre is not None and gre['key'] is not None:
        text += f" key {gre['key']}"
    if 'fragment_offset' in layer:
        text += f" fragment offset {layer['fragment_offset']}"
    return text


def innermost(record: dict) -> dict | None:
    """The deepest IP layer of a decoded packet (the one an echo request was sent as)."""
    layer, inner = record['outer'], record['inner']
    while inner is not None:
        layer, inner = inner, inner.get('inner')
    return layer


def pcap_header() -> bytes:
    """A pcap file header (microsecond timestamps, raw IP packets)."""
    return struct.pack('=IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_RAW)


def pcap_record(timestamp: float, data: bytes) -> bytes:
    seconds = int(timestamp)
    micros = int(round((timestamp - seconds) * 1e6))
    if micros >= 1000000:
        seconds, micros = seconds + 1, micros - 1000000
    return struct.pack('=IIII', seconds, micros, len(data), len(data)) + data


def _open_packet_socket(dev: str) -> socket.socket:
    """Called inside the namespace. Protocol 0 receives nothing until bind()
    names the link, so no packet of another link gets in first."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    try:
        sock.bind((dev, ETH_P_ALL))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Capture:
    """One link's capture: open() before the probes start, receive() while they run, close() after."""

    def __init__(self, params: dict) -> None:
        self.netns: str | None = params.get('netns') or None
        self.dev: str = params['dev']
        self.pcap: str | None = params.get('pcap')
        self.sock: socket.socket | None = None
        self.frames: list[tuple[float, str, int, bytes]] = []  # (time, direction, ethertype, packet)

    def validate(self) -> None:
        if self.netns is not None:
            check_netns_name(self.netns, 'capture.netns')
        check_ifname(self.dev, 'capture.dev')

    def open(self) -> None:
        if self.netns and not netns_exists(self.netns):
            raise ResourceError(f"capture: network namespace '{self.netns}' does not exist")
        try:
            self.sock = run_in_netns(self.netns, _open_packet_socket, self.dev)
        except NamespaceMissing:
            raise ResourceError(f"capture: network namespace '{self.netns}' does not exist") from None
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise ResourceError(f"capture: link '{self.dev}' does not exist in {where(self.netns)}") from None
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise ResourceError('capture: could not open a packet socket: operation not permitted; the module needs root (become: true)') from None
            raise ResourceError(f"capture: could not capture on '{self.dev}' in {where(self.netns)}: {error_text(exc)}") from None

    def receive(self) -> None:
        """Read whatever has arrived (the socket is non-blocking)."""
        while True:
            try:
                data, addr = self.sock.recvfrom(SNAPLEN)
            except (BlockingIOError, InterruptedError):
                return
            direction = 'out' if addr[2] == PACKET_OUTGOING else 'in'
            self.frames.append((time.time(), direction, addr[1], data))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def write_pcap(self) -> None:
        """IP packets only: the file's link type is raw IPv4/IPv6."""
        if not self.pcap:
            return
        try:
            with open(self.pcap, 'wb') as handle:
                handle.write(pcap_header())
                for when, _direction, ethertype, data in self.frames:
                    if ethertype in (ETH_P_IP, ETH_P_IPV6):
                        handle.write(pcap_record(when, data))
        except OSError as exc:
            raise ResourceError(f"capture: could not write '{self.pcap}': {error_text(exc)}") from None

    def packets(self) -> list[dict]:
        result = []
        for when, direction, ethertype, data in self.frames:
            ip = ethertype in (ETH_P_IP, ETH_P_IPV6)
            record = decode(data) if ip else {'length': len(data), 'outer': None, 'gre': None, 'inner': None}
            record.update(netns=self.netns, dev=self.dev, direction=direction, time=round(when, 6), ethertype=ethertype)
            record['summary'] = describe(record) if ip else f"{ETHERTYPES.get(ethertype, f'ethertype 0x{ethertype:04x}')} ({len(data)} bytes)"
            result.append(record)
        return result
