"""linuxnet.tunnels.netem against the real kernel, on the seed lab's router.

sch_netem exists only in the tunnel-capable kernel here, so every test is
marked `tunnel`:
    scripts/uml-run -- .venv/bin/pytest -q -p no:cacheprovider tests/integration/test_netem.py
The lab (two hosts, a router namespace, ipip between the hosts) is built once
with `ip`; every test leaves the router's links with their default qdisc.
Out-of-band checks read `tc -j qdisc show`; the effects are measured with
pings through the tunnel and a bulk TCP transfer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from harness import assert_failed, assert_rhythm, ip, list_netns, rhythm, run_module, unique
from reliability.common import lab_topology

pytestmark = pytest.mark.tunnel

# Addresses of the seed lab: ns1 --v1/v1-P-- router --v2-P/v2-- ns2, and tunl/tunr between the hosts.
NS1_TUNNEL, NS2_TUNNEL = '10.10.100.10', '10.10.200.10'
PORT = 5001


def tc_qdiscs(netns: str, dev: str | None = None) -> list[dict]:
    """`tc -j qdisc show` in netns (one link or all)."""
    cmd = ['ip', 'netns', 'exec', netns, 'tc', '-j', 'qdisc', 'show'] + (['dev', dev] if dev else [])
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout or '[]')


def tc_root(netns: str, dev: str) -> dict:
    (root,) = [q for q in tc_qdiscs(netns, dev) if q.get('root')]
    return root


@pytest.fixture(scope='module')
def lab():
    """(ns1, ns2, router) of the seed lab, made with ip; removed at the end."""
    ns1, ns2, router = unique('n1'), unique('n2'), unique('nr')
    for ns in (ns1, ns2, router):
        ip('netns', 'add', ns)
        ip('link', 'set', 'lo', 'up', netns=ns)
    try:
        for host, dev, peer, host_addr, router_addr, other in (
                (ns1, 'v1', 'v1-P', '10.10.10.2/24', '10.10.10.1/24', '10.10.20.0/24'),
                (ns2, 'v2', 'v2-P', '10.10.20.2/24', '10.10.20.1/24', '10.10.10.0/24')):
            ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', peer, 'netns', router, netns=host)
            ip('addr', 'add', host_addr, 'dev', dev, netns=host)
            ip('addr', 'add', router_addr, 'dev', peer, netns=router)
            ip('link', 'set', dev, 'up', netns=host)
            ip('link', 'set', peer, 'up', netns=router)
            ip('route', 'add', other, 'via', router_addr.split('/', maxsplit=1)[0], netns=host)
        ip('netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
        for host, dev, local, remote, inner, inner_peer in (
                (ns1, 'tunl', '10.10.10.2', '10.10.20.2', NS1_TUNNEL, NS2_TUNNEL),
                (ns2, 'tunr', '10.10.20.2', '10.10.10.2', NS2_TUNNEL, NS1_TUNNEL)):
            ip('link', 'add', dev, 'type', 'ipip', 'local', local, 'remote', remote, netns=host)
            ip('addr', 'add', inner, 'peer', inner_peer, 'dev', dev, netns=host)
            ip('link', 'set', dev, 'up', netns=host)
        yield ns1, ns2, router
    finally:
        for ns in (ns1, ns2, router):
            ip('netns', 'del', ns, check=False)


@pytest.fixture
def router(lab):
    """The lab's router; its links get their default qdisc back after the test."""
    yield lab[2]
    for dev in ('v1-P', 'v2-P'):
        if tc_root(lab[2], dev)['handle'] != '0:':
            subprocess.run(['ip', 'netns', 'exec', lab[2], 'tc', 'qdisc', 'del', 'dev', dev, 'root'], check=False)


def netem(router: str, **options) -> dict:
    result = run_module('netem', dict({'dev': 'v1-P', 'netns': router}, **options))
    assert not result.get('failed'), result.get('msg')
    return result


def ping_tunnel(ns1: str, **options) -> dict:
    """ns1 -> ns2 through the tunnel; the replies cross the router's v1-P."""
    params = dict({'dest': NS2_TUNNEL, 'netns': ns1, 'count': 3, 'interval': 0.1, 'timeout': 3}, **options)
    return run_module('ping', params)


def assert_tc_agrees(router: str, state: dict) -> None:
    """What tc reads from the kernel is what the module returned."""
    root = tc_root(router, state['dev'])
    options = root['options']
    assert root['kind'] == 'netem' and state['qdisc'] == 'netem' and root['handle'] == state['handle']
    assert options['limit'] == state['limit']
    delay = options.get('delay', {})
    assert delay.get('delay', 0) == pytest.approx(seconds(state['delay']))
    assert delay.get('jitter', 0) == pytest.approx(seconds(state['jitter']))
    assert delay.get('correlation', 0) == pytest.approx(share(state['delay_correlation']))
    loss = options.get('loss-random', {})
    assert loss.get('loss', 0) == pytest.approx(share(state['loss']))
    assert loss.get('correlation', 0) == pytest.approx(share(state['loss_correlation']))
    assert options.get('rate', {}).get('rate', 0) * 8 == bits(state['rate'])
    assert options.get('corrupt', {}).get('corrupt', 0) == pytest.approx(share(state['corrupt']))
    assert options.get('duplicate', {}).get('duplicate', 0) == pytest.approx(share(state['duplicate']))
    assert options.get('reorder', {}).get('reorder', 0) == pytest.approx(share(state['reorder']))
    assert options['gap'] == state['gap']


def seconds(text: str) -> float:
    for unit, factor in (('ms', 1e-3), ('us', 1e-6), ('ns', 1e-9), ('s', 1.0)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * factor
    raise AssertionError(text)


def share(text: str) -> float:
    assert text.endswith('%')
    return float(text[:-1]) / 100


def bits(text: str) -> int:
    for unit, factor in (('kbit', 10 ** 3), ('mbit', 10 ** 6), ('gbit', 10 ** 9), ('bit', 1)):
        if text.endswith(unit):
            return round(float(text[:-len(unit)]) * factor)
    raise AssertionError(text)


# ---------------------------------------------------------------------------


def test_rhythm_and_tc_agrees(lab, router):
    params = {'dev': 'v1-P', 'netns': router, 'delay': '50ms', 'jitter': '1ms', 'loss': '0.5%', 'rate': '10mbit',
              'corrupt': 0.1, 'duplicate': '1%', 'reorder': '5%', 'limit': 2000}
    results = rhythm('netem', params)
    assert_rhythm(results)
    assert [r['action'] for r in results] == ['create', 'create', 'none', 'none']
    check, real = results[0]['netem'], results[1]['netem']
    # The check run predicted the real state, all but the handle the kernel picks.
    assert dict(check, handle=real['handle']) == real
    assert real == results[3]['netem']
    assert real['delay'] == '50ms' and real['loss'] == '0.5%' and real['rate'] == '10mbit' and real['corrupt'] == '0.1%'
    assert real['gap'] == 1  # reorder without gap: tc's default
    for result in results[2:]:
        assert_tc_agrees(router, result['netem'])
    assert tc_root(router, 'v2-P')['kind'] == 'noqueue'  # the other link untouched


def test_delay_shows_in_the_rtt_and_goes_away(lab, router):
    ns1 = lab[0]
    before = tc_qdiscs(router)
    base = ping_tunnel(ns1)
    assert base['received'] == 3 and base['rtt_max'] < 50, base
    netem(router, delay='50ms')
    delayed = ping_tunnel(ns1)
    assert delayed['received'] == 3 and delayed['rtt_min'] >= 50, delayed
    gone = run_module('netem', {'dev': 'v1-P', 'netns': router, 'state': 'absent'})
    assert gone['changed'] and gone['netem']['present'] is False and gone['netem']['qdisc'] == 'noqueue'
    after = ping_tunnel(ns1)
    assert after['received'] == 3 and after['rtt_max'] < 50, after
    assert tc_qdiscs(router) == before  # the kernel as it was


def test_full_loss_makes_the_ping_fail(lab, router):
    netem(router, loss='100%')
    failed = ping_tunnel(lab[0], count=2, timeout=0.5)
    assert_failed(failed, 'loss')
    assert failed['received'] == 0
    # expect: fail is how to prove that something is not reachable; with the loss gone it misses.
    unreachable = ping_tunnel(lab[0], count=2, timeout=0.5, expect='fail')
    assert not unreachable.get('failed') and unreachable['received'] == 0, unreachable
    netem(router, loss=0)
    assert ping_tunnel(lab[0])['received'] == 3
    assert_failed(ping_tunnel(lab[0], count=2, timeout=0.5, expect='fail'), 'expected no reply')


RECEIVER = textwrap.dedent('''
    import socket, sys, time
    server = socket.create_server((sys.argv[1], int(sys.argv[2])))
    server.settimeout(20)
    print('ready', flush=True)
    conn, _ = server.accept()
    conn.settimeout(20)
    total, first = 0, None
    while True:
        data = conn.recv(65536)
        if first is None:
            first = time.monotonic()
        if not data:
            break
        total += len(data)
    print(total, time.monotonic() - first, flush=True)
''')
SENDER = textwrap.dedent('''
    import socket, sys
    conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
    conn.sendall(b'x' * int(sys.argv[3]))
    conn.close()
''')


def bulk_rate(ns_from: str, ns_to: str, dest: str, size: int) -> float:
    """Bits per second of one TCP transfer of `size` bytes, as the receiver saw it."""
    receiver = subprocess.Popen(['ip', 'netns', 'exec', ns_to, sys.executable, '-c', RECEIVER, dest, str(PORT)],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == 'ready'
        subprocess.run(['ip', 'netns', 'exec', ns_from, sys.executable, '-c', SENDER, dest, str(PORT), str(size)],
                       check=True, timeout=30)
        total, elapsed = receiver.communicate(timeout=30)[0].split()
    finally:
        receiver.kill()
        receiver.wait()
    assert int(total) == size
    return size * 8 / float(elapsed)


def test_rate_limit_measured_with_a_bulk_transfer_through_the_tunnel(lab, router):
    ns1, ns2 = lab[0], lab[1]
    size = 300_000  # 2.4 Mbit: about a second at the limit
    free = bulk_rate(ns2, ns1, NS1_TUNNEL, size)
    netem(router, rate='2mbit')  # the router's v1-P sends what ns2 sends to ns1
    limited = bulk_rate(ns2, ns1, NS1_TUNNEL, size)
    # Never above the limit (plus the first window's burst), and well below the unlimited link.
    assert limited <= 2e6 * 1.15, (free, limited)
    assert limited >= 2e6 * 0.5, (free, limited)
    assert free >= 2 * limited, (free, limited)
    print(f"bulk transfer: {free / 1e6:.1f} Mbit/s unlimited, {limited / 1e6:.2f} Mbit/s limited to 2mbit")


def test_changing_the_delay_keeps_the_loss(lab, router):
    netem(router, delay='50ms', loss='20%')
    changed = rhythm('netem', {'dev': 'v1-P', 'netns': router, 'delay': '20ms'})
    assert_rhythm(changed)
    assert changed[1]['attributes'] == ['delay'] and changed[1]['action'] == 'update'
    state = changed[3]['netem']
    assert (state['delay'], state['loss']) == ('20ms', '20%')
    assert_tc_agrees(router, state)
    # Declaring the same again, or less, changes nothing.
    assert not netem(router, delay='20ms', loss='20%')['changed']
    assert not netem(router, loss='20%')['changed']


def test_removal_leaves_the_kernel_as_it_was(lab, router):
    before = tc_qdiscs(router)
    netem(router, delay='10ms', rate='100mbit')
    assert tc_qdiscs(router) != before
    results = rhythm('netem', {'dev': 'v1-P', 'netns': router, 'state': 'absent'})
    assert_rhythm(results)
    assert [r['action'] for r in results] == ['delete', 'delete', 'none', 'none']
    assert tc_qdiscs(router) == before


def test_another_root_qdisc_needs_force(lab, router):
    subprocess.run(['ip', 'netns', 'exec', router, 'tc', 'qdisc', 'add', 'dev', 'v1-P', 'root', 'handle', '1:', 'htb'], check=True)
    before = tc_qdiscs(router)
    for check in (True, False):
        refused = run_module('netem', {'dev': 'v1-P', 'netns': router, 'delay': '5ms'}, check=check)
        assert_failed(refused, "link 'v1-P'", 'htb', 'force')
    assert tc_qdiscs(router) == before
    # absent leaves someone else's qdisc alone.
    assert not run_module('netem', {'dev': 'v1-P', 'netns': router, 'state': 'absent'})['changed']
    results = rhythm('netem', {'dev': 'v1-P', 'netns': router, 'delay': '5ms', 'force': True})
    assert_rhythm(results)
    assert results[1]['action'] == 'replace' and 'htb' in results[1]['note']
    assert tc_root(router, 'v1-P')['kind'] == 'netem'
    netem(router, state='absent')
    assert tc_root(router, 'v1-P')['kind'] == 'noqueue'  # the default, not the htb


@pytest.mark.parametrize('options, words', [
    ({'delay': '-10ms'}, ['delay', 'negative']),
    ({'loss': '120%'}, ['loss', 'more than 100%']),
    ({'delay': '10 fortnights'}, ['delay', "unknown unit 'fortnights'"]),
    ({'rate': '10 mbps/s'}, ['rate', 'not a rate']),
    ({'dev': 'nosuch', 'delay': '10ms'}, ["dev: link 'nosuch' does not exist"]),
    ({'netns': 'MISSING', 'delay': '10ms'}, ['namespace', 'does not exist']),
    ({'reorder': '10%'}, ['reorder', 'needs a delay']),
])
def test_bad_inputs_change_nothing(lab, router, options, words):
    netem(router, loss='1%')
    before = tc_qdiscs(router), list_netns()
    if options.get('netns') == 'MISSING':
        options = dict(options, netns=unique('nx'))
    for check in (True, False):
        result = run_module('netem', dict({'dev': 'v1-P', 'netns': router}, **options), check=check)
        assert_failed(result, *words)
    assert (tc_qdiscs(router), list_netns()) == before
    if 'netns' in options:
        assert options['netns'] not in list_netns()  # never created as a side effect


def test_absent_on_a_missing_link_or_namespace_does_nothing(lab, router):
    missing = unique('nx')
    for options in ({'dev': 'nosuch'}, {'netns': missing}):
        result = run_module('netem', dict({'dev': 'v1-P', 'netns': router, 'state': 'absent'}, **options))
        assert not result.get('failed') and not result['changed'], result
        assert result['action'] == 'none'
    assert missing not in list_netns()


# ---------------------------------------------------------------------------
# topology and net_info


def four_runs(topo: dict) -> list[dict]:
    """topology check -> real -> check -> real: changed, changed, unchanged, unchanged; the check run predicts the real one."""
    results = [run_module('topology', topo, check=check) for check in (True, False, True, False)]
    for result in results:
        assert not result.get('failed'), result.get('msg')
    assert [r['changed'] for r in results] == [True, True, False, False], [r['changes'] for r in results]
    assert [(c['name'], c['action'], c.get('attributes')) for c in results[0]['changes']] == \
        [(c['name'], c['action'], c.get('attributes')) for c in results[1]['changes']]
    return results


def test_topology_impairments_and_the_net_info_round_trip(lab, router):
    ns1, ns2 = lab[0], lab[1]
    before = tc_qdiscs(router)
    items = [{'dev': 'v1-P', 'netns': router, 'delay': '50ms', 'loss': '1%'}, {'dev': 'v2-P', 'netns': router, 'rate': '10mbit'}]
    results = four_runs({'impairments': items})
    assert [(c['kind'], c['name'], c['action'], c['item']) for c in results[1]['changes']] == [
        ('netem', f'{router}/v1-P', 'create', 'impairments[0]'), ('netem', f'{router}/v2-P', 'create', 'impairments[1]')]
    assert tc_root(router, 'v1-P')['options']['delay']['delay'] == pytest.approx(0.05)
    assert tc_root(router, 'v2-P')['options']['rate']['rate'] == 1_250_000

    info = run_module('net_info', {'namespaces': [ns1, ns2, router]})
    assert not info.get('failed'), info.get('msg')
    reported = {i['dev']: i for i in info['namespaces'][router]['impairments']}
    assert set(reported) == {'v1-P', 'v2-P'} and info['namespaces'][ns1]['impairments'] == []
    assert (reported['v1-P']['delay'], reported['v1-P']['loss'], reported['v1-P']['rate']) == ('50ms', '1%', '0bit')
    assert_tc_agrees(router, dict(reported['v2-P'], qdisc='netem', handle=tc_root(router, 'v2-P')['handle']))
    assert info['topology']['impairments'] == items  # only what differs from a new qdisc

    # The whole lab as net_info reads it goes back through topology unchanged.
    for check in (True, False):
        again = run_module('topology', info['topology'], check=check)
        assert not again.get('failed'), again.get('msg')
        assert again['changed'] is False, again['changes']

    gone = four_runs({'impairments': items, 'state': 'absent'})
    assert [c['action'] for c in gone[1]['changes']] == ['delete', 'delete']
    assert tc_qdiscs(router) == before


def test_topology_builds_a_lab_with_a_delay_on_a_link_it_makes():
    ns1, ns2, router = unique('t1'), unique('t2'), unique('tr')
    topo = {
        'namespaces': [{'name': ns1}, {'name': ns2}, {'name': router}],
        'veths': [{'name': 'v1', 'netns': ns1, 'peer': 'v1-P', 'peer_netns': router},
                  {'name': 'v2', 'netns': ns2, 'peer': 'v2-P', 'peer_netns': router}],
        'addresses': [{'dev': 'v1', 'netns': ns1, 'address': '10.10.10.2/24'}, {'dev': 'v1-P', 'netns': router, 'address': '10.10.10.1/24'},
                      {'dev': 'v2', 'netns': ns2, 'address': '10.10.20.2/24'}, {'dev': 'v2-P', 'netns': router, 'address': '10.10.20.1/24'}],
        'routes': [{'dest': '10.10.20.0/24', 'gateway': '10.10.10.1', 'netns': ns1},
                   {'dest': '10.10.10.0/24', 'gateway': '10.10.20.1', 'netns': ns2}],
        'sysctls': [{'name': 'net.ipv4.ip_forward', 'value': '1', 'netns': router}],
        'impairments': [{'dev': 'v1-P', 'netns': router, 'delay': '50ms'}],
    }
    try:
        results = four_runs(topo)
        assert ('netem', f'{router}/v1-P', 'create') in [(c['kind'], c['name'], c['action']) for c in results[1]['changes']]
        assert tc_root(router, 'v1-P')['kind'] == 'netem'
        delayed = run_module('ping', {'dest': '10.10.20.2', 'netns': ns1, 'count': 3, 'interval': 0.1, 'timeout': 3})
        assert delayed['received'] == 3 and delayed['rtt_min'] >= 50, delayed
        # A changed delay is an update of that item alone.
        topo['impairments'][0]['delay'] = '10ms'
        changed = four_runs(topo)
        assert [(c['kind'], c['action'], c.get('attributes')) for c in changed[1]['changes']] == [('netem', 'update', ['delay'])]
        removed = run_module('topology', dict(topo, state='absent'))
        assert not removed.get('failed') and removed['changed'], removed.get('msg')
        assert not {ns1, ns2, router} & set(list_netns())
    finally:
        for ns in (ns1, ns2, router):
            ip('netns', 'del', ns, check=False)


def test_the_lab_role_puts_its_impairments_in_its_topology():
    """ipip_lab_impairments as the ipip_lab role renders it: an item without netns is on the router."""
    names = {'ipip_lab_ns1': unique('l1'), 'ipip_lab_ns2': unique('l2'), 'ipip_lab_router_netns': unique('lr')}
    router = names['ipip_lab_router_netns']
    topo = lab_topology(dict(names, ipip_lab_impairments=[{'dev': 'v1-P', 'delay': '50ms'}]))
    assert topo['impairments'] == [{'netns': router, 'dev': 'v1-P', 'delay': '50ms'}]
    assert lab_topology(names)['impairments'] == []  # the default
    try:
        four_runs(topo)
        # ns2 -> ns1 through the tunnel: the request crosses v1-P inside the outer packet.
        delayed = run_module('ping', {'dest': '10.10.100.10', 'netns': names['ipip_lab_ns2'], 'count': 3, 'interval': 0.1, 'timeout': 3})
        assert delayed['received'] == 3 and delayed['rtt_min'] >= 50, delayed
    finally:
        run_module('topology', {'namespaces': topo['namespaces'], 'veths': topo['veths'], 'state': 'absent'})
        for ns in names.values():
            ip('netns', 'del', ns, check=False)
