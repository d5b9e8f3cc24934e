"""linuxnet.tunnels.topology against the real kernel: whole labs in one call.

Every namespace name is unique to the test (other tests run at the same
time); inside those namespaces the seed lab's own names and addresses are
used. Tests marked `tunnel` need ipip and run under scripts/uml-run on a
host without it; the others use veths only and run anywhere.
"""

from __future__ import annotations

import pytest

from harness import addresses, assert_failed, ip, kernel_snapshot, links, list_netns, routes, run_module, unique


@pytest.fixture
def names():
    """names(k) -> k unique namespace names (not created); whatever exists of them is deleted afterwards."""
    made: list[str] = []

    def make(count: int) -> list[str]:
        new = [unique(stem) for stem in 'abcdefgh'[:count]]
        made.extend(new)
        return new

    yield make
    existing = set(list_netns())
    for name in made:
        if name in existing:
            ip('netns', 'del', name, check=False)


def seed_lab(ns1: str, ns2: str, router: str, tunnels: bool = True) -> dict:
    """The issue-6 walkthrough as one topology: two hosts, a router namespace, ipip both ways."""
    topo = {
        'namespaces': [{'name': ns1}, {'name': ns2}, {'name': router}],
        'veths': [
            {'name': 'v1', 'netns': ns1, 'peer': 'v1-P', 'peer_netns': router},
            {'name': 'v2', 'netns': ns2, 'peer': 'v2-P', 'peer_netns': router},
        ],
        'links': [{'name': 'lo', 'netns': ns, 'state': 'up'} for ns in (ns1, ns2, router)],
        'addresses': [
            {'dev': 'v1', 'netns': ns1, 'address': '10.10.10.2/24'},
            {'dev': 'v1-P', 'netns': router, 'address': '10.10.10.1/24'},
            {'dev': 'v2', 'netns': ns2, 'address': '10.10.20.2/24'},
            {'dev': 'v2-P', 'netns': router, 'address': '10.10.20.1/24'},
        ],
        'routes': [
            {'dest': '10.10.20.0/24', 'gateway': '10.10.10.1', 'netns': ns1},
            {'dest': '10.10.10.0/24', 'gateway': '10.10.20.1', 'netns': ns2},
        ],
        'sysctls': [{'name': 'net.ipv4.ip_forward', 'value': '1', 'netns': router}],
    }
    if tunnels:
        topo['tunnels'] = [
            {'name': 'tunl', 'netns': ns1, 'mode': 'ipip', 'local': '10.10.10.2', 'remote': '10.10.20.2'},
            {'name': 'tunr', 'netns': ns2, 'mode': 'ipip', 'local': '10.10.20.2', 'remote': '10.10.10.2'},
        ]
        topo['addresses'] += [
            {'dev': 'tunl', 'netns': ns1, 'address': '10.10.100.10', 'peer': '10.10.200.10'},
            {'dev': 'tunr', 'netns': ns2, 'address': '10.10.200.10', 'peer': '10.10.100.10'},
        ]
    return topo


def item_count(topo: dict) -> int:
    return sum(len(value) for value in topo.values() if isinstance(value, list))


def actions(result: dict) -> list[tuple]:
    """What a run did, comparable between a check run and a real one."""
    return [(c['kind'], c['name'], c['action'], tuple(c.get('attributes', ())), c.get('note', ''), c['item'])
            for c in result['changes']]


def four_runs(topo: dict) -> list[dict]:
    """check -> real -> check -> real, asserting changed, changed, unchanged, unchanged."""
    results = [run_module('topology', topo, check=check) for check in (True, False, True, False)]
    for result in results:
        assert not result.get('failed'), result.get('msg')
    assert [r['changed'] for r in results] == [True, True, False, False], [r['changes'] for r in results]
    # The check run predicts exactly what the real run then does.
    assert actions(results[0]) == actions(results[1])
    assert results[0]['counts'] == results[1]['counts']
    assert results[2]['changes'] == results[3]['changes'] == []
    return results


def sysctl(ns: str, name: str) -> str:
    return ip('netns', 'exec', ns, 'cat', '/proc/sys/' + name.replace('.', '/')).stdout.strip()


def ping(ns: str, dest: str) -> dict:
    result = run_module('ping', {'dest': dest, 'netns': ns, 'count': 2, 'interval': 0.1, 'timeout': 3})
    assert not result.get('failed'), result.get('msg')
    assert result['received'] == 2
    return result


def assert_lab_built(ns1: str, ns2: str, router: str) -> None:
    """Out of band: what the seed lab's veth part must look like."""
    for ns, dev, peer_ns, peer in ((ns1, 'v1', router, 'v1-P'), (ns2, 'v2', router, 'v2-P')):
        mine, theirs = links(ns)[dev], links(peer_ns)[peer]
        assert mine['linkinfo']['info_kind'] == 'veth' and theirs['linkinfo']['info_kind'] == 'veth'
        assert 'UP' in mine['flags'] and 'UP' in theirs['flags']
        assert 'UP' in links(ns)['lo']['flags']
    inet = {(ns, dev): [(a['local'], a['prefixlen']) for a in addresses(dev, ns) if a['family'] == 'inet']
            for ns, dev in ((ns1, 'v1'), (router, 'v1-P'), (ns2, 'v2'), (router, 'v2-P'))}
    assert inet == {(ns1, 'v1'): [('10.10.10.2', 24)], (router, 'v1-P'): [('10.10.10.1', 24)],
                    (ns2, 'v2'): [('10.10.20.2', 24)], (router, 'v2-P'): [('10.10.20.1', 24)]}
    assert routes(ns1, '10.10.20.0/24')[0]['gateway'] == '10.10.10.1'
    assert routes(ns2, '10.10.10.0/24')[0]['gateway'] == '10.10.20.1'
    assert sysctl(router, 'net.ipv4.ip_forward') == '1'
    assert sysctl(ns1, 'net.ipv4.ip_forward') == '0'


# ---------------------------------------------------------------------------
# veth-only topologies: these run on any kernel


def test_veth_lab_in_one_call(names):
    ns1, ns2, router = names(3)
    topo = seed_lab(ns1, ns2, router, tunnels=False)
    results = four_runs(topo)
    assert results[1]['counts'] == {'created': 11, 'updated': 4, 'removed': 0}  # lo x3 and ip_forward are updates
    assert {c['item'] for c in results[1]['changes']} >= {'namespaces[0]', 'veths[1]', 'routes[1]', 'sysctls[0]'}
    assert isinstance(results[1]['diff'], list) and len(results[1]['diff']) == 15
    assert_lab_built(ns1, ns2, router)
    assert ping(ns1, '10.10.20.2')['ttl'] == 63  # routed by the router namespace
    assert ping(ns2, '10.10.10.2')['ttl'] == 63


def test_check_mode_on_an_empty_machine_predicts_everything_and_creates_nothing(names):
    ns1, ns2, router = names(3)
    topo = seed_lab(ns1, ns2, router, tunnels=False)
    before = kernel_snapshot([])
    result = run_module('topology', topo, check=True)
    assert not result.get('failed'), result.get('msg')
    assert len(result['changes']) == item_count(topo)  # every item is predicted
    assert {c['item'] for c in result['changes']} == {f'{key}[{i}]' for key, value in topo.items() for i in range(len(value))}
    assert not set(kernel_snapshot([])['netns']) & {ns1, ns2, router}
    assert before['netns'] == [ns for ns in kernel_snapshot([])['netns'] if ns in before['netns']]


def test_updates_are_planned_and_applied_in_place(names):
    ns1, ns2, router = names(3)
    topo = seed_lab(ns1, ns2, router, tunnels=False)
    run_module('topology', topo)
    topo['veths'][0]['mtu'] = 1400
    topo['addresses'][1]['address'] = '10.10.10.1/25'  # a new prefix replaces the router's address
    topo['routes'][0]['gateway'] = '10.10.10.3'
    results = four_runs(topo)
    assert {(c['kind'], c['action']) for c in results[1]['changes']} == {('veth', 'update'), ('address', 'replace'), ('route', 'update')}
    assert links(ns1)['v1']['mtu'] == 1400 and links(router)['v1-P']['mtu'] == 1400
    assert [(a['local'], a['prefixlen']) for a in addresses('v1-P', router) if a['family'] == 'inet'] == [('10.10.10.1', 25)]
    assert routes(ns1, '10.10.20.0/24')[0]['gateway'] == '10.10.10.3'


def test_purge_removes_what_is_not_declared_inside_declared_namespaces_only(names, make_netns):
    ns_a, ns_b = names(2)
    other = make_netns('o')  # not declared: never touched
    topo = {
        'namespaces': [{'name': ns_a}, {'name': ns_b}],
        'veths': [{'name': 'va', 'netns': ns_a, 'peer': 'vb', 'peer_netns': ns_b}],
        'addresses': [{'dev': 'va', 'netns': ns_a, 'address': '10.20.0.1/24'},
                      {'dev': 'vb', 'netns': ns_b, 'address': '10.20.0.2/24'}],
        'routes': [{'dest': '10.21.0.0/24', 'gateway': '10.20.0.2', 'netns': ns_a}],
        'purge': True,
    }
    assert not run_module('topology', topo).get('failed')
    # By hand: an address, a route and a veth pair inside ns_a; a veth from ns_a into the other namespace.
    ip('addr', 'add', '10.20.0.9/24', 'dev', 'va', netns=ns_a)
    ip('route', 'add', '10.22.0.0/24', 'via', '10.20.0.2', netns=ns_a)
    ip('link', 'add', 'x1', 'type', 'veth', 'peer', 'name', 'x2', netns=ns_a)
    ip('link', 'add', 'y1', 'type', 'veth', 'peer', 'name', 'y2', 'netns', other, netns=ns_a)
    ip('addr', 'add', '10.30.0.2/24', 'dev', 'y2', netns=other)
    ip('addr', 'add', '10.20.0.7/24', 'dev', 'vb', netns=ns_b)
    other_before = kernel_snapshot([other])[other]

    check = run_module('topology', topo, check=True)
    real = run_module('topology', topo)
    assert not real.get('failed'), real.get('msg')
    assert actions(check) == actions(real)
    removed = {(c['kind'], c['name']) for c in real['changes']}
    expected = {('route', f'{ns_a}/10.22.0.0/24'), ('address', f'{ns_a}/10.20.0.9/24 dev va'), ('address', f'{ns_b}/10.20.0.7/24 dev vb')}
    # One end of the pair is removed (the other goes with it): either one.
    assert removed in (expected | {('veth', f'{ns_a}/x1')}, expected | {('veth', f'{ns_a}/x2')})
    assert all(c['action'] == 'delete' and c['item'] == 'purge' for c in real['changes'])
    assert any("kept veth 'y1'" in str(w) for w in real.get('warnings', []))
    # Out of band: gone from the declared namespaces, the rest untouched.
    assert [a['local'] for a in addresses('va', ns_a) if a['family'] == 'inet'] == ['10.20.0.1']
    assert [a['local'] for a in addresses('vb', ns_b) if a['family'] == 'inet'] == ['10.20.0.2']
    assert routes(ns_a, '10.22.0.0/24') == [] and routes(ns_a, '10.21.0.0/24')
    assert 'x1' not in links(ns_a) and 'x2' not in links(ns_a) and 'y1' in links(ns_a)
    assert kernel_snapshot([other])[other] == other_before
    rerun = run_module('topology', topo)
    assert not rerun['changed'], rerun['changes']


def test_failure_rolls_back_what_the_call_created(names, make_netns):
    ns_a, ns_b = names(2)
    existing = make_netns('e')  # existed before: stays, and loses the veth end the call put there
    topo = {
        'namespaces': [{'name': ns_a}, {'name': ns_b}],
        'veths': [{'name': 'va', 'netns': ns_a, 'peer': 'vb', 'peer_netns': ns_b},
                  {'name': 'vc', 'netns': ns_a, 'peer': 'vc', 'peer_netns': existing}],
        'addresses': [{'dev': 'va', 'netns': ns_a, 'address': '10.20.0.1/24'},
                      {'dev': 'nosuch', 'netns': ns_a, 'address': '10.20.1.1/24'}],
    }
    before = kernel_snapshot([existing])
    check = run_module('topology', topo, check=True)  # the check run sees it coming
    assert_failed(check, 'addresses[1]', 'nosuch', 'does not exist')
    result = run_module('topology', topo)
    assert_failed(result, f'addresses[1] ({ns_a}/10.20.1.1/24 dev nosuch)', "link 'nosuch' does not exist", 'rolled back')
    assert f'namespaces[0] ({ns_a})' in result['msg'] and 'Could NOT' not in result['msg']
    assert {'veth ' + f'{ns_a}/vc', f'netns {ns_a}', f'netns {ns_b}'} <= set(result['rolled_back'])
    assert not {ns_a, ns_b} & set(list_netns())
    after = kernel_snapshot([existing])
    assert after[existing] == before[existing]  # vc went at once, not when the namespace was gone


def test_absent_removes_everything_and_a_second_run_has_nothing_to_do(names, make_netns):
    ns1, ns2, router = names(3)
    outside = make_netns('x')
    topo = seed_lab(ns1, ns2, router, tunnels=False)
    topo['veths'].append({'name': 'vx', 'netns': outside, 'peer': 'vx-P', 'peer_netns': router})
    topo['addresses'].append({'dev': 'vx', 'netns': outside, 'address': '10.10.30.2/24'})
    assert not run_module('topology', topo).get('failed')
    assert 'vx' in links(outside)

    results = four_runs(dict(topo, state='absent'))
    removed = {(c['kind'], c['name']) for c in results[1]['changes']}
    # The namespaces take their contents along; only what lives outside them goes one by one.
    assert removed == {('netns', ns1), ('netns', ns2), ('netns', router), ('veth', f'{outside}/vx'),
                       ('address', f'{outside}/10.10.30.2/24 dev vx')}
    assert not {ns1, ns2, router} & set(list_netns())
    assert 'vx' not in links(outside)


@pytest.mark.parametrize('mutate, words', [
    (lambda t: t['veths'][0].pop('peer'), ['veths[0]', 'peer']),
    (lambda t: t['addresses'][1].update(colour='blue'), ['addresses[1]', 'unsupported', 'colour']),
    (lambda t: t['routes'][0].update(metric='low'), ['routes[0]', 'metric']),
    (lambda t: t['addresses'][2].update(address='10.10.20.300/24'), ['addresses[2]', 'not a valid']),
    (lambda t: t['namespaces'].append(dict(t['namespaces'][0])), ['namespaces[3]', 'declared twice']),
    (lambda t: t['veths'][1].update(peer='v1-P'), ['veths[1]', "'v1-P'", 'also made by veths[0]']),
    (lambda t: t['veths'][0].update(peer_netns='lt-nowhere'), ['veths[0]', 'lt-nowhere', 'not declared']),
    (lambda t: t['veths'].append('v9'), ['veths', 'dict']),  # refused by AnsibleModule itself
])
def test_bad_items_are_refused_before_anything_is_touched(names, mutate, words):
    ns1, ns2, router = names(3)
    topo = seed_lab(ns1, ns2, router, tunnels=False)
    mutate(topo)
    result = run_module('topology', topo)
    assert_failed(result, *words)
    assert not {ns1, ns2, router} & set(list_netns())


def verified(ns1: str, ns2: str, router: str, **probe) -> dict:
    """The veth lab with a verification: ns1 pings v2's address through the router, captured on v1-P."""
    topo = seed_lab(ns1, ns2, router, tunnels=False)
    topo['verify'] = {'probes': [dict({'label': 'routed', 'netns': ns1, 'dest': '10.10.20.2', 'ttl': 63}, **probe)],
                      'capture': [{'netns': router, 'dev': 'v1-P'}], 'count': 2, 'interval': 0.05}
    return topo


def test_verify_pings_once_built_and_not_in_check_mode(names):
    ns1, ns2, router = names(3)
    topo = verified(ns1, ns2, router)
    predicted = run_module('topology', topo, check=True)
    assert not predicted.get('failed') and predicted['changed'], predicted.get('msg')
    assert 'verification' not in predicted and not set(list_netns()) & {ns1, ns2, router}
    built = run_module('topology', topo)
    assert not built.get('failed') and built['changed'], built.get('msg')
    probe = built['verification']['probes'][0]
    assert (probe['label'], probe['received'], probe['ttl'], probe['problem']) == ('routed', 2, 63, None)
    requests = [p for p in built['verification']['packets'] if p['outer'] and p['outer'].get('icmp') == 'echo-request']
    assert [(p['dev'], p['outer']['src'], p['outer']['dst']) for p in requests] == [('v1-P', '10.10.10.2', '10.10.20.2')] * 2
    assert built['verification']['lines'][0].startswith('routed: 2/2 replies')
    again = run_module('topology', topo)
    assert not again.get('failed') and not again['changed'] and again['verification']['probes'][0]['received'] == 2


def test_verify_failure_names_the_probe_and_keeps_what_was_built(names):
    ns1, ns2, router = names(3)
    result = run_module('topology', verified(ns1, ns2, router, ttl=64))
    assert_failed(result, 'verify:', 'routed', 'ttl')
    assert result['changed'] and result['verification']['probes'][0]['received'] == 2
    assert_lab_built(ns1, ns2, router)


@pytest.mark.parametrize('mutate, words', [
    (lambda t: t['verify']['probes'].append(dict(t['verify']['probes'][0])), ['verify:', "'routed'", 'more than once']),
    (lambda t: t['verify']['probes'][0].update(count=0), ['verify:', 'probes[0]', 'count']),
    (lambda t: t['verify']['capture'][0].update(dev='x' * 16), ['verify:', 'capture.dev']),
    (lambda t: t['verify'].pop('probes'), ['verify', 'probes']),  # refused by AnsibleModule itself
    (lambda t: t.update(state='absent'), ['verify:', 'state=present']),
])
def test_bad_verify_is_refused_before_anything_is_touched(names, mutate, words):
    ns1, ns2, router = names(3)
    topo = verified(ns1, ns2, router)
    mutate(topo)
    assert_failed(run_module('topology', topo), *words)
    assert not {ns1, ns2, router} & set(list_netns())


def test_links_of_new_namespaces_are_predicted(names, make_netns):
    """lo in a namespace the call makes, the MTU and sysctls of a veth it makes: check mode knows them."""
    (ns_a,), ns_b = names(1), make_netns('b')
    rp_filter = '1' if sysctl(ns_b, 'net.ipv4.conf.default.rp_filter') == '2' else '2'  # not the default
    topo = {
        'namespaces': [{'name': ns_a}],
        'veths': [{'name': 'va', 'netns': ns_a, 'peer': 'vb', 'peer_netns': ns_b, 'mtu': 1400}],
        'links': [{'name': 'lo', 'netns': ns_a, 'state': 'up'},
                  {'name': 'va', 'netns': ns_a, 'mtu': 1400},  # already so: no change
                  {'name': 'vb', 'netns': ns_b, 'state': 'up'}],  # the veth brings it up
        # A new link starts from its namespace's conf.default values.
        'sysctls': [{'name': 'net.ipv4.conf.vb.forwarding', 'value': sysctl(ns_b, 'net.ipv4.conf.default.forwarding'), 'netns': ns_b},
                    {'name': 'net.ipv4.conf.vb.rp_filter', 'value': rp_filter, 'netns': ns_b}],
    }
    results = four_runs(topo)
    assert [(c['kind'], c['name'], c.get('attributes')) for c in results[1]['changes'] if c['kind'] == 'link'] == [
        ('link', f'{ns_a}/lo', ['up'])]
    assert [(c['name'], c['action']) for c in results[1]['changes'] if c['kind'] == 'sysctl'] == [(f'{ns_b}/net.ipv4.conf.vb.rp_filter', 'update')]
    assert sysctl(ns_b, 'net.ipv4.conf.vb.rp_filter') == rp_filter
    assert 'UP' in links(ns_a)['lo']['flags'] and links(ns_a)['va']['mtu'] == 1400


# ---------------------------------------------------------------------------
# With tunnels: scripts/uml-run on a host without ipip


@pytest.mark.tunnel
def test_seed_lab_with_ipip_in_one_call(names):
    ns1, ns2, router = names(3)
    topo = seed_lab(ns1, ns2, router)
    results = four_runs(topo)
    assert results[1]['counts'] == {'created': 15, 'updated': 4, 'removed': 0}
    assert_lab_built(ns1, ns2, router)
    for ns, dev, local, remote in ((ns1, 'tunl', '10.10.10.2', '10.10.20.2'), (ns2, 'tunr', '10.10.20.2', '10.10.10.2')):
        link = links(ns)[dev]
        assert link['linkinfo']['info_kind'] == 'ipip'
        assert (link['linkinfo']['info_data']['local'], link['linkinfo']['info_data']['remote']) == (local, remote)
    assert [(a['local'], a.get('address')) for a in addresses('tunl', ns1) if a['family'] == 'inet'] == [('10.10.100.10', '10.10.200.10')]
    assert routes(ns1, '10.10.200.10')[0]['dev'] == 'tunl'
    assert ping(ns1, '10.10.200.10')['ttl'] == 64  # through the tunnel: one hop
    assert ping(ns2, '10.10.100.10')['ttl'] == 64
    assert ping(ns1, '10.10.20.2')['ttl'] == 63  # routed

    gone = four_runs(dict(topo, state='absent'))
    assert {c['name'] for c in gone[1]['changes']} == {ns1, ns2, router}
    assert not {ns1, ns2, router} & set(list_netns())


@pytest.mark.tunnel
def test_tunnel_failure_after_namespaces_and_veths_leaves_nothing(names):
    ns1, ns2, router = names(3)
    topo = seed_lab(ns1, ns2, router)
    topo['tunnels'][0]['dev'] = 'nosuch'  # no such underlay in ns1
    check = run_module('topology', topo, check=True)
    assert_failed(check, 'tunnels[0]', 'nosuch')
    result = run_module('topology', topo)
    assert_failed(result, f'tunnels[0] ({ns1}/tunl)', 'nosuch', 'rolled back')
    assert result['rolled_back']
    assert not {ns1, ns2, router} & set(list_netns())


@pytest.mark.tunnel
def test_tunnel_mode_change_replaces_it_and_its_addresses_come_back(names):
    ns1, ns2, router = names(3)
    topo = seed_lab(ns1, ns2, router)
    assert not run_module('topology', topo).get('failed')
    for tunnel in topo['tunnels']:
        tunnel['mode'] = 'gre'
    results = four_runs(topo)
    # The replaced tunnels lose their addresses with them; check mode knew.
    assert {(c['kind'], c['action']) for c in results[1]['changes']} == {('tunnel', 'replace'), ('address', 'create')}
    assert links(ns1)['tunl']['linkinfo']['info_kind'] == 'gre'
    assert ping(ns1, '10.10.200.10')['ttl'] == 64
