"""linuxnet.tunnels.xfrm_state and xfrm_policy against the real kernel.

Marked `tunnel`: the host kernel has neither vti nor (necessarily) esp4, so
    scripts/uml-run -- .venv/bin/pytest -q tests/integration/test_xfrm.py
Out-of-band checks read `ip xfrm state` / `ip xfrm policy` (iproute2 6.1 has
no JSON output for xfrm), pings and tcpdump captures.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

from harness import assert_failed, assert_rhythm, ip, rhythm, run_module
import test_tunnel

pytestmark = pytest.mark.tunnel
lab = test_tunnel.lab  # the ns1 -- router -- ns2 fixture

A, B = '10.10.10.2', '10.10.20.2'  # the lab's underlay addresses
KEY_AB = '0x' + '11' * 20  # rfc4106(gcm(aes)): a 128-bit AES key and a 4-byte salt
KEY_BA = '0x' + '22' * 20
AEAD = 'rfc4106(gcm(aes))'


def aead(key: str = KEY_AB) -> dict:
    return {'name': AEAD, 'key': key, 'icv_len': 128}


def state_params(netns: str, src: str = A, dst: str = B, spi: int = 0x1000, key: str = KEY_AB, **extra) -> dict:
    return {'netns': netns, 'src': src, 'dst': dst, 'spi': spi, 'reqid': 1, 'aead': aead(key), **extra}


def policy_params(netns: str, direction: str, src: str = A, dst: str = B, **extra) -> dict:
    return {'netns': netns, 'src': '0.0.0.0/0', 'dst': '0.0.0.0/0', 'dir': direction, 'mark': {'value': 42},
            'template': {'src': src, 'dst': dst, 'reqid': 1}, **extra}


def ip_states(netns: str) -> list[dict]:
    """`ip -o xfrm state`, one dict a state, with the keys as iproute2 prints them."""
    out = []
    for line in ip('-o', 'xfrm', 'state', netns=netns).stdout.splitlines():
        line = line.replace('\\', ' ')
        found = {'src': re.search(r'^src (\S+)', line).group(1), 'dst': re.search(r' dst (\S+)', line).group(1)}
        found.update(re.search(r'proto (?P<proto>\S+) spi (?P<spi>\S+) reqid (?P<reqid>\d+) mode (?P<mode>\S+)', line).groupdict())
        for kind in ('aead', 'auth-trunc', 'enc'):
            algo = re.search(rf'\b{kind} (\S+) (0x[0-9a-f]+)(?: (\d+))?', line)
            if algo:
                found[kind] = algo.groups()
        mark = re.search(r'mark (\S+)', line)
        found['mark'] = mark.group(1) if mark else None
        out.append(found)
    return out


def ip_policies(netns: str) -> list[str]:
    """`ip -o xfrm policy`, one line a policy, whitespace squeezed."""
    return [' '.join(line.replace('\\', ' ').split()) for line in ip('-o', 'xfrm', 'policy', netns=netns).stdout.splitlines()]


def assert_no_key(result: dict, *keys: str) -> None:
    """No key in the result or its diff, in any spelling."""
    text = json.dumps(result).lower()
    for key in keys:
        digits = key.lower().removeprefix('0x')
        assert digits not in text, f'key material in {text}'


# ---------------------------------------------------------------------------
# states

def test_state_rhythm_listed_by_iproute2_and_key_change(make_netns):
    ns = make_netns('x')
    results = rhythm('xfrm_state', state_params(ns))
    assert_rhythm(results)
    assert results[0]['action'] == 'create'
    for result in results:
        assert_no_key(result, KEY_AB)
    assert results[3]['xfrm_state'] == {
        'src': A, 'dst': B, 'proto': 'esp', 'spi': 0x1000, 'mode': 'tunnel', 'reqid': 1, 'mark': None,
        'aead': {'name': AEAD, 'icv_len': 128}, 'auth': None, 'enc': None, 'netns': ns}
    assert ip_states(ns) == [{'src': A, 'dst': B, 'proto': 'esp', 'spi': '0x00001000', 'reqid': '1', 'mode': 'tunnel',
                              'aead': (AEAD, KEY_AB, '128'), 'mark': None}]

    # A new key: found by reading the kernel's key back, replaced, never shown.
    results = rhythm('xfrm_state', state_params(ns, key=KEY_BA))
    assert_rhythm(results)
    assert results[1]['action'] == 'replace' and results[1]['attributes'] == ['aead.key']
    assert results[1]['diff']['after']['aead']['key'] == 'changed' and 'key' not in results[1]['diff']['before']['aead']
    for result in results:
        assert_no_key(result, KEY_AB, KEY_BA)
    assert ip_states(ns)[0]['aead'] == (AEAD, KEY_BA, '128')

    # Another mode replaces it too; what is left out (reqid) is kept.
    params = state_params(ns, key=KEY_BA, mode='transport')
    del params['reqid']
    results = rhythm('xfrm_state', params)
    assert_rhythm(results)
    assert results[1]['attributes'] == ['mode']
    assert [(s['mode'], s['reqid']) for s in ip_states(ns)] == [('transport', '1')]

    # So does a mark (the kernel would not let a marked state share dst, spi and proto with an unmarked one).
    results = rhythm('xfrm_state', dict(params, mark={'value': 7}))
    assert_rhythm(results)
    assert results[1]['attributes'] == ['mark'] and results[1]['xfrm_state']['mark'] == {'value': 7, 'mask': 0xffffffff}
    assert [s['mark'] for s in ip_states(ns)] == ['0x7/0xffffffff']

    assert_rhythm(rhythm('xfrm_state', state_params(ns, state='absent')))
    assert ip_states(ns) == []


def test_state_made_by_iproute2_is_adopted(make_netns):
    ns = make_netns('x')
    auth_key, enc_key = '0x' + 'ab' * 32, '0x' + 'cd' * 16
    ip('xfrm', 'state', 'add', 'src', A, 'dst', B, 'proto', 'esp', 'spi', '0x2000', 'reqid', '3', 'mode', 'tunnel',
       'mark', '5', 'auth', 'sha256', auth_key, 'enc', 'aes', enc_key, netns=ns)
    params = {'netns': ns, 'src': A, 'dst': B, 'spi': 0x2000, 'mark': {'value': 5},
              'auth': {'name': 'sha256', 'key': auth_key}, 'enc': {'name': 'aes', 'key': enc_key}}
    results = rhythm('xfrm_state', params)
    assert_rhythm(results, changes=False)
    assert results[3]['xfrm_state']['auth'] == {'name': 'hmac(sha256)', 'trunc_len': 96}
    assert results[3]['xfrm_state']['reqid'] == 3 and results[3]['xfrm_state']['enc'] == {'name': 'cbc(aes)'}

    # The explicit truncation length of RFC 4868 differs from what iproute2 gave it.
    results = rhythm('xfrm_state', dict(params, auth={'name': 'hmac(sha256)', 'key': auth_key, 'trunc_len': 128}))
    assert_rhythm(results)
    assert results[1]['attributes'] == ['auth.trunc_len']
    assert ip_states(ns)[0]['auth-trunc'] == ('hmac(sha256)', auth_key, '128')
    assert ip_states(ns)[0]['reqid'] == '3'  # kept: not an option of the task


@pytest.mark.parametrize('options, words', [
    ({'aead': {'name': AEAD, 'key': '0x' + '11' * 16}}, ['aead.key', '160, 224 or 288 bits', 'this one has 128 bits']),
    ({'aead': {'name': 'gcm(aes)', 'key': KEY_AB}}, ['aead.name', "unknown aead algorithm 'gcm(aes)'"]),
    ({'aead': None, 'enc': {'name': 'aes', 'key': '0x' + '11' * 16}, 'auth': {'name': 'sha257', 'key': '00'}},
     ['auth.name', "unknown auth algorithm 'sha257'"]),
    ({'aead': None, 'enc': {'name': 'cbc(aes)', 'key': '0x123'}}, ['enc.key', 'even number of hex digits']),
    ({'aead': {'name': AEAD, 'key': KEY_AB, 'icv_len': 100}}, ['aead.icv_len', '64, 96 or 128']),
    ({'spi': 0}, ['spi', '0 is not a security parameter index']),
    ({'dst': 'fd00::1'}, ['src and dst', 'IPv4', 'IPv6']),
    ({'mark': {'value': 0x100, 'mask': 0xff}}, ['mark.value', 'outside mark.mask']),
])
def test_bad_state_input_is_refused_before_the_kernel_is_asked(options, words, make_netns):
    ns = make_netns('x')
    params = {key: value for key, value in dict(state_params(ns), **options).items() if value is not None}
    for check in (True, False):
        assert_failed(run_module('xfrm_state', params, check=check), *words)
    assert ip_states(ns) == []


def test_replacement_the_kernel_refuses_puts_the_old_state_back(make_netns, monkeypatch):
    ns = make_netns('x')
    assert_rhythm(rhythm('xfrm_state', state_params(ns)))
    from ansible_collections.linuxnet.tunnels.plugins.module_utils import _xfrm_state

    original = _xfrm_state.XfrmStateResource.new_message

    def unknown_cipher(self, after):  # what the kernel says of an algorithm it cannot load
        msg = original(self, after)
        msg['attrs'][0][1]['alg_name'] = 'rfc4106(gcm(nosuch))'
        return msg

    monkeypatch.setattr(_xfrm_state.XfrmStateResource, 'new_message', unknown_cipher)
    result = run_module('xfrm_state', state_params(ns, key=KEY_BA))
    assert_failed(result, 'could not add IPsec state', 'the previous state was put back unchanged')
    assert_no_key(result, KEY_AB, KEY_BA)
    assert ip_states(ns)[0]['aead'] == (AEAD, KEY_AB, '128')


# ---------------------------------------------------------------------------
# policies

def test_policy_rhythm_listed_by_iproute2_and_changed_in_place(make_netns):
    ns = make_netns('x')
    run_module('xfrm_state', state_params(ns))
    results = rhythm('xfrm_policy', policy_params(ns, 'out'))
    assert_rhythm(results)
    assert not any(result.get('warnings') for result in results), results
    assert results[3]['xfrm_policy'] == {
        'src': '0.0.0.0/0', 'dst': '0.0.0.0/0', 'dir': 'out', 'action': 'allow', 'priority': 0,
        'mark': {'value': 42, 'mask': 0xffffffff}, 'netns': ns,
        'templates': [{'src': A, 'dst': B, 'proto': 'esp', 'mode': 'tunnel', 'reqid': 1, 'spi': 0}]}
    assert ip_policies(ns) == [
        f'src 0.0.0.0/0 dst 0.0.0.0/0 dir out priority 0 ptype main mark 0x2a/0xffffffff '
        f'tmpl src {A} dst {B} proto esp reqid 1 mode tunnel']

    results = rhythm('xfrm_policy', policy_params(ns, 'out', priority=10))
    assert_rhythm(results)
    assert results[1]['action'] == 'update' and results[1]['attributes'] == ['priority']
    assert 'priority 10 ' in ip_policies(ns)[0]

    results = rhythm('xfrm_policy', dict(policy_params(ns, 'out'), template={'src': A, 'dst': B, 'reqid': 1, 'spi': 0x1000}))
    assert_rhythm(results)
    assert results[1]['attributes'] == ['templates'] and 'spi 0x00001000 ' in ip_policies(ns)[0]
    assert 'priority 10 ' in ip_policies(ns)[0]  # left out: kept

    assert_rhythm(rhythm('xfrm_policy', dict(policy_params(ns, 'out'), state='absent')))
    assert ip_policies(ns) == []


def test_policy_made_by_iproute2_is_adopted(make_netns):
    ns = make_netns('x')
    ip('xfrm', 'policy', 'add', 'src', '0.0.0.0/0', 'dst', '0.0.0.0/0', 'dir', 'in', 'mark', '42', 'priority', '5',
       'tmpl', 'src', B, 'dst', A, 'proto', 'esp', 'mode', 'tunnel', 'reqid', '2', netns=ns)
    ip('xfrm', 'policy', 'add', 'dir', 'out', 'mark', '42', 'tmpl', 'src', A, 'dst', B, 'proto', 'esp', 'mode', 'tunnel', netns=ns)
    before = ip_policies(ns)
    assert_rhythm(rhythm('xfrm_policy', policy_params(ns, 'in', src=B, dst=A, template={'src': B, 'dst': A})), changes=False)
    assert_rhythm(rhythm('xfrm_policy', policy_params(ns, 'out', template={'src': A, 'dst': B})), changes=False)
    assert ip_policies(ns) == before


def warnings_of(result: dict) -> list[str]:
    return [warning['event']['msg'] if isinstance(warning, dict) else warning for warning in result.get('warnings', [])]


@pytest.fixture(autouse=True)
def no_earlier_warnings():
    """Ansible keeps warnings per process, and the modules run in this one: none from earlier tests."""
    from ansible.module_utils.common import warnings
    warnings._global_warnings.clear()


def test_policy_without_a_matching_state_is_a_warning(make_netns):
    ns = make_netns('x')
    run_module('xfrm_state', state_params(ns, spi=0x1000))  # A -> B, reqid 1: not what the template asks for
    result = run_module('xfrm_policy', policy_params(ns, 'in', src=B, dst=A))
    assert result['changed'] and not result.get('failed'), result
    assert any('no IPsec state' in warning and f'src {B} dst {A}' in warning for warning in warnings_of(result)), result
    assert len(ip_policies(ns)) == 1


@pytest.mark.parametrize('options, words', [
    ({'src': '10.0.0.1/8'}, ['src', 'not an address or a network']),
    ({'dst': 'fd00::/64'}, ['src and dst', 'IPv4', 'IPv6']),
    ({'template': {'src': A}}, ['template.dst', 'tunnel-mode template needs both']),
    ({'template': {'src': A, 'dst': 'fd00::1'}}, ['template.src and template.dst']),
    ({'template': {'src': A, 'dst': 'nowhere'}}, ['template.dst', "'nowhere' is not an IPv4 or IPv6 address"]),
])
def test_bad_policy_input_is_refused(options, words, make_netns):
    ns = make_netns('x')
    params = dict(policy_params(ns, 'out'), **options)
    for check in (True, False):
        assert_failed(run_module('xfrm_policy', params, check=check), *words)
    assert ip_policies(ns) == []


# ---------------------------------------------------------------------------
# traffic: a vti tunnel protected by ESP, and isatap

def in_ns(netns: str, *cmd: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(['ip', 'netns', 'exec', netns, *cmd], capture_output=True, text=True, check=check)


def ping(netns: str, dest: str, count: int = 2) -> bool:
    return in_ns(netns, 'ping', '-c', str(count), '-W', '2', dest).returncode == 0


def captured(router: str, action) -> str:
    """tcpdump -n of every IP packet on the router's side of ns1 while action() runs."""
    with tempfile.TemporaryDirectory() as tmp:
        pcap = os.path.join(tmp, 'ra.pcap')
        cap = subprocess.Popen(['ip', 'netns', 'exec', router, 'tcpdump', '-n', '-U', '--immediate-mode', '-i', 'ra', '-w', pcap, 'ip or ip6'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10  # the file exists once the filter is in place
            while not os.path.exists(pcap) and time.monotonic() < deadline:
                time.sleep(0.05)
            action()
            time.sleep(0.5)  # tcpdump may still be writing the last reply when ping returns
        finally:
            cap.send_signal(signal.SIGINT)
            cap.wait(timeout=10)
        return subprocess.run(['tcpdump', '-n', '-r', pcap], capture_output=True, text=True, check=True).stdout


def vti_side(netns: str, local: str, remote: str, inner: tuple, out_key: str, in_key: str) -> None:
    """One end: vti0 with key 42 (made with iproute2), its two states and two policies (made by the modules)."""
    ip('link', 'add', 'vti0', 'type', 'vti', 'local', local, 'remote', remote, 'ikey', '42', 'okey', '42', netns=netns)
    ip('addr', 'add', inner[0], 'peer', inner[1], 'dev', 'vti0', netns=netns)
    ip('link', 'set', 'vti0', 'up', netns=netns)
    in_ns(netns, 'sysctl', '-qw', 'net.ipv4.conf.vti0.disable_policy=1', check=True)
    spi = {A: 0x1000, B: 0x2000}  # by sender
    for src, dst, key in ((local, remote, out_key), (remote, local, in_key)):
        params = state_params(netns, src=src, dst=dst, spi=spi[src], key=key)
        assert_rhythm(rhythm('xfrm_state', params))
    for direction, src, dst in (('out', local, remote), ('in', remote, local)):
        result = run_module('xfrm_policy', policy_params(netns, direction, src=src, dst=dst))
        assert result['changed'] and not result.get('warnings'), result


def test_vti_traffic_is_esp_on_the_underlay_and_a_wrong_key_stops_it(lab):
    ns1, router, ns2 = lab
    vti_side(ns1, A, B, ('192.168.42.1', '192.168.42.2'), KEY_AB, KEY_BA)
    vti_side(ns2, B, A, ('192.168.42.2', '192.168.42.1'), KEY_BA, KEY_AB)

    text = captured(router, lambda: assert_ping(ns1, '192.168.42.2'))
    lines = text.splitlines()
    assert sum(f'{A} > {B}: ESP(spi=0x00001000' in line for line in lines) >= 2, text
    assert sum(f'{B} > {A}: ESP(spi=0x00002000' in line for line in lines) >= 2, text
    # No plain ICMP from the pings (the links' own IPv6 router solicitations are ICMP6, not theirs).
    assert not any(' ICMP echo' in line for line in lines), text

    # ns2 expects another key for what ns1 sends: the packets arrive and fail their ICV check.
    wrong = state_params(ns2, src=A, dst=B, spi=0x1000, key='0x' + '33' * 20)
    assert run_module('xfrm_state', wrong)['action'] == 'replace'
    assert not ping(ns1, '192.168.42.2')
    assert run_module('xfrm_state', state_params(ns2, src=A, dst=B, spi=0x1000, key=KEY_AB))['changed']
    assert_ping(ns1, '192.168.42.2')


def assert_ping(netns: str, dest: str) -> None:
    proc = in_ns(netns, 'ping', '-c', '2', '-W', '2', dest)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_isatap_pings_both_ways(lab):
    ns1, router, ns2 = lab
    isatap = {end: str(ipaddress.IPv6Address('fd00:5::5efe:' + end)) for end in (A, B)}  # as tcpdump prints them
    for netns, local in ((ns1, A), (ns2, B)):
        assert_rhythm(rhythm('tunnel', {'netns': netns, 'name': 'isa0', 'mode': 'isatap', 'local': local}))
        ip('-6', 'addr', 'add', isatap[local] + '/64', 'dev', 'isa0', 'nodad', netns=netns)
    text = captured(router, lambda: (assert_ping(ns1, isatap[B]), assert_ping(ns2, isatap[A])))
    assert f'{A} > {B}: IP6 {isatap[A]} > {isatap[B]}: ICMP6, echo request' in text, text
    assert f'{B} > {A}: IP6 {isatap[B]} > {isatap[A]}: ICMP6, echo request' in text, text


# ---------------------------------------------------------------------------
# topology and net_info

def test_topology_declares_states_and_policies_and_net_info_reports_them(netns_name):
    ns = netns_name
    params = {
        'namespaces': [{'name': ns}],
        'xfrm_states': [state_params(ns), state_params(ns, src=B, dst=A, spi=0x2000, key=KEY_BA)],
        'xfrm_policies': [policy_params(ns, 'out'), policy_params(ns, 'in', src=B, dst=A)],
    }
    results = rhythm('topology', params)
    assert_rhythm(results)
    for result in results:
        assert_no_key(result, KEY_AB, KEY_BA)
        assert not warnings_of(result), result
    assert sorted(change['kind'] for change in results[1]['changes']) == ['netns'] + ['xfrm_policy'] * 2 + ['xfrm_state'] * 2
    expected = [('0x00001000', (AEAD, KEY_AB, '128')), ('0x00002000', (AEAD, KEY_BA, '128'))]
    assert sorted((s['spi'], s['aead']) for s in ip_states(ns)) == expected
    assert len(ip_policies(ns)) == 2

    info = run_module('net_info', {'netns': ns})
    assert_no_key(info, KEY_AB, KEY_BA)
    found = info['namespaces'][ns]
    assert sorted(state['spi'] for state in found['xfrm_states']) == [0x1000, 0x2000]
    assert found['xfrm_states'][0]['aead'] == {'name': AEAD, 'icv_len': 128}
    assert sorted(policy['dir'] for policy in found['xfrm_policies']) == ['in', 'out']

    # A new key in the topology: replaced, never shown.
    params['xfrm_states'][0]['aead'] = aead(KEY_BA)
    results = rhythm('topology', params)
    assert_rhythm(results)
    for result in results:
        assert_no_key(result, KEY_AB, KEY_BA)
    assert [(c['action'], c.get('attributes')) for c in results[1]['changes']] == [('replace', ['aead.key'])]

    assert_rhythm(rhythm('topology', dict(params, state='absent')))
