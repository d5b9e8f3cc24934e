"""linuxnet.tunnels.ping against the real kernel, between namespaces made here."""

from __future__ import annotations

import pytest

from harness import assert_failed, ip, links, run_module, settled, snapshot


def veth(a: str, a_dev: str, b: str, b_dev: str, mtu: int | None = None) -> None:
    ip('link', 'add', a_dev, 'type', 'veth', 'peer', 'name', b_dev, 'netns', b, netns=a)
    for ns, dev in ((a, a_dev), (b, b_dev)):
        if mtu:
            ip('link', 'set', 'dev', dev, 'mtu', str(mtu), netns=ns)
        ip('link', 'set', 'dev', dev, 'up', netns=ns)


def address(ns: str, dev: str, *addrs: str) -> None:
    for addr in addrs:
        extra = ['nodad'] if ':' in addr else []
        ip('addr', 'add', addr, 'dev', dev, *extra, netns=ns)


def no_dad(*namespaces: str) -> None:
    """No duplicate address detection on links made later in these namespaces.

    A router resolves a forwarded packet's next hop from its link-local
    address; while that is tentative (about 2 s after link-up) it sends no
    neighbour solicitation and the first IPv6 pings are lost.
    """
    for ns in namespaces:
        for key in ('net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'):
            ip('netns', 'exec', ns, 'sysctl', '-qw', key)


def forwarding(ns: str) -> None:
    for key in ('net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'):
        ip('netns', 'exec', ns, 'sysctl', '-qw', key)


@pytest.fixture
def pair(make_netns):
    """a --veth-- b, 10.1.0.0/24 and fd01::/64, no default routes."""
    a, b = make_netns('pa'), make_netns('pb')
    no_dad(a, b)
    veth(a, 'ab', b, 'ba')
    address(a, 'ab', '10.1.0.1/24', 'fd01::1/64')
    address(b, 'ba', '10.1.0.2/24', 'fd01::2/64')
    settled(a, 'ab')
    settled(b, 'ba')
    return a, b


def chain(make_netns, right_mtu: int | None = None):
    """a -- r -- b with r forwarding; the r--b link may have a smaller MTU."""
    a, r, b = make_netns('pa'), make_netns('pr'), make_netns('pb')
    no_dad(a, r, b)
    veth(a, 'ar', r, 'ra')
    veth(r, 'rb', b, 'br', mtu=right_mtu)
    address(a, 'ar', '10.1.0.1/24', 'fd01::1/64')
    address(r, 'ra', '10.1.0.2/24', 'fd01::2/64')
    address(r, 'rb', '10.2.0.1/24', 'fd02::1/64')
    address(b, 'br', '10.2.0.2/24', 'fd02::2/64')
    forwarding(r)
    ip('route', 'add', 'default', 'via', '10.1.0.2', netns=a)
    ip('-6', 'route', 'add', 'default', 'via', 'fd01::2', netns=a)
    ip('route', 'add', 'default', 'via', '10.2.0.1', netns=b)
    ip('-6', 'route', 'add', 'default', 'via', 'fd02::1', netns=b)
    return a, r, b


def assert_all_answered(result: dict, count: int, ttl: int) -> None:
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False
    assert (result['transmitted'], result['received'], result['loss']) == (count, count, 0)
    assert result['ttl'] == ttl and result['ttls'] == [ttl]
    assert 0 < result['rtt_min'] <= result['rtt_avg'] <= result['rtt_max'] < 2000
    assert result['errors'] == [] and result['duplicates'] == 0


@pytest.mark.parametrize('dest, family', [('10.1.0.2', 'ipv4'), ('fd01::2', 'ipv6')])
def test_neighbour_answers_with_ttl_64(pair, dest, family):
    a, _b = pair
    result = run_module('ping', {'dest': dest, 'netns': a, 'count': 3})
    assert_all_answered(result, 3, 64)
    assert result['family'] == family and result['address'] == dest and result['netns'] == a


def test_check_mode_pings_anyway_and_never_changes(pair):
    a, b = pair
    before = snapshot(a, b)
    results = [run_module('ping', {'dest': '10.1.0.2', 'netns': a, 'count': 2}, check=check) for check in (True, False, True)]
    for result in results:
        assert_all_answered(result, 2, 64)
    assert snapshot(a, b) == before


def test_namespace_matters(pair):
    """b reaches its own loopback address; a has no route to it."""
    a, b = pair
    ip('addr', 'add', '10.5.0.9/32', 'dev', 'lo', netns=b)
    ip('link', 'set', 'dev', 'lo', 'up', netns=b)
    result = run_module('ping', {'dest': '10.5.0.9', 'netns': b, 'count': 1})
    assert result['received'] == 1 and not result.get('failed')
    # The same ping from a: no route, so the kernel refuses to send.
    result = run_module('ping', {'dest': '10.5.0.9', 'netns': a, 'count': 1, 'timeout': 0.5})
    assert_failed(result, '100% loss', 'Network is unreachable')


@pytest.mark.parametrize('dest', ['10.2.0.2', 'fd02::2'])
def test_router_in_between_gives_ttl_63(make_netns, dest):
    a, _r, _b = chain(make_netns)
    result = run_module('ping', {'dest': dest, 'netns': a, 'count': 3, 'interval': 0.05})
    assert_all_answered(result, 3, 63)


def test_silent_neighbour_is_100_percent_loss(pair):
    a, _b = pair
    result = run_module('ping', {'dest': '10.1.0.77', 'netns': a, 'count': 2, 'interval': 0.1, 'timeout': 0.5})
    assert_failed(result, "ping 10.1.0.77 from namespace '", '2 of 2 echo requests lost', '100% loss', 'max_loss is 0%')
    assert (result['transmitted'], result['received'], result['loss']) == (2, 0, 100)
    assert result['rtt_avg'] is None and result['ttl'] is None and result['changed'] is False


def test_no_route_is_a_readable_local_error(pair):
    a, _b = pair
    result = run_module('ping', {'dest': '192.0.2.1', 'netns': a, 'count': 2, 'interval': 0, 'timeout': 0.3})
    assert_failed(result, '100% loss', 'icmp_seq=1: local error: Network is unreachable (ENETUNREACH)')
    assert (result['transmitted'], result['received']) == (2, 0)


def drop_reply(ns: str, dev: str, seq: int) -> None:
    """Drop the IPv4 echo reply with sequence number `seq` leaving dev.

    This host's kernel has u32 but no gact action: classify into an HTB class
    whose leaf is a pfifo of limit 0, which drops everything it is given.
    """
    for cmd in (
        ['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10', 'r2q', '100000'],
        ['class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '1gbit'],
        ['class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '1gbit'],
        ['qdisc', 'add', 'dev', dev, 'parent', '1:20', 'handle', '20:', 'pfifo', 'limit', '0'],
        ['filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'ip', 'u32',
         'match', 'ip', 'protocol', '1', '0xff', 'match', 'u16', str(seq), '0xffff', 'at', '26', 'flowid', '1:20'],
    ):
        ip('netns', 'exec', ns, 'tc', *cmd)


def test_max_loss_is_honoured(pair):
    a, b = pair
    drop_reply(b, 'ba', seq=2)
    base = {'dest': '10.1.0.2', 'netns': a, 'count': 3, 'interval': 0.05, 'timeout': 0.5}

    result = run_module('ping', dict(base, max_loss=34))
    assert not result.get('failed'), result.get('msg')
    assert (result['transmitted'], result['received'], result['loss']) == (3, 2, 33.333)

    result = run_module('ping', dict(base, max_loss=33))
    assert_failed(result, '1 of 3 echo requests lost', '33.333% loss', 'max_loss is 33%')
    assert (result['received'], result['loss']) == (2, 33.333)


def test_max_loss_100_never_fails_and_equal_loss_passes(pair):
    a, _b = pair
    result = run_module('ping', {'dest': '10.1.0.77', 'netns': a, 'count': 1, 'timeout': 0.3, 'max_loss': 100})
    assert not result.get('failed') and result['received'] == 0 and result['loss'] == 100
    result = run_module('ping', {'dest': '10.1.0.77', 'netns': a, 'count': 1, 'timeout': 0.3, 'max_loss': 99.9})
    assert_failed(result, '100% loss')


def test_dont_fragment_over_a_smaller_mtu_path_ipv4(make_netns):
    a, _r, _b = chain(make_netns, right_mtu=1280)
    assert links(_b)['br']['mtu'] == 1280
    base = {'dest': '10.2.0.2', 'netns': a, 'count': 3, 'interval': 0.1, 'timeout': 0.5, 'size': 1400}

    # Without DF the router fragments and every echo comes back.
    result = run_module('ping', base)
    assert not result.get('failed') and result['received'] == 3, result

    # With DF: the router answers "fragmentation needed", then the kernel
    # knows the path MTU and refuses to send ("message too long").
    result = run_module('ping', dict(base, dont_fragment=True))
    assert_failed(result, '3 of 3 echo requests lost', '100% loss')
    assert result['received'] == 0 and result['transmitted'] == 3
    text = ' '.join(result['errors'])
    assert 'next-hop MTU 1280' in text or 'path MTU 1280' in text, result['errors']
    assert 'message too long' in result['msg'] or 'Fragmentation needed' in result['msg']

    # Payload that fits the path (1280 - 20 - 8) passes with DF.
    result = run_module('ping', dict(base, size=1252, dont_fragment=True))
    assert not result.get('failed') and result['received'] == 3, result


def test_dont_fragment_over_a_smaller_mtu_path_ipv6(make_netns):
    a, _r, _b = chain(make_netns, right_mtu=1280)
    base = {'dest': 'fd02::2', 'netns': a, 'count': 3, 'interval': 0.1, 'timeout': 0.5, 'size': 1400, 'dont_fragment': True}
    result = run_module('ping', base)
    assert_failed(result, '100% loss')
    text = ' '.join(result['errors'])
    assert 'Packet too big (MTU 1280)' in text or 'path MTU 1280' in text, result['errors']
    result = run_module('ping', dict(base, size=1280 - 40 - 8))
    assert not result.get('failed') and result['received'] == 3, result


def test_dont_fragment_above_the_local_mtu_is_a_local_error(pair):
    a, _b = pair
    result = run_module('ping', {'dest': '10.1.0.2', 'netns': a, 'count': 1, 'size': 2000, 'dont_fragment': True, 'timeout': 0.3})
    assert_failed(result, 'message too long', 'path MTU 1500')
    assert result['errors'] == ['icmp_seq=1: local error: message too long (2000 bytes of payload and dont_fragment is set, path MTU 1500)']
    # Without DF the kernel fragments and the neighbour reassembles.
    result = run_module('ping', {'dest': '10.1.0.2', 'netns': a, 'count': 1, 'size': 2000})
    assert not result.get('failed') and result['received'] == 1, result


@pytest.mark.parametrize('params, words', [
    ({'dest': '999.1.1.1'}, ["dest: '999.1.1.1' is not a valid IPv4 or IPv6 address"]),
    ({'dest': 'fd01::zz'}, ['not a valid IPv4 or IPv6 address']),
    ({'dest': 'fe80::1%nosuchdev'}, ["interface 'nosuchdev' does not exist in namespace"]),
    ({'dest': 'fd01::2%ab'}, ["'fd01::2' is not an IPv6 link-local address"]),
    ({'dest': ''}, ['dest:']),
    ({'dest': '10.1.0.2', 'count': 0}, ['count: must be between 1 and 65535']),
    ({'dest': '10.1.0.2', 'timeout': 0}, ['timeout: must be more than 0']),
    ({'dest': '10.1.0.2', 'interval': -1}, ['interval:']),
    ({'dest': '10.1.0.2', 'size': -1}, ['size:']),
    ({'dest': '10.1.0.2', 'size': 65520}, ['size: at most 65507 bytes fit in one IPv4 echo request']),
    ({'dest': '10.1.0.2', 'max_loss': 101}, ['max_loss: must be a percentage']),
])
def test_bad_input_is_refused_readably(pair, params, words):
    a, b = pair
    before = snapshot(a, b)
    result = run_module('ping', dict(params, netns=a))
    assert_failed(result, *words)
    assert result['changed'] is False
    assert snapshot(a, b) == before


def test_missing_namespace_is_refused_readably(netns_name):
    result = run_module('ping', {'dest': '10.1.0.2', 'netns': netns_name})
    assert_failed(result, f"network namespace '{netns_name}' does not exist")
    assert netns_name not in ip('netns', 'list').stdout.split()


def test_bad_namespace_name_is_refused():
    result = run_module('ping', {'dest': '10.1.0.2', 'netns': '../evil'})
    assert_failed(result, 'not a valid network namespace name')


# -- probes: several at once, with expectations ---------------------------------

TUNNELS = {
    'ipip': (['type', 'ipip'], '10.9.0.1', '10.9.0.2'),
    'gre': (['type', 'gre', 'key', '7'], '10.9.0.1', '10.9.0.2'),
    'sit': (['type', 'sit'], 'fd09::1', 'fd09::2'),
}


def tunnel_end(ns: str, dev: str, kind: list[str], local: str, remote: str, mine: str, theirs: str) -> None:
    ip('link', 'add', dev, *kind, 'local', local, 'remote', remote, netns=ns)
    ip('link', 'set', 'dev', dev, 'up', netns=ns)
    ip('addr', 'add', mine, 'peer', theirs, 'dev', dev, *(['nodad'] if ':' in mine else []), netns=ns)


def tunnel_lab(make_netns, mode: str):
    """chain() plus a tunnel a (ta) <-> b (tb) over the router; returns (a, r, b, inner a, inner b)."""
    a, r, b = chain(make_netns)
    kind, inner_a, inner_b = TUNNELS[mode]
    tunnel_end(a, 'ta', kind, '10.1.0.1', '10.2.0.2', inner_a, inner_b)
    tunnel_end(b, 'tb', kind, '10.2.0.2', '10.1.0.1', inner_b, inner_a)
    return a, r, b, inner_a, inner_b


def fast(**probe) -> dict:
    return dict({'count': 2, 'interval': 0.05, 'timeout': 1}, **probe)


@pytest.mark.tunnel
def test_expect_fail_passes_on_a_broken_path_and_fails_on_a_working_one(make_netns):
    a, _r, b, _inner_a, inner_b = tunnel_lab(make_netns, 'gre')
    probes = [fast(label='through gre', netns=a, dest=inner_b, ttl=64),
              fast(label='must not pass', netns=a, dest=inner_b, expect='fail', timeout=0.5)]
    result = run_module('ping', {'probes': probes})
    assert_failed(result, '1 of 2 probes missed their expectation: must not pass: expected no reply, but 2 of 2 echo requests were answered')
    assert 'through gre:' not in result['msg']
    assert [p['problem'] is None for p in result['probes']] == [True, False]

    # The other end's key changes: nothing passes any more, as expected.
    ip('link', 'del', 'tb', netns=b)
    tunnel_end(b, 'tb', ['type', 'gre', 'key', '8'], '10.2.0.2', '10.1.0.1', inner_b, '10.9.0.1')
    result = run_module('ping', {'probes': probes[1:]})
    assert not result.get('failed'), result.get('msg')
    [outcome] = result['probes']
    assert (outcome['label'], outcome['expect'], outcome['transmitted'], outcome['received']) == ('must not pass', 'fail', 2, 0)
    assert result['lines'] == ['must not pass: no reply to 2 echo requests, as expected']


@pytest.mark.tunnel
@pytest.mark.parametrize('mode', ['ipip', 'sit'])
def test_ttl_mismatch_fails_naming_the_probe(make_netns, mode):
    a, _r, b, inner_a, inner_b = tunnel_lab(make_netns, mode)
    probes = [fast(label='a to b', netns=a, dest=inner_b, ttl=64),
              fast(label='b to a, wrong ttl', netns=b, dest=inner_a, ttl=63),
              fast(label='routed', netns=a, dest='10.2.0.2', ttl=63)]
    result = run_module('ping', {'probes': probes})
    assert_failed(result, '1 of 3 probes missed their expectation: b to a, wrong ttl: reply TTL 64, expected 63')
    assert [(p['label'], p['ttl'], p['received'], p['problem']) for p in result['probes']] == [
        ('a to b', 64, 2, None), ('b to a, wrong ttl', 64, 2, 'reply TTL 64, expected 63'), ('routed', 63, 2, None)]
    assert result['lines'] == ['a to b: 2/2 replies, ttl 64 as expected', 'b to a, wrong ttl: FAILED: reply TTL 64, expected 63',
                               'routed: 2/2 replies, ttl 63 as expected']


@pytest.mark.tunnel
def test_dont_fragment_over_the_tunnel_mtu_fails_with_the_kernels_reason(make_netns):
    a, _r, _b, _inner_a, inner_b = tunnel_lab(make_netns, 'ipip')
    assert links(a)['ta']['mtu'] == 1480  # 1500 minus the outer IPv4 header
    fits = 1480 - 20 - 8
    probes = [fast(label='too big', netns=a, dest=inner_b, size=fits + 1, dont_fragment=True),
              fast(label='fits', netns=a, dest=inner_b, size=fits, dont_fragment=True, ttl=64)]
    result = run_module('ping', {'probes': probes})
    assert_failed(result, '1 of 2 probes missed their expectation: too big: 2 of 2 echo requests lost',
                  f'local error: message too long ({fits + 1} bytes of payload and dont_fragment is set, path MTU 1480)')
    assert 'fits:' not in result['msg']
    assert result['probes'][1]['received'] == 2 and result['probes'][1]['problem'] is None


def test_probes_inherit_the_top_level_options(pair):
    a, _b = pair
    result = run_module('ping', {'probes': [{'dest': '10.1.0.2'}, {'dest': 'fd01::2', 'count': 1}], 'netns': a, 'count': 2, 'interval': 0.05})
    assert not result.get('failed'), result.get('msg')
    assert [(p['label'], p['netns'], p['family'], p['transmitted'], p['received']) for p in result['probes']] == [
        (f'{a} -> 10.1.0.2', a, 'ipv4', 2, 2), (f'{a} -> fd01::2', a, 'ipv6', 1, 1)]
    assert result['packets'] == []


@pytest.mark.parametrize('params, words', [
    ({'probes': [{'dest': '10.1.0.2'}, {'dest': '10.1.0.2', 'count': 0, 'label': 'second'}]},
     ['probes[1] (second): count: must be between 1 and 65535']),
    ({'probes': [{'dest': '10.1.0.2', 'label': 'x'}, {'dest': '10.1.0.3', 'label': 'x'}]}, ["label; 'x' is used more than once"]),
    ({'probes': [{'dest': '10.1.0.2', 'ttl': 64, 'expect': 'fail'}]}, ['ttl: a probe that expects to fail gets no reply']),
    ({'probes': [{'dest': '10.1.0.2', 'ttl': 256}]}, ['ttl: must be between 1 and 255']),
    ({'probes': [{'dest': '999.1.1.1', 'label': 'bad'}]}, ["probes[0] (bad): dest: '999.1.1.1' is not a valid IPv4 or IPv6 address"]),
    ({'probes': [{'dest': '10.1.0.2'}], 'dest': '10.1.0.2'}, ['mutually exclusive', 'dest', 'probes']),
    ({'count': 1}, ['one of the following is required: dest, probes']),
])
def test_bad_probes_are_refused_readably(pair, params, words):
    a, b = pair
    before = snapshot(a, b)
    result = run_module('ping', dict(params, netns=a))
    assert_failed(result, *words)
    assert snapshot(a, b) == before


def test_a_missing_namespace_names_the_probe(pair, netns_name):
    a, _b = pair
    result = run_module('ping', {'probes': [{'dest': '10.1.0.2', 'netns': a}, {'dest': '10.1.0.2', 'netns': netns_name, 'label': 'nowhere'}]})
    assert_failed(result, f"probes[1] (nowhere): network namespace '{netns_name}' does not exist")
