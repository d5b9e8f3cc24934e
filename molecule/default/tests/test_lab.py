# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verify the converged lab out of band: iproute2, iputils ping and tcpdump.

Nothing here goes through the collection's modules. The scenario says which
variant it built through LAB_MODE (ipip, gre, sit, isatap, vti) and LAB_ROUTER_NETNS
(empty: the router is the namespace the tests run in).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex

import pytest

MODE = os.environ.get('LAB_MODE', 'ipip')
ROUTER = os.environ.get('LAB_ROUTER_NETNS', 'ipip-router')
# ISATAP addresses hold the underlay ones; ip and tcpdump print them in hex.
ISATAP = tuple(str(ipaddress.IPv6Address(f'fd00:5::5efe:{a}')) for a in ('10.10.10.2', '10.10.20.2'))
INNER1, INNER2 = {'sit': ('fd00:100::10', 'fd00:200::10'), 'isatap': ISATAP}.get(MODE, ('10.10.100.10', '10.10.200.10'))
IPV6 = MODE in ('sit', 'isatap')
# The route to the far inner address: the peer's /32 or /128, or the ISATAP /64.
INNER_ROUTE = 'fd00:5::/64' if MODE == 'isatap' else INNER2
# Outer IP protocol number and how tcpdump -v names it.
PROTO = {'ipip': (4, 'IPIP'), 'gre': (47, 'GRE'), 'sit': (41, 'IPv6'), 'isatap': (41, 'IPv6'), 'vti': (50, 'ESP')}[MODE]
ECHO = 'ICMP6, echo request' if IPV6 else 'ICMP echo request'


def in_router(command: str) -> str:
    return f'ip netns exec {ROUTER} {command}' if ROUTER else command


def ping(host, netns: str, dest: str) -> tuple[list[int], str]:
    """Reply TTLs of three echo requests; check_output fails on any loss."""
    out = host.check_output(f'ip netns exec {netns} ping -n -c 3 -i 0.2 -W 2 {dest}')
    assert ' 0% packet loss' in out, out
    return [int(ttl) for ttl in re.findall(r'ttl=(\d+)', out)], out


@pytest.mark.parametrize(
    ('netns', 'dest', 'ttl'),
    [
        ('ns1', INNER2, 64),  # through tunl: one hop
        ('ns2', INNER1, 64),  # through tunr: one hop
        ('ns1', '10.10.20.2', 63),  # routed by the router
        ('ns2', '10.10.10.2', 63),
    ],
)
def test_ping_ttl(host, netns, dest, ttl):
    ttls, out = ping(host, netns, dest)
    assert ttls == [ttl] * 3, out


def test_ns1_routes(host):
    routes = json.loads(host.check_output('ip -n ns1 -j route show'))
    assert {'dst': '10.10.20.0/24', 'gateway': '10.10.10.1', 'dev': 'v1'}.items() <= next(
        r for r in routes if r['dst'] == '10.10.20.0/24'
    ).items(), routes
    family = '-6' if IPV6 else '-4'
    inner = json.loads(host.check_output(f'ip -n ns1 {family} -j route show {INNER_ROUTE}'))
    assert [(r['dst'], r['dev']) for r in inner] == [(INNER_ROUTE, 'tunl')], inner


@pytest.mark.parametrize(
    ('netns', 'name', 'local', 'remote'),
    [('ns1', 'tunl', '10.10.10.2', '10.10.20.2'), ('ns2', 'tunr', '10.10.20.2', '10.10.10.2')],
)
def test_tunnel_link(host, netns, name, local, remote):
    [link] = json.loads(host.check_output(f'ip -n {netns} -d -j link show {name}'))
    info = link['linkinfo']
    assert info['info_kind'] == ('sit' if MODE == 'isatap' else MODE), link
    if MODE == 'isatap':  # no fixed remote end: the IPv4 destination comes from the IPv6 one
        remote = 'any'
        assert info['info_data']['isatap'], link
    assert (info['info_data']['local'], info['info_data']['remote']) == (local, remote), link
    assert 'UP' in link['flags'], link


def test_router_forwards(host):
    assert host.check_output(in_router('sysctl -n net.ipv4.ip_forward')) == '1'


def test_capture_shows_both_layers(host):
    """tcpdump -v on the router's side of v1 prints the outer and the inner packet."""
    proto, name = PROTO
    script = f"""
        set -e
        d=$(mktemp -d)
        {in_router(f'timeout 10 tcpdump -n -v -l -i v1-P -c 1 ip proto {proto}')} >"$d/out" 2>"$d/err" &
        pid=$!
        for i in $(seq 100); do grep -q 'listening on' "$d/err" && break; sleep 0.05; done
        ip netns exec ns1 ping -n -c 3 -i 0.2 -W 2 {INNER2} >/dev/null
        wait $pid
        cat "$d/out"
        rm -rf "$d"
    """
    out = host.check_output(f'sh -c {shlex.quote(script)}')
    assert f'proto {name} ({proto})' in out, out
    outer = re.escape('10.10.10.2 > 10.10.20.2')
    if MODE == 'vti':  # encrypted: the inner packet must not show
        assert re.search(f'{outer}: ESP\\(spi=0x00001000', out) and 'ICMP' not in out, out
        return
    inner = re.escape(f'{INNER1} > {INNER2}')
    assert re.search(f'{outer}: .*{inner}: .*{re.escape(ECHO)}', out, re.DOTALL), out


@pytest.mark.skipif(MODE != 'vti', reason='only the vti lab has IPsec')
@pytest.mark.parametrize('netns', ['ns1', 'ns2'])
def test_ipsec_states_and_policies(host, netns):
    """Two ESP states (one a direction) and an out and an in policy marked with the vti key."""
    states = host.check_output(f'ip -n {netns} xfrm state')
    assert states.count('proto esp spi ') == 2 and states.count('aead rfc4106(gcm(aes))') == 2, states
    policies = host.check_output(f'ip -n {netns} xfrm policy')
    assert {'dir out', 'dir in'} <= set(re.findall(r'dir \w+', policies)), policies
    assert policies.count('mark 0x2a/0xffffffff') == 2, policies
