"""linuxnet.tunnels.ping's capture against the real kernel: what it decodes is what tcpdump reads."""

from __future__ import annotations

import os
import re
import subprocess
import threading

import pytest

from harness import assert_failed, list_netns, run_module
from test_ping import fast, pair, tunnel_lab  # noqa: F401 (pair: a fixture used below) pylint: disable=unused-import

# One IP header as `tcpdump -nn -v` prints it, up to the addresses.
IPV4 = r'IP \(tos \S+, ttl (?P<ttl4>\d+), .*?proto \S+ \((?P<proto4>\d+)\), length \d+\)\s+(?P<src4>[\d.]+) > (?P<dst4>[\d.]+):'
IPV6 = (r'IP6 \((?:flowlabel \S+, )?hlim (?P<ttl6>\d+), next-header \S+ \((?P<proto6>\d+)\) payload length: \d+\) '
        r'(?P<src6>[0-9a-f:]+) > (?P<dst6>[0-9a-f:]+):')
LAYER = re.compile(f'{IPV4}|{IPV6}')
ICMP = re.compile(r'ICMP6?,? (echo request|echo reply)')


def tcpdump(pcap: str) -> list[dict]:
    """Each packet of the file as tcpdump reads it: time, IP layers, GRE key, ICMP type."""
    out = subprocess.run(['tcpdump', '-nn', '-v', '-tt', '-r', pcap], capture_output=True, text=True, check=True).stdout
    packets = []
    for text in re.split(r'\n(?=\d)', out.strip()):
        layers = []
        for match in LAYER.finditer(text):
            version = 4 if match['src4'] else 6
            layers.append({'version': version, 'src': match[f'src{version}'], 'dst': match[f'dst{version}'],
                           'ttl': int(match[f'ttl{version}']), 'protocol_number': int(match[f'proto{version}'])})
        key = re.search(r'key=0x([0-9a-f]+)', text)
        icmp = ICMP.search(text)
        packets.append({'time': text.split()[0], 'layers': layers, 'key': int(key[1], 16) if key else None,
                        'icmp': icmp[1].replace(' ', '-') if icmp else None})
    return packets


def as_tcpdump_reads(packet: dict) -> dict:
    """The module's decoded packet in the same terms."""
    layers, layer, gre = [], packet['outer'], packet['gre']
    while layer is not None:
        layers.append({key: layer[key] for key in ('version', 'src', 'dst', 'ttl', 'protocol_number')})
        inner = packet['inner'] if len(layers) == 1 else layer.get('inner')
        last, layer = layer, inner
    return {'time': f"{packet['time']:.6f}", 'layers': layers, 'key': gre['key'] if gre else None,
            'icmp': last.get('icmp') if last.get('icmp') in ('echo-request', 'echo-reply') else None}


@pytest.mark.tunnel
@pytest.mark.parametrize('mode, outer_proto, key', [('ipip', 4, None), ('gre', 47, 7), ('sit', 41, None)])
def test_decoded_packets_equal_what_tcpdump_reads(make_netns, tmp_path, mode, outer_proto, key):
    a, r, b, inner_a, inner_b = tunnel_lab(make_netns, mode)
    pcap = str(tmp_path / f'{mode}.pcap')
    result = run_module('ping', {'probes': [fast(label='a to b', netns=a, dest=inner_b, ttl=64), fast(label='b to a', netns=b, dest=inner_a)],
                                 'capture': [{'netns': r, 'dev': 'ra', 'pcap': pcap}, {'netns': r, 'dev': 'rb'}]})
    assert not result.get('failed'), result.get('msg')

    on_ra = [p for p in result['packets'] if p['dev'] == 'ra' and p['outer'] is not None]
    read = tcpdump(pcap)
    assert [as_tcpdump_reads(p) for p in on_ra] == read
    # Both probes' requests and replies crossed ra, in the tunnel, both ways.
    echoes = [p for p in on_ra if p['inner'] and p['inner'].get('icmp') in ('echo-request', 'echo-reply')]
    assert len(echoes) == 8, [p['summary'] for p in on_ra]
    assert {(p['outer']['protocol_number'], p['gre']['key'] if p['gre'] else None) for p in echoes} == {(outer_proto, key)}
    assert {(p['direction'], p['outer']['src'], p['inner']['src']) for p in echoes} == {
        ('in', '10.1.0.1', inner_a), ('out', '10.2.0.2', inner_b)}

    # The report: each probe, then the request as each link saw it.
    tunnel = {'ipip': 'ipip', 'gre': 'gre key 7', 'sit': 'sit'}[mode]
    icmp = 'icmpv6' if mode == 'sit' else 'icmp'
    request = f'{inner_a} > {inner_b} {icmp} echo-request'
    assert result['lines'][:3] == ['a to b: 2/2 replies, ttl 64 as expected',
                                   f'  ra: 10.1.0.1 > 10.2.0.2 {tunnel} | {request}',
                                   f'  rb: 10.1.0.1 > 10.2.0.2 {tunnel} | {request}']
    assert result['lines'][4] == f'  ra: 10.2.0.2 > 10.1.0.1 {tunnel} | {inner_b} > {inner_a} {icmp} echo-request'
    # The router decrements the outer TTL only.
    on_rb = [p for p in result['packets'] if p['dev'] == 'rb' and p['inner'] and p['direction'] == 'out']
    assert on_rb and {(p['outer']['ttl'], p['inner']['ttl']) for p in on_rb} == {(63, 64)}


@pytest.mark.tunnel
def test_a_single_probe_captures_too(make_netns):
    a, r, _b, _inner_a, inner_b = tunnel_lab(make_netns, 'ipip')
    result = run_module('ping', dict(fast(netns=a, dest=inner_b), capture=[{'netns': r, 'dev': 'rb'}]))
    assert not result.get('failed'), result.get('msg')
    assert result['received'] == 2
    assert result['lines'] == [f'{a} -> {inner_b}: 2/2 replies, ttl 64', f'  rb: 10.1.0.1 > 10.2.0.2 ipip | 10.9.0.1 > {inner_b} icmp echo-request']
    assert sum(1 for p in result['packets'] if p['inner']) == 4


def open_fds() -> list[str]:
    return sorted(os.listdir('/proc/self/fd'))


@pytest.mark.parametrize('capture, words', [
    ({'netns': 'ltnosuchns', 'dev': 'lo'}, ["capture: network namespace 'ltnosuchns' does not exist"]),
    ({'dev': 'nosuchlink'}, ["capture: link 'nosuchlink' does not exist in namespace '"]),
    ({'dev': 'bad/name'}, ['capture.dev']),
])
def test_a_missing_namespace_or_link_is_a_clear_error_and_nothing_is_left(pair, capture, words):
    a, b = pair
    if 'netns' not in capture:
        capture = dict(capture, netns=b)
    namespaces, threads, fds = list_netns(), threading.active_count(), open_fds()
    # The first capture opens before the second one fails: it must be closed again.
    result = run_module('ping', {'dest': '10.1.0.2', 'netns': a, 'count': 1, 'capture': [{'netns': b, 'dev': 'ba'}, capture]})
    assert_failed(result, *words)
    assert (list_netns(), threading.active_count(), open_fds()) == (namespaces, threads, fds)


def test_nothing_is_left_after_a_capture(pair, tmp_path):
    a, b = pair
    namespaces, threads, fds = list_netns(), threading.active_count(), open_fds()
    result = run_module('ping', {'probes': [fast(dest='10.1.0.2'), fast(dest='fd01::2')], 'netns': a,
                                 'capture': [{'netns': b, 'dev': 'ba', 'pcap': str(tmp_path / 'ba.pcap')}, {'netns': a, 'dev': 'ab'}]})
    assert not result.get('failed'), result.get('msg')
    assert (list_netns(), threading.active_count(), open_fds()) == (namespaces, threads, fds)
    assert len([p for p in result['packets'] if p['outer'] and p['outer'].get('icmp') in ('echo-request', 'echo-reply')]) == 16


def test_an_unwritable_pcap_is_a_clear_error(pair, tmp_path):
    a, b = pair
    result = run_module('ping', {'dest': '10.1.0.2', 'netns': a, 'count': 1,
                                 'capture': [{'netns': b, 'dev': 'ba', 'pcap': str(tmp_path / 'missing' / 'ba.pcap')}]})
    assert_failed(result, f"capture: could not write '{tmp_path}/missing/ba.pcap'", 'No such file or directory')
