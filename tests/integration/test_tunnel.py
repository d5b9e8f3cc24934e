"""linuxnet.tunnels.tunnel against the real kernel.

Tests marked `tunnel` need ipip/gre/sit/vti: on a host without them run
    scripts/uml-run --timeout 900 -- .venv/bin/pytest -q -p no:cacheprovider -m tunnel tests/integration/test_tunnel.py
The unmarked ones run natively: refusals that must happen before the kernel is
asked, and the message of a kernel that lacks the tunnel modes.
Every check reads the kernel out of band with `ip -d -j link show`.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time

import pytest

from harness import assert_failed, assert_rhythm, ip, ip_json, kernel_snapshot, links, list_netns, rhythm, run_module, unique

tunnel = pytest.mark.tunnel
MODES = ['ipip', 'gre', 'sit', 'isatap', 'vti']


# ---------------------------------------------------------------------------
# helpers

def oob(name: str, netns: str | None = None) -> dict | None:
    """The tunnel as `ip -d -j link show` reports it, in comparable terms."""
    link = links(netns).get(name)
    if link is None:
        return None
    info = link.get('linkinfo', {})
    data = info.get('info_data', {})

    def key(direction: str):
        value = data.get(direction + 'key')
        return None if value is None else int(ipaddress.IPv4Address(value))

    tos = data.get('tos')
    return {
        'kind': info.get('info_kind'),
        'isatap': bool(data.get('isatap')),
        'local': data.get('local'),
        'remote': data.get('remote'),
        'dev': data.get('link'),
        'ttl': data.get('ttl'),
        'tos': None if tos is None else int(tos, 16),
        'pmtudisc': data.get('pmtudisc'),
        'ikey': key('i'),
        'okey': key('o'),
        'csum': (bool(data.get('icsum')), bool(data.get('ocsum'))),
        'seq': (bool(data.get('iseq')), bool(data.get('oseq'))),
        'encap': data.get('encap'),
        'mtu': link.get('mtu'),
        'up': 'UP' in link.get('flags', []),
        'ifindex': link.get('ifindex'),
    }


FALLBACK = ('tunl0', 'gre0', 'gretap0', 'erspan0', 'sit0', 'ip_vti0')


def snapshot(ns: str) -> dict:
    """kernel_snapshot of one namespace without the fallback devices, which
    the kernel adds to every namespace when a test first loads a tunnel module.
    (Not the host-wide namespace list: other test runs change it meanwhile.)"""
    snap = kernel_snapshot([ns])[ns]
    snap['links'] = [l for l in snap['links'] if l[0] not in FALLBACK]
    snap['addrs'] = [a for a in snap['addrs'] if json.loads(a)['ifname'] not in FALLBACK]
    return snap


def module_rhythm(params: dict, changes: bool = True) -> list[dict]:
    results = rhythm('tunnel', params)
    assert_rhythm(results, changes)
    return results


def underlay(netns: str, name: str = 'ul', address: str = '10.0.0.1/24') -> None:
    """A veth (the host has no dummy) whose local end carries the tunnel endpoints."""
    ip('link', 'add', name, 'type', 'veth', 'peer', 'name', name + 'p', netns=netns)
    ip('addr', 'add', address, 'dev', name, netns=netns)
    ip('link', 'set', name, 'up', netns=netns)


MODULES = {'ipip': 'ipip', 'gre': 'ip_gre', 'sit': 'sit', 'isatap': 'sit', 'vti': 'ip_vti'}


def host_has_ipip(make_netns) -> bool:
    probe = make_netns('p')
    # With endpoints: one without would collide with the fallback device tunl0 where ipip exists.
    return ip('link', 'add', 'probe', 'type', 'ipip', 'local', '10.255.0.1', 'remote', '10.255.0.2', netns=probe, check=False).returncode == 0


# Each mode: the options it is created with, then one step per attribute:
# (options to change, what `ip -d -j link` must show differently afterwards).
BASE = {
    'ipip': {'local': '10.0.0.1', 'remote': '10.0.0.2'},
    'gre': {'local': '10.0.0.1', 'remote': '10.0.0.2'},
    'sit': {'local': '10.0.0.1', 'remote': '10.0.0.2'},
    'isatap': {'local': '10.0.0.1'},
    'vti': {'local': '10.0.0.1', 'remote': '10.0.0.2'},
}
COMMON_STEPS = [
    ({'local': '10.0.0.11'}, {'local': '10.0.0.11'}),
    ({'mtu': 1300}, {'mtu': 1300}),
    ({'dev': 'ul'}, {'dev': 'ul'}),  # the kernel would recompute the MTU if the request lacked it
    ({'up': False}, {'up': False}),
    ({'up': True}, {'up': True}),
]
REMOTE_STEP = [({'remote': '10.0.0.22'}, {'remote': '10.0.0.22'})]
IPTUN_STEPS = [
    ({'ttl': 32}, {'ttl': 32}),
    ({'ttl': 'inherit', 'pmtudisc': False}, {'ttl': 0, 'pmtudisc': False}),
    ({'pmtudisc': True}, {'pmtudisc': True}),
    ({'ttl': 255}, {'ttl': 255}),
    ({'tos': '0x10'}, {'tos': 0x10}),
    ({'tos': 'inherit'}, {'tos': 1}),
    ({'tos': 0}, {'tos': None}),  # ip -j leaves tos 0 out
]
KEY_STEPS = [
    ({'key': 10}, {'ikey': 10, 'okey': 10}),
    ({'key': None, 'ikey': 11, 'okey': '0.0.0.12'}, {'ikey': 11, 'okey': 12}),
    ({'ikey': None, 'okey': None, 'key': 'none'}, {'ikey': None, 'okey': None}),
]
GRE_STEPS = [
    ({'csum': True}, {'csum': (True, True)}),
    ({'seq': True}, {'seq': (True, True)}),
    ({'csum': False}, {'csum': (False, False)}),
    ({'key': 7}, {'ikey': 7, 'okey': 7}),  # keys next to flags
    ({'seq': False}, {'seq': (False, False)}),
]
STEPS = {
    'ipip': REMOTE_STEP + COMMON_STEPS + IPTUN_STEPS,
    'gre': REMOTE_STEP + COMMON_STEPS + IPTUN_STEPS + KEY_STEPS + GRE_STEPS,
    'sit': REMOTE_STEP + COMMON_STEPS[:1] + [({'mtu': 1400}, {'mtu': 1400})] + COMMON_STEPS[2:] + IPTUN_STEPS,  # sit's minimum is 1280
    'isatap': COMMON_STEPS[:1] + [({'mtu': 1400}, {'mtu': 1400})] + COMMON_STEPS[2:] + IPTUN_STEPS,
    'vti': REMOTE_STEP + COMMON_STEPS + KEY_STEPS,
}
KIND = {'ipip': 'ipip', 'gre': 'gre', 'sit': 'sit', 'isatap': 'sit', 'vti': 'vti'}


# ---------------------------------------------------------------------------
# every mode: create, change each attribute, delete

@tunnel
@pytest.mark.parametrize('mode', MODES)
def test_lifecycle_of_every_mode(mode, make_netns):
    ns = make_netns()
    underlay(ns)
    name = unique('t')
    params = {'name': name, 'netns': ns, 'mode': mode, **BASE[mode]}

    # create: the check run creates nothing
    check = run_module('tunnel', params, check=True)
    assert check['changed'] and check['action'] == 'create' and oob(name, ns) is None, check
    results = [check] + [run_module('tunnel', params, check=c) for c in (False, True, False)]
    assert_rhythm(results)
    seen = oob(name, ns)
    assert seen['kind'] == KIND[mode] and seen['isatap'] == (mode == 'isatap')
    assert seen['local'] == '10.0.0.1' and seen['up']
    assert seen['remote'] == BASE[mode].get('remote', 'any')
    got = results[3]['tunnel']
    assert got['mode'] == mode and got['ifindex'] == seen['ifindex'] and got['mtu'] == seen['mtu']
    assert results[1]['tunnel'] == got

    # change one attribute at a time; everything else must stay as it was
    for delta, shows in STEPS[mode]:
        params.update(delta)
        for option in [k for k, v in delta.items() if v is None]:
            params.pop(option)
        before = seen
        results = module_rhythm(params)
        assert results[1]['action'] == 'update', (delta, results[1])
        seen = oob(name, ns)
        assert seen == dict(before, **shows), delta
        assert results[3]['tunnel']['ifindex'] == before['ifindex']
        # what the check run predicted is what the real run produced
        assert results[0]['tunnel'] == results[1]['tunnel'] == results[3]['tunnel'], delta

    # delete
    results = module_rhythm({'name': name, 'netns': ns, 'state': 'absent'})
    assert results[1]['action'] == 'delete' and results[3]['tunnel'] is None
    assert oob(name, ns) is None


@tunnel
@pytest.mark.parametrize('mode', ['ipip', 'gre', 'sit', 'vti'])
def test_remote_between_any_and_an_address_recreates(mode, make_netns):
    ns = make_netns()
    name = unique('t')
    ttl = {} if mode == 'vti' else {'ttl': 17}
    module_rhythm({'name': name, 'netns': ns, 'mode': mode, 'local': '10.0.0.1', 'remote': '10.0.0.2', 'mtu': 1400, **ttl})
    old = oob(name, ns)
    results = module_rhythm({'name': name, 'netns': ns, 'mode': mode, 'remote': 'any'})
    assert results[1]['action'] == 'replace' and 'point-to-point' in results[1]['note']
    new = oob(name, ns)
    assert new['remote'] == 'any' and new['ifindex'] != old['ifindex']
    # everything not asked for is carried over
    assert {k: v for k, v in new.items() if k not in ('remote', 'ifindex')} == {k: v for k, v in old.items() if k not in ('remote', 'ifindex')}
    results = module_rhythm({'name': name, 'netns': ns, 'mode': mode, 'remote': '10.0.0.3'})
    assert results[1]['action'] == 'replace' and oob(name, ns)['remote'] == '10.0.0.3'


@tunnel
@pytest.mark.parametrize('old, new', [('ipip', 'gre'), ('gre', 'vti'), ('sit', 'isatap'), ('isatap', 'sit'), ('vti', 'ipip')])
def test_mode_change_recreates(old, new, make_netns):
    ns = make_netns()
    name = unique('t')
    keys = {'key': 5} if old in ('gre', 'vti') else {}
    module_rhythm({'name': name, 'netns': ns, 'mode': old, 'local': '10.0.0.1', **BASE[old], **keys})
    results = module_rhythm({'name': name, 'netns': ns, 'mode': new, **BASE[new]})
    assert results[1]['action'] == 'replace' and f'from {old} to {new}' in results[1]['note']
    assert 'mode' in results[1]['attributes']
    seen = oob(name, ns)
    assert seen['kind'] == KIND[new] and seen['isatap'] == (new == 'isatap')
    assert seen['local'] == '10.0.0.1' and seen['up']
    if old in ('gre', 'vti') and new in ('gre', 'vti'):
        assert (seen['ikey'], seen['okey']) == (5, 5)  # keys are carried over
    assert results[3]['tunnel']['mode'] == new
    assert sorted(links(ns)) == sorted(['lo', name] + [n for n in links(ns) if n in FALLBACK])  # no temporary left


# ---------------------------------------------------------------------------
# interoperability with iproute2, over a router, with a capture

@pytest.fixture
def lab(make_netns):
    """ns1 (10.10.10.2) -- router -- (10.10.20.2) ns2, as in the walkthrough."""
    ns1, router, ns2 = make_netns('a'), make_netns('r'), make_netns('b')
    ip('link', 'add', 'ra', 'type', 'veth', 'peer', 'name', 'a0', 'netns', ns1, netns=router)
    ip('link', 'add', 'rb', 'type', 'veth', 'peer', 'name', 'b0', 'netns', ns2, netns=router)
    for ns, dev, addr, gw in ((ns1, 'a0', '10.10.10.2/24', '10.10.10.1'), (ns2, 'b0', '10.10.20.2/24', '10.10.20.1')):
        ip('addr', 'add', addr, 'dev', dev, netns=ns)
        ip('link', 'set', dev, 'up', netns=ns)
        ip('link', 'set', 'lo', 'up', netns=ns)
        ip('route', 'add', 'default', 'via', gw, netns=ns)
    for dev, addr in (('ra', '10.10.10.1/24'), ('rb', '10.10.20.1/24')):
        ip('addr', 'add', addr, 'dev', dev, netns=router)
        ip('link', 'set', dev, 'up', netns=router)
    subprocess.run(['ip', 'netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'], check=True)
    subprocess.run(['ip', 'netns', 'exec', ns1, 'ping', '-c', '1', '-W', '2', '10.10.20.2'], check=True, capture_output=True)
    return ns1, router, ns2


def capture_during(router: str, proto: int, action) -> str:
    """tcpdump's text for outer packets of `proto` on the router while action() runs."""
    cap = subprocess.Popen(
        ['timeout', '20', 'ip', 'netns', 'exec', router, 'tcpdump', '-n', '-l', '-i', 'ra', '-c', '2', f'ip proto {proto}'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # tcpdump says "listening on" once the filter is in place
        deadline = time.monotonic() + 10
        line = ''
        while 'listening' not in line and time.monotonic() < deadline:
            line = cap.stderr.readline()
            if not line and cap.poll() is not None:
                break
        action()
        out = cap.communicate(timeout=25)[0]
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
    return out


INTEROP = [
    # mode, outer protocol, the far end as iproute2 makes it, inner family
    ('ipip', 4, ['tunnel', 'add', 'tun0', 'mode', 'ipip', 'local', '10.10.20.2', 'remote', '10.10.10.2', 'ttl', '64'], 4),
    ('gre', 47, ['link', 'add', 'tun0', 'type', 'gre', 'local', '10.10.20.2', 'remote', '10.10.10.2', 'key', '42', 'ttl', '64'], 4),
    ('sit', 41, ['tunnel', 'add', 'tun0', 'mode', 'sit', 'local', '10.10.20.2', 'remote', '10.10.10.2', 'ttl', '64'], 6),
]


@tunnel
@pytest.mark.parametrize('mode, proto, far_end, family', INTEROP, ids=[case[0] for case in INTEROP])
def test_interoperates_with_iproute2_and_carries_icmp(mode, proto, far_end, family, lab):
    ns1, router, ns2 = lab
    keys = {'key': 42} if mode == 'gre' else {}
    module_rhythm({'name': 'tun0', 'netns': ns1, 'mode': mode, 'local': '10.10.10.2', 'remote': '10.10.20.2', 'ttl': 64, **keys})
    ip(*far_end, netns=ns2)
    ip('link', 'set', 'tun0', 'up', netns=ns2)
    if family == 4:
        inner = ('192.168.100.1', '192.168.100.2')
        ip('addr', 'add', inner[0], 'peer', inner[1], 'dev', 'tun0', netns=ns1)
        ip('addr', 'add', inner[1], 'peer', inner[0], 'dev', 'tun0', netns=ns2)
        ping = ['ping', '-c', '2', '-W', '2', inner[1]]
        inner_text = f'{inner[0]} > {inner[1]}: ICMP echo request'
    else:
        inner = ('fd00:100::1', 'fd00:100::2')
        ip('-6', 'addr', 'add', inner[0] + '/64', 'dev', 'tun0', 'nodad', netns=ns1)
        ip('-6', 'addr', 'add', inner[1] + '/64', 'dev', 'tun0', 'nodad', netns=ns2)
        ping = ['ping', '-6', '-c', '2', '-W', '2', inner[1]]
        inner_text = f'{inner[0]} > {inner[1]}: ICMP6, echo request'

    def do_ping() -> None:
        proc = subprocess.run(['ip', 'netns', 'exec', ns1] + ping, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    text = capture_during(router, proto, do_ping)
    first = text.splitlines()[0] if text else ''
    assert '10.10.10.2 > 10.10.20.2' in first and inner_text in first, text


# ---------------------------------------------------------------------------
# adoption of what iproute2 made

ADOPT = [
    ('ipip', ['tunnel', 'add', '{n}', 'mode', 'ipip', 'local', '10.0.0.1', 'remote', '10.0.0.2', 'ttl', '64', 'tos', '10', 'dev', 'ul'],
     {'local': '10.0.0.1', 'remote': '10.0.0.2', 'ttl': 64, 'tos': '0x10', 'dev': 'ul'}),
    ('gre', ['tunnel', 'add', '{n}', 'mode', 'gre', 'local', '10.0.0.1', 'remote', '10.0.0.2', 'key', '10', 'csum', 'seq', 'tos', 'inherit'],
     {'local': '10.0.0.1', 'remote': '10.0.0.2', 'key': '0.0.0.10', 'csum': True, 'seq': True, 'tos': 'inherit', 'ttl': 'inherit'}),
    ('sit', ['tunnel', 'add', '{n}', 'mode', 'sit', 'local', '10.0.0.1', 'remote', '10.0.0.2', 'nopmtudisc'],
     {'local': '10.0.0.1', 'remote': '10.0.0.2', 'pmtudisc': False}),
    ('isatap', ['tunnel', 'add', '{n}', 'mode', 'isatap', 'local', '10.0.0.1', 'ttl', '64'],
     {'local': '10.0.0.1', 'remote': 'any', 'ttl': 64}),
    ('vti', ['link', 'add', '{n}', 'type', 'vti', 'local', '10.0.0.1', 'remote', '10.0.0.2', 'ikey', '5', 'okey', '6'],
     {'local': '10.0.0.1', 'remote': '10.0.0.2', 'ikey': 5, 'okey': 6}),
]


@tunnel
@pytest.mark.parametrize('mode, command, options', ADOPT, ids=[case[0] for case in ADOPT])
def test_adopts_tunnel_made_by_iproute2(mode, command, options, make_netns):
    ns = make_netns()
    underlay(ns)
    name = unique('t')
    ip(*[word.format(n=name) for word in command], netns=ns)
    ip('link', 'set', name, 'up', netns=ns)
    before = oob(name, ns)
    results = module_rhythm({'name': name, 'netns': ns, 'mode': mode, **options}, changes=False)
    assert oob(name, ns) == before
    assert results[3]['tunnel']['mode'] == mode and results[3]['tunnel']['ifindex'] == before['ifindex']


# ---------------------------------------------------------------------------
# refusals: before anything is touched, naming the option

BAD = [
    ({'ttl': 0}, 'ttl'),
    ({'ttl': 256}, 'ttl'),
    ({'ttl': 'many'}, 'ttl'),
    ({'tos': 'high'}, 'tos'),
    ({'tos': 256}, 'tos'),
    ({'ttl': 64, 'pmtudisc': False}, 'ttl'),
    ({'key': 5}, 'key'),
    ({'mode': 'sit', 'ikey': 5}, 'ikey'),
    ({'mode': 'isatap', 'okey': 5}, 'okey'),
    ({'csum': True}, 'csum'),
    ({'mode': 'vti', 'seq': True}, 'seq'),
    ({'mode': 'vti', 'ttl': 64}, 'ttl'),
    ({'mode': 'vti', 'tos': 'inherit'}, 'tos'),
    ({'mode': 'vti', 'pmtudisc': False}, 'pmtudisc'),
    ({'mode': 'vti', 'encap': 'fou', 'encap_dport': 5555}, 'encap'),
    ({'mode': 'gre', 'key': 'secret'}, 'key'),
    ({'mode': 'gre', 'key': 4294967296}, 'key'),
    ({'mode': 'gre', 'key': 1, 'ikey': 2}, 'ikey'),
    ({'remote': '2001:db8::2'}, 'remote'),
    ({'mode': 'gre', 'local': '2001:db8::1'}, 'local'),
    ({'mode': 'vti', 'remote': 'fd00::2'}, 'remote'),
    ({'mode': 'sit', 'local': 'fe80::1'}, 'local'),
    ({'mode': 'isatap', 'local': 'fd00::1'}, 'local'),
    ({'local': 'router1'}, 'local'),
    ({'remote': '10.0.0.300'}, 'remote'),
    ({'dev': 'nosuchdev'}, 'dev'),
    ({'dev': 'a' * 16}, 'dev'),
    ({'encap': 'none', 'encap_dport': 5555}, 'encap_dport'),
    ({'encap': 'fou'}, 'encap_dport'),
    ({'encap_sport': 1234}, 'encap_sport'),
    ({'encap': 'gue', 'encap_dport': 70000}, 'encap_dport'),
    ({'mtu': 10}, 'mtu'),
]


@pytest.mark.parametrize('options, word', BAD, ids=[f'{case[1]}-{i}' for i, case in enumerate(BAD)])
def test_bad_options_are_refused_before_the_kernel_is_asked(options, word, make_netns):
    """Runs natively: a refusal that reached the kernel would say 'no support' here instead."""
    ns = make_netns()
    before = snapshot(ns)
    result = run_module('tunnel', {'name': 'tb0', 'netns': ns, 'local': '10.0.0.1', 'remote': '10.0.0.2', **options})
    assert_failed(result, word)
    assert 'no support' not in result['msg']
    assert snapshot(ns) == before


@pytest.mark.parametrize('name', ['tunl0', 'gre0', 'gretap0', 'erspan0', 'sit0', 'ip_vti0'])
@pytest.mark.parametrize('state', ['present', 'absent'])
def test_fallback_device_names_are_refused(name, state, make_netns):
    ns = make_netns()
    before = snapshot(ns)
    result = run_module('tunnel', {'name': name, 'netns': ns, 'state': state})
    assert_failed(result, 'name', 'fallback device', name)
    assert snapshot(ns) == before


@pytest.mark.parametrize('name', ['a' * 16, 'bad/name', 'has space', ''])
def test_invalid_names_are_refused(name, make_netns):
    ns = make_netns()
    before = snapshot(ns)
    assert_failed(run_module('tunnel', {'name': name, 'netns': ns}), 'name')
    assert snapshot(ns) == before


@pytest.mark.parametrize('state', ['present', 'absent'])
def test_link_of_another_kind_is_left_alone(state, make_netns):
    ns = make_netns()
    ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', netns=ns)
    before = snapshot(ns)
    result = run_module('tunnel', {'name': 'va', 'netns': ns, 'state': state, 'local': '10.0.0.1', 'remote': '10.0.0.2'})
    assert_failed(result, 'name', 'veth', 'not an ipip')
    assert snapshot(ns) == before


def test_missing_namespace(netns_name):
    assert_failed(run_module('tunnel', {'name': 'tn0', 'netns': netns_name, 'remote': '10.0.0.2'}), netns_name, 'does not exist')
    result = run_module('tunnel', {'name': 'tn0', 'netns': netns_name, 'state': 'absent'})
    assert not result.get('failed') and not result['changed'] and result['tunnel'] is None
    assert netns_name not in list_netns()  # never created as a side effect


@pytest.mark.parametrize('mode', MODES)
def test_kernel_without_the_mode_says_so(mode, make_netns):
    """The host kernel has no ipip/gre/sit/vti: a readable refusal, nothing left behind."""
    if host_has_ipip(make_netns):
        pytest.skip('this kernel has tunnels; the message is for kernels without them')
    ns = make_netns()
    before = snapshot(ns)
    result = run_module('tunnel', {'name': 'tk0', 'netns': ns, 'mode': mode, **BASE[mode]})
    assert_failed(result, f'this kernel has no {mode} tunnels', f'modprobe {MODULES[mode]}')
    assert 'uml' not in result['msg'].lower()  # nothing of this repository's test tooling
    assert snapshot(ns) == before


@tunnel
def test_refusals_that_depend_on_the_existing_tunnel(make_netns):
    ns = make_netns()
    module_rhythm({'name': 'tx0', 'netns': ns, 'local': '10.0.0.1', 'remote': '10.0.0.2', 'ttl': 64})
    module_rhythm({'name': 'tx1', 'netns': ns, 'mode': 'sit', 'local': '10.0.0.1', 'remote': '10.0.0.2'})
    before = snapshot(ns)
    # the tunnel keeps ttl 64, which pmtudisc: false cannot go with
    assert_failed(run_module('tunnel', {'name': 'tx0', 'netns': ns, 'pmtudisc': False}), 'pmtudisc', 'ttl: inherit')
    # ports without encapsulation
    assert_failed(run_module('tunnel', {'name': 'tx0', 'netns': ns, 'encap_dport': 5555}), 'encap_dport')
    # sit's minimum MTU is 1280
    assert_failed(run_module('tunnel', {'name': 'tx1', 'netns': ns, 'mode': 'sit', 'mtu': 1000}), 'mtu', '1280')
    assert snapshot(ns) == before


# ---------------------------------------------------------------------------
# EEXIST: the tunnel in the way is named

@tunnel
@pytest.mark.parametrize('mode, made_by', [
    ('ipip', ['tunnel', 'add', 'other', 'mode', 'ipip', 'local', '10.0.0.1', 'remote', '10.0.0.2']),
    ('gre', ['tunnel', 'add', 'other', 'mode', 'gre', 'local', '10.0.0.1', 'remote', '10.0.0.2', 'key', '9']),
    ('sit', ['tunnel', 'add', 'other', 'mode', 'sit', 'local', '10.0.0.1', 'remote', '10.0.0.2']),
    ('isatap', ['tunnel', 'add', 'other', 'mode', 'isatap', 'local', '10.0.0.1']),
    ('vti', ['link', 'add', 'other', 'type', 'vti', 'local', '10.0.0.1', 'remote', '10.0.0.2', 'key', '3']),
])
def test_same_endpoints_name_the_tunnel_in_the_way(mode, made_by, make_netns):
    ns = make_netns()
    ip(*made_by, netns=ns)
    keys = {'key': 9} if mode == 'gre' else {'key': 4} if mode == 'vti' else {}  # vti keys do not tell tunnels apart
    before = snapshot(ns)
    for check in (True, False):
        result = run_module('tunnel', {'name': 'mine', 'netns': ns, 'mode': mode, **BASE[mode], **keys}, check=check)
        assert_failed(result, "'other'", 'same endpoints', 'EEXIST')
    assert snapshot(ns) == before

    # and on change: a tunnel of our own moved onto the same endpoints
    module_rhythm({'name': 'mine', 'netns': ns, 'mode': mode, **BASE[mode], 'local': '10.0.0.9', **keys})
    before = snapshot(ns)
    result = run_module('tunnel', {'name': 'mine', 'netns': ns, 'mode': mode, **BASE[mode], **keys})
    assert_failed(result, "'other'", 'same endpoints')
    assert snapshot(ns) == before


@tunnel
def test_gre_keys_tell_tunnels_apart(make_netns):
    ns = make_netns()
    ip('tunnel', 'add', 'other', 'mode', 'gre', 'local', '10.0.0.1', 'remote', '10.0.0.2', 'key', '9', netns=ns)
    module_rhythm({'name': 'mine', 'netns': ns, 'mode': 'gre', 'local': '10.0.0.1', 'remote': '10.0.0.2', 'key': 10})
    assert oob('mine', ns)['ikey'] == 10 and oob('other', ns)['ikey'] == 9


@tunnel
def test_collision_with_the_fallback_device_is_explained(make_netns):
    ns = make_netns()
    before = snapshot(ns)
    result = run_module('tunnel', {'name': 'mine', 'netns': ns, 'mode': 'ipip'})  # any/any, no dev: that is tunl0
    assert_failed(result, 'tunl0', 'fallback device')
    assert snapshot(ns) == before and 'tunl0' in links(ns)


# ---------------------------------------------------------------------------
# fou / gue encapsulation

@tunnel
def test_encapsulation_works_or_is_refused_clearly(make_netns):
    subprocess.run(['modprobe', 'fou'], check=False, capture_output=True)
    ns = make_netns()
    probe = ip('link', 'add', 'probe', 'type', 'ipip', 'local', '10.0.0.1', 'remote', '10.0.0.9',
               'encap', 'fou', 'encap-dport', '5555', netns=ns, check=False)
    ip('link', 'del', 'probe', netns=ns, check=False)
    module_rhythm({'name': 'te0', 'netns': ns, 'mode': 'gre', 'local': '10.0.0.1', 'remote': '10.0.0.2'})
    params = {'name': 'te0', 'netns': ns, 'mode': 'gre', 'encap': 'fou', 'encap_dport': 5555, 'encap_sport': 0}
    if probe.returncode == 0:
        module_rhythm(params)
        data = links(ns)['te0']['linkinfo']['info_data']
        assert data['encap'] == 'fou' and data['encap_dport'] == 5555, data
        return
    # This kernel refuses (Debian's UML kernel: fou without CONFIG_NET_FOU_IP_TUNNELS):
    # the change and a create are refused with a message that says why, and nothing changes.
    before = snapshot(ns)
    assert_failed(run_module('tunnel', params), 'encap', 'fou', 'EINVAL')
    assert_failed(run_module('tunnel', dict(params, name='te1', remote='10.0.0.3')), 'encap', 'fou')
    # a mode change to another kind makes the new tunnel first: refused, the old one is untouched
    assert_failed(run_module('tunnel', dict(params, mode='ipip')), 'encap')
    assert snapshot(ns) == before and oob('te0', ns)['kind'] == 'gre'
    # within one kind the old tunnel has to go first: refused, it is made again as it was
    module_rhythm({'name': 'ts0', 'netns': ns, 'mode': 'sit', 'local': '10.0.0.1', 'remote': '10.0.0.2', 'ttl': 9, 'mtu': 1300})
    old = oob('ts0', ns)
    result = run_module('tunnel', {'name': 'ts0', 'netns': ns, 'mode': 'isatap', 'encap': 'fou', 'encap_dport': 5555})
    assert_failed(result, 'encap')
    assert 'could not be restored' not in result['msg']
    assert dict(oob('ts0', ns), ifindex=None) == dict(old, ifindex=None)


# ---------------------------------------------------------------------------
# failure half-way, and the root namespace

@tunnel
def test_failure_after_create_removes_the_tunnel(make_netns, monkeypatch):
    from ansible_collections.linuxnet.tunnels.plugins.module_utils import _tunnel
    from pyroute2 import NetlinkError

    def refuse(*args, **kwargs):
        raise NetlinkError(5, 'injected failure')

    monkeypatch.setattr(_tunnel, 'set_link', refuse)
    ns = make_netns()
    before = snapshot(ns)
    result = run_module('tunnel', {'name': 'th0', 'netns': ns, 'mode': 'gre', 'local': '10.0.0.1', 'remote': '10.0.0.2'})
    assert_failed(result, 'injected failure', 'brought up')
    assert 'th0' not in links(ns) and snapshot(ns) == before


@tunnel
@pytest.mark.rootns
def test_tunnel_in_the_root_namespace():
    name = unique('t')
    try:
        results = module_rhythm({'name': name, 'mode': 'gre', 'local': '10.0.0.1', 'remote': '10.0.0.2', 'key': 1, 'ttl': 64})
        seen = oob(name)
        assert seen['kind'] == 'gre' and seen['ikey'] == 1 and seen['ttl'] == 64
        assert results[3]['tunnel']['ifindex'] == seen['ifindex']
        module_rhythm({'name': name, 'mode': 'gre', 'ttl': 30})
        assert oob(name)['ttl'] == 30 and oob(name)['ikey'] == 1
        module_rhythm({'name': name, 'state': 'absent'})
        assert oob(name) is None
    finally:
        ip('link', 'del', name, check=False)
    assert not [l for l in ip_json('link', 'show') if l['ifname'].startswith('lt')]
