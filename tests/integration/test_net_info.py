"""linuxnet.tunnels.net_info against the real kernel.

Namespaces are made with plain `ip`; what net_info reports is checked against
`ip -j`, and its `topology` output is fed back to the single-resource modules
(every item must report no change) and replayed into fresh namespaces (the
state read again must be the same).
"""

from __future__ import annotations

import importlib
import os

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from harness import addresses, assert_failed, ip, ip_json, links, list_netns, routes, run_module, settled, snapshot, unique


RESOURCES = {
    'namespaces': ('netns', '_netns', 'NetnsResource'),
    'veths': ('veth', '_veth', 'VethResource'),
    'links': ('link', '_link', 'LinkResource'),
    'addresses': ('address', '_address', 'AddressResource'),
    'routes': ('route', '_route', 'RouteResource'),
    'sysctls': ('sysctl', '_sysctl', 'SysctlResource'),
    'tunnels': ('tunnel', '_tunnel', 'TunnelResource'),
    'impairments': ('netem', '_netem', 'NetemResource'),
}
# The order a topology is built in.
REPLAY_ORDER = ('namespaces', 'veths', 'tunnels', 'links', 'addresses', 'routes', 'sysctls', 'impairments')


def resource_spec(key: str) -> dict:
    _module, util, cls = RESOURCES[key]
    resource = getattr(importlib.import_module(f'ansible_collections.linuxnet.tunnels.plugins.module_utils.{util}'), cls)
    full = importlib.import_module('ansible_collections.linuxnet.tunnels.plugins.module_utils._module').full_argument_spec
    return full(resource)


def sysctl(ns: str, key: str, value: str) -> None:
    ip('netns', 'exec', ns, 'sysctl', '-qw', f'{key}={value}')


@pytest.fixture
def lab(make_netns):
    """a --veth-- r, with a p2p address, IPv6, routes in two tables, forwarding on r, lo up in a."""
    a, r = make_netns('ia'), make_netns('ir')
    for ns in (a, r):
        # No DAD: link-local addresses that turn from tentative to valid during a test would change the snapshots.
        sysctl(ns, 'net.ipv6.conf.all.accept_dad', '0')
        sysctl(ns, 'net.ipv6.conf.default.accept_dad', '0')
    ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vr', 'netns', r, netns=a)
    ip('link', 'set', 'dev', 'va', 'up', netns=a)
    ip('link', 'set', 'dev', 'vr', 'up', netns=r)
    ip('link', 'set', 'dev', 'lo', 'up', netns=a)
    ip('addr', 'add', '10.7.0.1/24', 'dev', 'va', netns=a)
    ip('-6', 'addr', 'add', 'fd07::1/64', 'dev', 'va', 'nodad', netns=a)
    ip('addr', 'add', '10.7.0.2', 'peer', '10.7.0.1', 'dev', 'vr', netns=r)
    ip('-6', 'addr', 'add', 'fd07::2/64', 'dev', 'vr', 'nodad', netns=r)
    ip('route', 'add', '10.70.0.0/16', 'via', '10.7.0.2', netns=a)
    ip('route', 'add', '10.71.0.0/16', 'dev', 'va', 'table', '100', netns=a)
    ip('route', 'add', '10.73.0.0/16', 'dev', 'va', 'table', '1000', netns=a)
    ip('route', 'add', 'default', 'via', '10.7.0.2', 'metric', '10', netns=a)
    ip('-6', 'route', 'add', 'fd70::/64', 'via', 'fd07::2', netns=a)
    ip('route', 'add', '10.72.0.0/16', 'dev', 'vr', netns=r)
    sysctl(r, 'net.ipv4.ip_forward', '1')
    sysctl(r, 'net.ipv6.conf.all.forwarding', '1')
    settled(a, 'va')
    settled(r, 'vr')
    return a, r


def read(**params) -> dict:
    result = run_module('net_info', params)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False
    return result


def by_name(items: list[dict]) -> dict:
    return {item['name']: item for item in items}


# ---- what is read ----------------------------------------------------------


def test_links_match_ip(lab):
    a, r = lab
    result = read(namespaces=[a, r])
    assert set(result['namespaces']) == {a, r} and result['current'] is None
    for ns in (a, r):
        mine = by_name(result['namespaces'][ns]['links'])
        theirs = links(ns)
        assert set(mine) == set(theirs)
        for name, link in theirs.items():
            assert mine[name]['mtu'] == link['mtu']
            assert mine[name]['up'] == ('UP' in link['flags'])
            assert mine[name]['kind'] == link.get('linkinfo', {}).get('info_kind')
            assert mine[name]['index'] == link['ifindex']
    va = by_name(result['namespaces'][a]['links'])['va']
    assert va['peer'] == {'name': 'vr', 'netns': r, 'index': links(r)['vr']['ifindex'], 'named': True}
    vr = by_name(result['namespaces'][r]['links'])['vr']
    assert vr['peer'] == {'name': 'va', 'netns': a, 'index': links(a)['va']['ifindex'], 'named': True}


def test_addresses_match_ip(lab):
    a, r = lab
    result = read(namespaces=[a, r])
    for ns, dev in ((a, 'va'), (r, 'vr')):
        mine = {(x['local'], x['prefixlen'], x['peer']) for x in result['namespaces'][ns]['addresses'] if x['dev'] == dev}
        theirs = {(x['local'], x['prefixlen'], x.get('address') if x.get('address', x['local']) != x['local'] else None)
                  for x in addresses(dev, ns)}
        assert mine == theirs
    p2p = [x for x in result['namespaces'][r]['addresses'] if x['local'] == '10.7.0.2']
    assert p2p == [{'dev': 'vr', 'address': '10.7.0.2/32', 'local': '10.7.0.2', 'prefixlen': 32, 'peer': '10.7.0.1',
                    'family': 'ipv4', 'scope': 0, 'permanent': True}]


def test_routes_match_ip_and_skip_kernel_routes(lab):
    a, _r = lab
    result = read(netns=a)
    mine = {(x['dest'], x['gateway'], x['dev'], x['table'], x['metric']) for x in result['namespaces'][a]['routes']}
    theirs = set()
    for family in ('-4', '-6'):
        for route in ip_json(family, 'route', 'show', 'table', 'all', netns=a):
            if route.get('protocol') == 'kernel' or route.get('table') == 'local' or route.get('type', 'unicast') != 'unicast':
                continue
            dest = {'default': '0.0.0.0/0' if family == '-4' else '::/0'}.get(route['dst'], route['dst'])
            dest = dest if '/' in dest else dest + ('/32' if family == '-4' else '/128')
            table = {'main': 254}.get(route.get('table', 'main'), route.get('table'))
            theirs.add((dest, route.get('gateway'), route.get('dev'), int(table), route.get('metric', 0)))
    assert mine == theirs
    assert ('0.0.0.0/0', '10.7.0.2', 'va', 254, 10) in mine
    assert ('fd70::/64', 'fd07::2', 'va', 254, 1024) in mine
    assert ('10.71.0.0/16', None, 'va', 100, 0) in mine
    assert ('10.73.0.0/16', None, 'va', 1000, 0) in mine  # above 255: only RTA_TABLE can say it
    assert all(x['proto'] != 'kernel' for x in result['namespaces'][a]['routes'])

    # kernel_routes lists the connected routes too, never in the topology.
    result = read(netns=a, kernel_routes=True)
    kernel = [x for x in result['namespaces'][a]['routes'] if x['proto'] == 'kernel']
    assert {'10.7.0.0/24', 'fd07::/64'} <= {x['dest'] for x in kernel}
    assert all(x['dest'] not in ('10.7.0.0/24', 'fd07::/64') for x in result['topology']['routes'])


def test_forwarding_sysctls(lab):
    a, r = lab
    result = read(namespaces=[a, r])
    assert result['namespaces'][r]['sysctls'] == {'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '1'}
    assert result['namespaces'][a]['sysctls'] == {'net.ipv4.ip_forward': '0', 'net.ipv6.conf.all.forwarding': '0'}


def test_veth_peer_in_a_namespace_that_was_not_asked_for(lab):
    a, r = lab
    result = read(netns=a)
    assert set(result['namespaces']) == {a}
    assert by_name(result['namespaces'][a]['links'])['va']['peer']['netns'] == r
    assert result['topology']['veths'] == [{'name': 'va', 'peer': 'vr', 'netns': a, 'peer_netns': r, 'mtu': 1500, 'up': True}]
    assert result['topology']['namespaces'] == [{'name': a}]


def test_netns_takes_a_list_of_names_as_namespaces(lab):
    a, r = lab
    result = read(netns=[a, r])
    assert set(result['namespaces']) == {a, r}
    assert [item['name'] for item in result['topology']['namespaces']] == [a, r]


def test_all_namespaces_by_default(lab):
    a, r = lab
    result = read()
    assert {a, r} <= set(result['namespaces'])
    assert result['current'] is None  # the host's own namespace stays out
    assert {a, r} <= {item['name'] for item in result['topology']['namespaces']}


# ---- topology output -------------------------------------------------------


def test_topology_leaves_out_what_the_kernel_makes(lab):
    a, r = lab
    topo = read(namespaces=[a, r])['topology']
    assert set(topo) == set(RESOURCES)
    assert sorted(topo['namespaces'], key=str) == sorted([{'name': a}, {'name': r}], key=str)
    assert topo['veths'] == [{'name': 'va', 'peer': 'vr', 'netns': a, 'peer_netns': r, 'mtu': 1500, 'up': True}]
    assert sorted((x['netns'], x['name'], x['state']) for x in topo['links']) == sorted([(a, 'lo', 'up'), (r, 'lo', 'down')])
    assert sorted((x['netns'], x['dev'], x['address'], x.get('peer')) for x in topo['addresses']) == sorted([
        (a, 'va', '10.7.0.1/24', None), (a, 'va', 'fd07::1/64', None),
        (r, 'vr', '10.7.0.2/32', '10.7.0.1'), (r, 'vr', 'fd07::2/64', None),
    ])  # no 127.0.0.1/8, ::1/128 or fe80::
    assert sorted((x['netns'], x['dest']) for x in topo['routes']) == sorted([
        (a, '10.70.0.0/16'), (a, '10.71.0.0/16'), (a, '10.73.0.0/16'), (a, '0.0.0.0/0'), (a, 'fd70::/64'), (r, '10.72.0.0/16'),
    ])  # no proto kernel, no fe80::/64
    assert {(x['netns'], x['name'], x['value']) for x in topo['sysctls']} == {
        (a, 'net.ipv4.ip_forward', '0'), (a, 'net.ipv6.conf.all.forwarding', '0'),
        (r, 'net.ipv4.ip_forward', '1'), (r, 'net.ipv6.conf.all.forwarding', '1'),
    }
    assert topo['tunnels'] == []


def test_topology_items_take_exactly_the_module_options(lab):
    a, r = lab
    topo = read(namespaces=[a, r])['topology']
    for key, items in topo.items():
        spec = resource_spec(key)
        for item in items:
            assert set(item) <= set(spec), (key, item)
            outcome = ArgumentSpecValidator(spec).validate(dict(item))
            assert not outcome.error_messages, (key, item, outcome.error_messages)


def replay(topo: dict, check: bool = False) -> list[dict]:
    """Every topology item through its single-resource module, in build order."""
    results = []
    for key in REPLAY_ORDER:
        module = RESOURCES[key][0]
        for item in topo[key]:
            result = run_module(module, item, check=check)
            assert not result.get('failed'), (key, item, result.get('msg'))
            results.append((key, item, result))
    return results


def test_feeding_the_topology_back_changes_nothing(lab):
    a, r = lab
    before = snapshot(a, r)
    topo = read(namespaces=[a, r])['topology']
    for check in (True, False):
        changed = [(key, item) for key, item, result in replay(topo, check=check) if result['changed']]
        assert changed == []
    assert snapshot(a, r) == before


def normalised(topo: dict) -> dict:
    return {key: sorted(repr(sorted(item.items())) for item in items) for key, items in topo.items()}


def test_replay_into_fresh_namespaces_reproduces_the_state(lab):
    a, r = lab
    first = read(namespaces=[a, r])
    original = snapshot(a, r)
    for ns in (a, r):
        ip('netns', 'del', ns)
    assert not {a, r} & set(list_netns())

    # Check mode on the empty machine predicts, and makes nothing.
    replay({'namespaces': first['topology']['namespaces'], **{k: [] for k in RESOURCES if k != 'namespaces'}}, check=True)
    assert not {a, r} & set(list_netns())

    created = replay(first['topology'])
    assert all(result['changed'] for key, _item, result in created if key in ('namespaces', 'veths', 'addresses', 'routes'))
    again = read(namespaces=[a, r])
    assert normalised(again['topology']) == normalised(first['topology'])
    # The kernel agrees, beyond what the module reads (ifindexes and link-local addresses aside).
    rebuilt = snapshot(a, r)
    for ns in (a, r):
        assert [l[0:2] for l in rebuilt[ns]['links']] == [l[0:2] for l in original[ns]['links']]
    assert [(x['dst'], x['dev']) for x in routes(a, 'table', '100')] == [('10.71.0.0/16', 'va')]
    assert ip('netns', 'exec', r, 'sysctl', '-n', 'net.ipv4.ip_forward').stdout.strip() == '1'


def test_topology_module_takes_it_back_unchanged_and_rebuilds_it(lab):
    """The issue's round trip, through linuxnet.tunnels.topology itself."""
    a, r = lab
    first = read(namespaces=[a, r])
    before = snapshot(a, r)
    for check in (True, False):
        result = run_module('topology', first['topology'], check=check)
        assert not result.get('failed'), result.get('msg')
        assert result['changed'] is False, result.get('diff') or result
    assert snapshot(a, r) == before

    for ns in (a, r):
        ip('netns', 'del', ns)
    result = run_module('topology', first['topology'])
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True
    assert normalised(read(namespaces=[a, r])['topology']) == normalised(first['topology'])
    assert run_module('topology', first['topology'])['changed'] is False


def test_veth_ends_with_different_mtus_get_a_link_item_each(make_netns):
    a = make_netns('ia')
    ip('link', 'add', 'x1', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'x2', netns=a)
    for dev in ('x1', 'x2'):
        ip('link', 'set', 'dev', dev, 'up', netns=a)
    settled(a, 'x1', 'x2')  # carrier arrives later: a snapshot taken before it would differ
    result = read(netns=a)
    assert not result.get('warnings')
    topo = result['topology']
    (veth,) = topo['veths']
    assert {veth['name'], veth['peer']} == {'x1', 'x2'} and veth['netns'] == a and veth['up'] is True and 'mtu' not in veth
    assert {x['name']: x['mtu'] for x in topo['links'] if x['name'] != 'lo'} == {'x1': 1400, 'x2': 1500}
    assert all('state' not in x for x in topo['links'] if x['name'] != 'lo')
    before = snapshot(a)
    assert [item for key, item, result in replay(topo) if result['changed']] == []
    assert snapshot(a) == before


def test_veth_ends_in_different_admin_states_are_a_warning(make_netns):
    a = make_netns('ia')
    ip('link', 'add', 'x1', 'type', 'veth', 'peer', 'name', 'x2', netns=a)
    ip('link', 'set', 'dev', 'x1', 'up', netns=a)
    result = read(netns=a)
    (veth,) = result['topology']['veths']
    up = {'x1': True, 'x2': False}[veth['name']]
    assert veth['up'] is up
    assert any('up or down together' in str(w) and f'up: {str(up).lower()} for both' in str(w) for w in result.get('warnings', []))


def test_veth_inside_one_namespace_appears_once(make_netns):
    a = make_netns('ia')
    ip('link', 'add', 'y1', 'type', 'veth', 'peer', 'name', 'y2', netns=a)
    result = read(netns=a)
    assert by_name(result['namespaces'][a]['links'])['y1']['peer'] == {
        'name': 'y2', 'netns': a, 'index': links(a)['y2']['ifindex'], 'named': True}
    (veth,) = result['topology']['veths']
    assert {veth['name'], veth['peer']} == {'y1', 'y2'} and 'peer_netns' not in veth
    assert veth['up'] is False and veth['mtu'] == 1500


def test_multipath_route_is_left_out_with_a_warning(lab):
    a, _r = lab
    ip('addr', 'add', '10.7.0.3/24', 'dev', 'va', netns=a)
    ip('route', 'add', '10.90.0.0/16', 'nexthop', 'via', '10.7.0.2', 'nexthop', 'via', '10.7.0.4', netns=a)
    result = read(netns=a)
    assert any(x['dest'] == '10.90.0.0/16' and x['multipath'] for x in result['namespaces'][a]['routes'])
    assert all(x['dest'] != '10.90.0.0/16' for x in result['topology']['routes'])
    assert any('10.90.0.0/16' in str(w) and 'multipath' in str(w) for w in result.get('warnings', []))


# ---- reading changes nothing; refusals -------------------------------------


def test_reading_changes_nothing_and_check_mode_is_the_same(lab):
    a, r = lab
    before = snapshot(a, r)
    real = read(namespaces=[a, r])
    check = run_module('net_info', {'namespaces': [a, r]}, check=True)
    assert check['changed'] is False
    assert check['topology'] == real['topology'] and check['namespaces'].keys() == real['namespaces'].keys()
    assert snapshot(a, r) == before


def test_missing_namespace_is_an_error_and_is_not_created(lab, netns_name):
    a, _r = lab
    for params, option in (({'netns': netns_name}, 'netns'), ({'namespaces': [a, netns_name]}, 'namespaces')):
        result = run_module('net_info', params)
        assert_failed(result, f"{option}: network namespace '{netns_name}' does not exist")
        assert netns_name not in list_netns()


@pytest.mark.parametrize('params, words', [
    ({'netns': '../evil'}, ['netns:', 'not a valid network namespace name']),
    ({'namespaces': ['a/b']}, ['namespaces:', 'not a valid network namespace name']),
    ({'netns': 'x', 'namespaces': ['y']}, ['mutually exclusive', 'netns', 'namespaces']),
])
def test_bad_input_is_refused(params, words):
    result = run_module('net_info', params)
    assert_failed(result, *words)
    assert not {'x', 'y', 'evil', 'a'} & set(list_netns()) and not os.path.exists('/run/evil')


# ---- tunnels (need ipip/gre/sit: scripts/uml-run) ---------------------------


@pytest.mark.tunnel
def test_tunnel_attributes_and_round_trip(make_netns):
    a, b = make_netns('ia'), make_netns('ib')
    ip('link', 'add', 'ua', 'type', 'veth', 'peer', 'name', 'ub', 'netns', b, netns=a)
    ip('link', 'set', 'dev', 'ua', 'up', netns=a)
    ip('link', 'set', 'dev', 'ub', 'up', netns=b)
    ip('addr', 'add', '192.0.2.1/24', 'dev', 'ua', netns=a)
    ip('link', 'add', 'tip', 'type', 'ipip', 'local', '192.0.2.1', 'remote', '192.0.2.2', 'ttl', '64', 'dev', 'ua', netns=a)
    ip('link', 'add', 'tgre', 'type', 'gre', 'local', '192.0.2.1', 'remote', '192.0.2.3', 'key', '10', 'csum', netns=a)
    ip('link', 'add', 'tsit', 'mtu', '1400', 'type', 'sit', 'local', '192.0.2.1', 'remote', '192.0.2.4', 'tos', '0x10', netns=a)
    ip('link', 'set', 'dev', 'tip', 'up', netns=a)
    ip('addr', 'add', '10.10.100.10', 'peer', '10.10.200.10', 'dev', 'tip', netns=a)
    settled(a, 'ua')  # carrier arrives later: a snapshot taken before it would differ
    settled(b, 'ub')
    result = read(namespaces=[a, b])
    mine = by_name(result['namespaces'][a]['links'])
    assert mine['tip']['tunnel']['mode'] == 'ipip' and mine['tip']['tunnel']['remote'] == '192.0.2.2'
    assert mine['tip']['tunnel']['ttl'] == 64 and mine['tip']['tunnel']['dev'] == 'ua'
    assert mine['tgre']['tunnel']['key'] == 10 and mine['tgre']['tunnel']['csum'] is True
    assert mine['tsit']['tunnel']['tos'] == 0x10 and mine['tsit']['tunnel']['mtu'] == 1400
    fallback = {name for name, link in mine.items() if link.get('fallback')}
    assert {'tunl0', 'gre0', 'sit0'} <= fallback

    topo = result['topology']
    tunnels = by_name(topo['tunnels'])
    assert set(tunnels) == {'tip', 'tgre', 'tsit'}  # no fallback devices
    assert tunnels['tip'] == {'name': 'tip', 'netns': a, 'mode': 'ipip', 'local': '192.0.2.1', 'remote': '192.0.2.2', 'dev': 'ua',
                              'ttl': '64', 'tos': '0', 'pmtudisc': True, 'encap': 'none', 'mtu': links(a)['tip']['mtu'], 'up': True}
    assert tunnels['tgre']['key'] == '10' and 'ikey' not in tunnels['tgre']
    assert not {x['name'] for x in topo['links']} & {'tunl0', 'gre0', 'sit0', 'gretap0', 'erspan0', 'tip'}
    assert ('tip', '10.10.100.10/32', '10.10.200.10') in {(x['dev'], x['address'], x.get('peer')) for x in topo['addresses']}

    for key, items in topo.items():
        spec = resource_spec(key)
        for item in items:
            assert not ArgumentSpecValidator(spec).validate(dict(item)).error_messages, (key, item)
    before = snapshot(a, b)
    assert [(key, item) for key, item, res in replay(topo) if res['changed']] == []
    result = run_module('topology', topo)
    assert not result.get('failed') and result['changed'] is False, result
    assert snapshot(a, b) == before

    # Rebuilt from scratch, the tunnels come back the same.
    for ns in (a, b):
        ip('netns', 'del', ns)
    replay(topo)
    assert normalised(read(namespaces=[a, b])['topology']) == normalised(topo)


@pytest.mark.rootns
def test_veth_to_the_current_namespace(make_netns):
    """Under uml-run only: the current (root) namespace is the throwaway kernel's."""
    a = make_netns('ia')
    name = unique('h')
    ip('link', 'add', name, 'type', 'veth', 'peer', 'name', 'up0', 'netns', a)
    try:
        result = read(netns=a)
        assert by_name(result['namespaces'][a]['links'])['up0']['peer']['netns'] is None
        # Declared from the current namespace's end: the veth module cannot name it as a peer_netns.
        assert result['topology']['veths'] == [{'name': name, 'peer': 'up0', 'peer_netns': a, 'mtu': 1500, 'up': False}]
        result = read(netns=a, include_current=True)
        assert result['current'] is not None and name in by_name(result['current']['links'])
        assert len(result['topology']['veths']) == 1
    finally:
        ip('link', 'del', name, check=False)


@pytest.mark.rootns
def test_include_current_reads_a_named_current_namespace_under_its_name():
    """As under the netns connection: Ansible runs inside a namespace that has a name."""
    here = unique('cur')
    ip('netns', 'attach', here, str(os.getpid()))
    try:
        result = read(namespaces=[], include_current=True)
        assert result['current'] is None
        assert list(result['namespaces']) == [here]
        assert 'lo' in by_name(result['namespaces'][here]['links'])
    finally:
        ip('netns', 'del', here, check=False)
