"""ICMP encoding and decoding of _ping.py, on hand-made packets (no socket, no kernel)."""

from __future__ import annotations

import socket
import struct

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils import _ping, _probes
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError

PARAMS = {'dest': '10.0.0.2', 'netns': None, 'count': 3, 'interval': 0.1, 'timeout': 2.0, 'size': 16,
          'dont_fragment': False, 'max_loss': 0}


def test_checksum_rfc1071_example():
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2 (one's complement: 0x220d).
    assert _ping.checksum(bytes.fromhex('0001f203f4f5f6f7')) == 0x220D
    assert _ping.checksum(b'\x01') == _ping.checksum(b'\x01\x00')  # odd lengths are padded


def test_ipv4_echo_request_checks_out():
    packet = _ping.echo_request(socket.AF_INET, 0x1234, 7, b'payload!')
    kind, code, _csum, ident, seq = struct.unpack('!BBHHH', packet[:8])
    assert (kind, code, ident, seq, packet[8:]) == (_ping.ICMP_ECHO, 0, 0x1234, 7, b'payload!')
    assert _ping.checksum(packet) == 0  # a correct checksum sums the message to zero


def test_ipv6_echo_request_leaves_the_checksum_to_the_kernel():
    packet = _ping.echo_request(socket.AF_INET6, 1, 2, b'x')
    assert struct.unpack('!BBHHH', packet[:8]) == (_ping.ICMP6_ECHO_REQUEST, 0, 0, 1, 2)


def pinger() -> _ping.Pinger:
    result = _ping.Pinger(dict(PARAMS))
    result.sockaddr = ('10.0.0.2', 0)
    result.sent = {1: 100.0, 2: 100.5}
    return result


def ipv4(payload: bytes, source: str = '10.0.0.2', dest: str = '10.0.0.1', ttl: int = 63) -> bytes:
    return struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 0, 0, ttl, 1, 0,
                       socket.inet_aton(source), socket.inet_aton(dest)) + payload


def reply(p: _ping.Pinger, seq: int, kind: int = _ping.ICMP_ECHO_REPLY) -> bytes:
    return struct.pack('!BBHHH', kind, 0, 0, p.ident, seq) + p.payload


def test_an_echo_reply_counts_with_its_rtt_and_ttl():
    p = pinger()
    p._handle_v4(ipv4(reply(p, 1)), '10.0.0.2', 100.25)
    assert p.rtts == {1: 250.0} and p.ttls == {1: 63}
    p._handle_v4(ipv4(reply(p, 1)), '10.0.0.2', 100.3)
    assert p.duplicates == 1


def test_replies_of_others_do_not_count():
    p = pinger()
    other = bytearray(reply(p, 2))
    other[8] ^= 0xFF  # another pinger's cookie
    p._handle_v4(ipv4(bytes(other)), '10.0.0.2', 100.6)
    p._handle_v4(ipv4(reply(p, 9)), '10.0.0.2', 100.6)  # never sent
    p._handle_v4(ipv4(reply(p, 2), source='10.0.0.9'), '10.0.0.9', 100.6)  # from elsewhere
    p._handle_v4(ipv4(reply(p, 2)), '10.0.0.2', 103.0)  # after the timeout
    assert p.rtts == {}


def test_an_icmp_error_quoting_our_request_is_reported():
    p = pinger()
    quoted = ipv4(_ping.echo_request(socket.AF_INET, p.ident, 2, p.payload), source='10.0.0.1', dest='10.0.0.2')
    frag_needed = struct.pack('!BBHHH', 3, 4, 0, 0, 1400) + quoted
    p._handle_v4(ipv4(frag_needed, source='10.0.0.254'), '10.0.0.254', 101.0)
    assert p.errors == ['icmp_seq=2: Fragmentation needed and DF set (next-hop MTU 1400) (from 10.0.0.254)']
    expired = struct.pack('!BBHHH', 11, 0, 0, 0, 0) + quoted
    p._handle_v4(ipv4(expired, source='10.0.0.254'), '10.0.0.254', 101.0)
    assert p.errors[-1] == 'icmp_seq=2: Time to live exceeded (from 10.0.0.254)'


def test_ipv6_packet_too_big():
    p = _ping.Pinger(dict(PARAMS, dest='fd00::2'))
    p.family, p.sockaddr, p.sent = socket.AF_INET6, ('fd00::2', 0, 0, 0), {5: 1.0}
    inner = (struct.pack('!IHBB', 0x60000000, 8, 58, 64) + socket.inet_pton(socket.AF_INET6, 'fd00::1')
             + socket.inet_pton(socket.AF_INET6, 'fd00::2') + _ping.echo_request(socket.AF_INET6, p.ident, 5, p.payload))
    p._handle_v6(struct.pack('!BBHI', 2, 0, 0, 1280) + inner, 'fd00::fe', None, 1.1)
    assert p.errors == ['icmp_seq=5: Packet too big (MTU 1280) (from fd00::fe)']
    p._handle_v6(struct.pack('!BBHHH', _ping.ICMP6_ECHO_REPLY, 0, 0, p.ident, 5) + p.payload, 'fd00::2', 64, 1.002)
    assert p.ttls == {5: 64} and round(p.rtts[5], 3) == 2.0


def test_summary_and_loss_message():
    p = pinger()
    p.rtts = {1: 1.5}
    result = p.summary()
    assert (result['transmitted'], result['received'], result['loss'], result['rtt_avg']) == (2, 1, 50.0, 1.5)
    probe = dict(PARAMS, expect='reply')
    assert _probes.problem(probe, result) == '1 of 2 echo requests lost (50% loss, max_loss is 0%)'
    assert _probes.problem(dict(probe, max_loss=50), result) is None


@pytest.mark.parametrize('change, option', [
    ({'count': 0}, 'count'), ({'interval': -1}, 'interval'), ({'timeout': 0}, 'timeout'),
    ({'size': -1}, 'size'), ({'max_loss': 101}, 'max_loss'), ({'dest': 'a b'}, 'dest'), ({'netns': 'a/b'}, 'netns'),
])
def test_validate(change, option):
    with pytest.raises(ResourceError, match=f'^{option}: '):
        _ping.validate(dict(PARAMS, **change))
