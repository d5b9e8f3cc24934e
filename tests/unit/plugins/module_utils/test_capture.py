"""_capture's decoding and pcap writing, on packets recorded from the tunnels of tests/integration/test_ping_capture.py."""

from __future__ import annotations

import os
import socket
import struct
import subprocess

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils._capture import (
    decode,
    describe,
    innermost,
    pcap_header,
    pcap_record,
)

# The first echo request and its reply as the router's link saw them
# (10.1.0.1 -> router -> 10.2.0.2, inner 10.9.0.1 -> 10.9.0.2, fd09::1 ->
# fd09::2 in sit), in the pcap files the module wrote in
# tests/integration/test_ping_capture.py, which tcpdump read there.
RECORDED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'recorded')


def read_pcap(path: str) -> list[bytes]:
    with open(path, 'rb') as handle:
        data = handle.read()[24:]
    packets = []
    while data:
        length = struct.unpack('=I', data[8:12])[0]
        packets.append(data[16:16 + length])
        data = data[16 + length:]
    return packets


RECORDED = {(mode, direction): packet
            for mode in ('ipip', 'gre', 'sit')
            for direction, packet in zip(('request', 'reply'), read_pcap(os.path.join(RECORDED_DIR, f'{mode}.pcap')))}


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64, frag: int = 0) -> bytes:
    header = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 1, frag, ttl, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes, hlim: int = 64) -> bytes:
    return (struct.pack('!IHBB', 6 << 28, len(payload), next_header, hlim)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + payload)


ECHO4 = struct.pack('!BBHHH', 8, 0, 0, 0x1234, 1) + b'x' * 56
ECHO6 = struct.pack('!BBHHH', 128, 0, 0, 0x1234, 1) + b'x' * 56


def layer(version, src, dst, ttl, protocol, number, **more) -> dict:
    return dict({'version': version, 'src': src, 'dst': dst, 'ttl': ttl, 'protocol': protocol, 'protocol_number': number}, **more)


@pytest.mark.parametrize('mode, direction, outer, gre, inner, summary', [
    ('ipip', 'request', layer(4, '10.1.0.1', '10.2.0.2', 64, 'ipip', 4), None,
     layer(4, '10.9.0.1', '10.9.0.2', 64, 'icmp', 1, icmp='echo-request', icmp_type=8, icmp_code=0, id=50494, seq=1),
     '10.1.0.1 > 10.2.0.2 ipip | 10.9.0.1 > 10.9.0.2 icmp echo-request'),
    ('ipip', 'reply', layer(4, '10.2.0.2', '10.1.0.1', 63, 'ipip', 4), None,
     layer(4, '10.9.0.2', '10.9.0.1', 64, 'icmp', 1, icmp='echo-reply', icmp_type=0, icmp_code=0, id=50494, seq=1),
     '10.2.0.2 > 10.1.0.1 ipip | 10.9.0.2 > 10.9.0.1 icmp echo-reply'),
    ('gre', 'request', layer(4, '10.1.0.1', '10.2.0.2', 64, 'gre', 47), {'key': 7, 'protocol': 0x0800, 'version': 0},
     layer(4, '10.9.0.1', '10.9.0.2', 64, 'icmp', 1, icmp='echo-request', icmp_type=8, icmp_code=0, id=49335, seq=1),
     '10.1.0.1 > 10.2.0.2 gre key 7 | 10.9.0.1 > 10.9.0.2 icmp echo-request'),
    ('sit', 'request', layer(4, '10.1.0.1', '10.2.0.2', 64, 'ipv6', 41), None,
     layer(6, 'fd09::1', 'fd09::2', 64, 'icmpv6', 58, icmp='echo-request', icmp_type=128, icmp_code=0, id=14730, seq=1),
     '10.1.0.1 > 10.2.0.2 sit | fd09::1 > fd09::2 icmpv6 echo-request'),
])
def test_recorded_tunnel_packets_decode_layer_by_layer(mode, direction, outer, gre, inner, summary):
    data = RECORDED[(mode, direction)]
    record = decode(data)
    assert record == {'length': len(data), 'outer': outer, 'gre': gre, 'inner': inner}
    assert describe(record) == summary
    assert innermost(record) is record['inner']


def test_a_plain_packet_has_no_inner_layer():
    record = decode(ipv4('10.1.0.1', '10.2.0.2', 1, ECHO4))
    assert record['gre'] is None and record['inner'] is None and innermost(record) is record['outer']
    assert describe(record) == '10.1.0.1 > 10.2.0.2 icmp echo-request'


def test_gre_with_checksum_sequence_and_ipv6_inside():
    flags = 0x8000 | 0x2000 | 0x1000
    gre = struct.pack('!HH', flags, 0x86DD) + b'\0\0\0\0' + struct.pack('!I', 0xFFFFFFFF) + struct.pack('!I', 9)
    record = decode(ipv4('192.0.2.1', '192.0.2.2', 47, gre + ipv6('fd00::1', 'fd00::2', 58, ECHO6)))
    assert record['gre'] == {'key': 0xFFFFFFFF, 'protocol': 0x86DD, 'version': 0}
    assert describe(record) == '192.0.2.1 > 192.0.2.2 gre key 4294967295 | fd00::1 > fd00::2 icmpv6 echo-request'


def test_gretap_carries_ethernet_and_a_tunnel_in_a_tunnel_nests():
    ethernet = b'\x02' * 12 + struct.pack('!H', 0x0800)
    inner_tunnel = ipv4('10.0.0.1', '10.0.0.2', 4, ipv4('10.9.0.1', '10.9.0.2', 1, ECHO4))
    gre = struct.pack('!HH', 0, 0x6558) + ethernet + inner_tunnel
    record = decode(ipv6('2001:db8::1', '2001:db8::2', 47, gre))
    assert record['gre'] == {'key': None, 'protocol': 0x6558, 'version': 0, 'ethernet': True}
    assert record['inner']['inner']['src'] == '10.9.0.1' and innermost(record)['icmp'] == 'echo-request'
    assert describe(record) == '2001:db8::1 > 2001:db8::2 ip6gre | 10.0.0.1 > 10.0.0.2 ipip | 10.9.0.1 > 10.9.0.2 icmp echo-request'


def test_ipv6_extension_headers_are_skipped_and_fragments_marked():
    hop_by_hop = bytes([58, 0]) + b'\0' * 6
    record = decode(ipv6('fe80::1', 'ff02::16', 0, hop_by_hop + struct.pack('!BBH', 143, 0, 0) + b'\0' * 4, hlim=1))
    assert (record['outer']['protocol'], record['outer']['icmp'], record['outer']['ttl']) == ('icmpv6', 'mldv2-report', 1)
    later = bytes([58, 0]) + struct.pack('!H', 1448) + b'\0' * 4 + b'data'
    record = decode(ipv6('fd00::1', 'fd00::2', 44, later))
    assert record['outer']['fragment_offset'] == 1448 and 'icmp' not in record['outer']
    record = decode(ipv4('10.0.0.1', '10.0.0.2', 1, b'rest of a big echo', frag=185))
    assert describe(record) == '10.0.0.1 > 10.0.0.2 icmp fragment offset 1480'


def test_esp_shows_its_spi():
    record = decode(ipv4('10.1.0.1', '10.2.0.2', 50, struct.pack('!II', 0x1000, 3) + b'\0' * 32))
    assert record['outer']['esp'] == {'spi': 0x1000, 'seq': 3}
    assert describe(record) == '10.1.0.1 > 10.2.0.2 esp spi 0x00001000'


@pytest.mark.parametrize('data', [b'', b'\x45\x00', b'\x00\x01\x08\x00' + b'\0' * 24, RECORDED[('gre', 'request')][:26]])
def test_short_or_foreign_bytes_never_raise(data):
    record = decode(data)
    assert record['length'] == len(data)
    if record['outer'] is None:
        assert describe(record) == f'non-IP packet ({len(data)} bytes)'


def test_the_pcap_file_is_what_tcpdump_reads(tmp_path):
    path = tmp_path / 'recorded.pcap'
    path.write_bytes(pcap_header() + b''.join(pcap_record(1796205421.5 + i, RECORDED[key]) for i, key in enumerate(RECORDED)))
    magic, major, minor, _zone, _sigfigs, snaplen, linktype = struct.unpack('=IHHiIII', path.read_bytes()[:24])
    assert (magic, major, minor, snaplen, linktype) == (0xA1B2C3D4, 2, 4, 262144, 101)
    out = subprocess.run(['tcpdump', '-nn', '-tt', '-r', str(path)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == len(RECORDED)
    assert out[0] == '1796205421.500000 IP 10.1.0.1 > 10.2.0.2: IP 10.9.0.1 > 10.9.0.2: ICMP echo request, id 50494, seq 1, length 64'
    assert out[2] == ('1796205423.500000 IP 10.1.0.1 > 10.2.0.2: GREv0, key=0x7, length 92: '
                      'IP 10.9.0.1 > 10.9.0.2: ICMP echo request, id 49335, seq 1, length 64')
    assert out[4].startswith('1796205425.500000 IP 10.1.0.1 > 10.2.0.2: IP6 fd09::1 > fd09::2: ICMP6, echo request, id 14730, seq 1')


def test_pcap_time_stamps_round_into_the_next_second():
    assert struct.unpack('=IIII', pcap_record(5.9999999, b'')) == (6, 0, 0, 0)
