"""Pure logic of linuxnet.tunnels.tunnel: option parsing, validation, netlink requests."""

from __future__ import annotations

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel import TunnelResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel_params import (
    GRE_CSUM,
    GRE_KEY,
    GRE_SEQ,
    MODES,
    SIT_ISATAP,
    collides,
    default_parms,
    fit_to_mode,
    merge,
    netlink_spec,
    p2p_class,
    parse_key,
    parse_tos,
    parse_ttl,
    validate_params,
    view,
)
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator


def params(**options) -> dict:
    """Options as AnsibleModule hands them over (defaults filled in)."""
    spec = dict(TunnelResource.argument_spec, netns={'type': 'str'})
    result = ArgumentSpecValidator(spec, **TunnelResource.module_kwargs).validate(dict({'name': 't0'}, **options))
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


@pytest.mark.parametrize('text, value', [('inherit', 0), ('INHERIT', 0), ('1', 1), ('64', 64), (255, 255)])
def test_ttl(text, value):
    assert parse_ttl(text) == value


@pytest.mark.parametrize('text', ['0', '256', '-1', 'x', '0x10'])
def test_bad_ttl(text):
    with pytest.raises(ResourceError, match='^ttl: '):
        parse_ttl(text)


@pytest.mark.parametrize('text, value', [('inherit', 1), ('0', 0), ('16', 16), ('0x10', 16), ('0xFF', 255), (0, 0)])
def test_tos(text, value):
    assert parse_tos(text) == value


@pytest.mark.parametrize('text', ['256', '0x100', 'high', '-2'])
def test_bad_tos(text):
    with pytest.raises(ResourceError, match='^tos: '):
        parse_tos(text)


@pytest.mark.parametrize('text, value', [('10', 10), ('0.0.0.10', 10), ('1.0.0.0', 1 << 24), ('none', None), ('0', 0), ('4294967295', 2**32 - 1)])
def test_key(text, value):
    assert parse_key(text, 'key') == value


@pytest.mark.parametrize('text', ['4294967296', '-1', 'abc', '1.2.3'])
def test_bad_key(text):
    with pytest.raises(ResourceError, match='^ikey: '):
        parse_key(text, 'ikey')


@pytest.mark.parametrize('options, option', [
    ({'name': 'a' * 16}, 'name'),
    ({'name': 'gre0'}, 'name'),
    ({'name': 'ip_vti0', 'state': 'absent'}, 'name'),
    ({'key': '1'}, 'key'),
    ({'mode': 'isatap', 'ikey': '1'}, 'ikey'),
    ({'mode': 'sit', 'seq': True}, 'seq'),
    ({'mode': 'vti', 'csum': False}, 'csum'),
    ({'mode': 'vti', 'ttl': '3'}, 'ttl'),
    ({'mode': 'vti', 'tos': '0'}, 'tos'),
    ({'mode': 'vti', 'pmtudisc': False}, 'pmtudisc'),
    ({'mode': 'vti', 'encap': 'none'}, 'encap'),
    ({'mode': 'vti', 'encap_sport': 1}, 'encap_sport'),
    ({'ttl': '3', 'pmtudisc': False}, 'ttl'),
    ({'local': '::1'}, 'local'),
    ({'remote': 'fd00::1'}, 'remote'),
    ({'local': 'host.example'}, 'local'),
    ({'dev': 'x/y'}, 'dev'),
    ({'encap': 'none', 'encap_dport': 1}, 'encap_dport'),
    ({'encap': 'gue', 'encap_dport': 0}, 'encap_dport'),
    ({'encap': 'gue', 'encap_dport': 1, 'encap_sport': 65536}, 'encap_sport'),
    ({'mtu': 67}, 'mtu'),
])
def test_validation_names_the_option(options, option):
    with pytest.raises(ResourceError, match=f'^{option}: '):
        validate_params(params(**options))


@pytest.mark.parametrize('options', [
    {},
    {'state': 'absent', 'key': '1', 'ttl': 'bad'},  # absent ignores the rest
    {'mode': 'gre', 'key': '0.0.0.1', 'csum': True, 'seq': False, 'ttl': 'inherit', 'pmtudisc': False, 'tos': 'inherit'},
    {'mode': 'vti', 'ikey': '1', 'okey': 'none', 'local': 'any', 'remote': '10.0.0.2'},
    {'mode': 'sit', 'encap': 'fou', 'encap_dport': 5555},
    {'mode': 'isatap', 'local': '192.0.2.1', 'mtu': 1400},
])
def test_valid_options(options):
    validate_params(params(**options))


def test_key_and_ikey_are_mutually_exclusive_for_topology_items_too():
    spec = dict(TunnelResource.argument_spec, netns={'type': 'str'})
    result = ArgumentSpecValidator(spec, **TunnelResource.module_kwargs).validate({'name': 't', 'key': '1', 'ikey': '2'})
    assert result.error_messages


@pytest.mark.parametrize('mode', list(MODES))
def test_netlink_spec_uses_only_attributes_pyroute2_knows(mode):
    spec = netlink_spec(mode, merge(mode, default_parms(), params(mode=mode, local='10.0.0.1', remote='10.0.0.2', mtu=1400), 3))
    kind = MODES[mode].kind
    assert spec['kind'] == kind and spec['mtu'] == 1400
    prefix = MODES[mode].prefix + '_'
    assert spec[prefix + 'local'] == '10.0.0.1' and spec[prefix + 'remote'] == '10.0.0.2' and spec[prefix + 'link'] == 3
    assert all(key.startswith(prefix) for key in spec if key not in ('kind', 'mtu'))


def test_netlink_spec_is_complete_for_gre():
    parms = merge('gre', default_parms(), params(mode='gre', key='7', csum=True, ttl='9', tos='inherit'), None)
    spec = netlink_spec('gre', parms)
    assert spec['gre_iflags'] == spec['gre_oflags'] == GRE_KEY | GRE_CSUM
    assert spec['gre_ikey'] == spec['gre_okey'] == 7
    assert (spec['gre_ttl'], spec['gre_tos'], spec['gre_pmtudisc'], spec['gre_link']) == (9, 1, 1, 0)
    assert spec['gre_encap_type'] == 0 and 'mtu' not in spec  # no mtu given on a create: the kernel computes it


def test_sit_and_isatap_differ_by_the_flag():
    assert netlink_spec('isatap', default_parms())['sit_flags'] == SIT_ISATAP
    assert netlink_spec('sit', default_parms())['sit_flags'] == 0


def test_unknown_attribute_is_refused_not_dropped():
    from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel_params import check_spec_keys
    pytest.importorskip('pyroute2')
    with pytest.raises(ResourceError, match='vti_ttl'):
        check_spec_keys('vti', {'vti_local': '1.2.3.4', 'vti_ttl': 3})


def test_merge_keeps_what_is_not_given():
    current = dict(default_parms(), local='10.0.0.1', remote='10.0.0.2', link=4, ttl=64, tos=16,
                   iflags=GRE_KEY | GRE_SEQ, oflags=GRE_KEY, ikey=5, okey=5, mtu=1400, encap_flags=2)
    after = merge('gre', current, params(mode='gre', csum=True), None)
    assert after['iflags'] == GRE_KEY | GRE_SEQ | GRE_CSUM and after['oflags'] == GRE_KEY | GRE_CSUM
    assert {k: after[k] for k in ('local', 'remote', 'link', 'ttl', 'tos', 'ikey', 'mtu', 'encap_flags')} == \
        {'local': '10.0.0.1', 'remote': '10.0.0.2', 'link': 4, 'ttl': 64, 'tos': 16, 'ikey': 5, 'mtu': 1400, 'encap_flags': 2}
    assert merge('gre', current, params(mode='gre', key='none'), None)['iflags'] == GRE_SEQ


def test_view_normalises():
    parms = dict(default_parms(), local='10.0.0.1', iflags=GRE_KEY | GRE_CSUM, oflags=GRE_KEY, ikey=3, okey=4, tos=0x11, mtu=1476)
    got = view('g', 'gre', parms, 'eth0', 9)
    assert got['remote'] == 'any' and got['ttl'] == 'inherit' and got['tos'] == 'inherit/0x10'
    assert (got['key'], got['ikey'], got['okey']) == (None, 3, 4)
    assert got['csum'] is None and got['seq'] is False  # csum only inbound
    assert got['encap'] == 'none' and got['encap_sport'] is None
    vti = view('v', 'vti', dict(default_parms(), ikey=0, okey=0), None, 1)
    assert vti['ttl'] is None and vti['pmtudisc'] is None and vti['key'] is None and vti['encap'] is None


def test_fit_to_mode_drops_what_the_new_mode_lacks():
    gre = dict(default_parms(), ttl=64, iflags=GRE_KEY | GRE_CSUM, oflags=GRE_KEY, ikey=5, okey=5)
    vti = fit_to_mode('vti', gre)
    assert (vti['ttl'], vti['iflags'], vti['ikey']) == (0, 0, 5)
    back = fit_to_mode('gre', dict(vti, ikey=7, okey=0))
    assert back['iflags'] == GRE_KEY and back['oflags'] == 0
    assert fit_to_mode('ipip', gre)['ikey'] == 0


def test_collision_rules():
    a = dict(default_parms(), local='10.0.0.1', remote='10.0.0.2')
    assert collides('ipip', a, 'ipip', dict(a))
    assert not collides('ipip', a, 'gre', dict(a))
    assert collides('sit', a, 'isatap', dict(a))  # one kind in the kernel
    assert not collides('ipip', a, 'ipip', dict(a, link=3))
    keyed = dict(a, iflags=GRE_KEY, ikey=1)
    assert not collides('gre', keyed, 'gre', a) and not collides('gre', keyed, 'gre', dict(keyed, ikey=2))
    assert collides('gre', keyed, 'gre', dict(keyed, okey=9))
    assert collides('vti', dict(a, ikey=1), 'vti', dict(a, ikey=2))  # vti keys do not tell tunnels apart


def test_p2p_class():
    assert [p2p_class(x) for x in ('0.0.0.0', '10.0.0.1', '239.1.1.1')] == ['any', 'unicast', 'multicast']
