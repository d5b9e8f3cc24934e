"""Address message parsing and address identity, without a kernel."""

from __future__ import annotations

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils._address import AddressResource, address_from_msg, parse_ip
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Netlink

from netlink_fixture import link_names, recorded


def parsed() -> dict:
    names = link_names()
    return {(names[a['index']], a['local']): a for a in map(address_from_msg, recorded('addresses')) if a is not None}


def test_plain_address_from_recorded_message():
    found = parsed()[('va', '10.1.0.1')]
    assert (found['prefixlen'], found['peer'], found['family'], found['permanent']) == (24, None, 'ipv4', True)
    assert found['raw_local'] == '10.1.0.1'


def test_point_to_point_address_keeps_its_peer():
    found = parsed()[('vb', '10.9.0.1')]
    assert (found['prefixlen'], found['peer']) == (32, '10.9.0.2')
    # A delete request must repeat exactly these attributes.
    assert (found['raw_local'], found['raw_address']) == ('10.9.0.1', '10.9.0.2')


def test_loopback_address_is_parsed_too():
    assert parsed()[('lo', '127.0.0.1')]['prefixlen'] == 8


@pytest.mark.parametrize('text, address, prefix', [
    ('10.0.0.1/24', '10.0.0.1', 24),
    ('10.0.0.1', '10.0.0.1', None),
    (' fd00::1/64 ', 'fd00::1', 64),
])
def test_parse_ip(text, address, prefix):
    ip, length = parse_ip(text, 'address')
    assert (ip.compressed, length) == (address, prefix)


@pytest.mark.parametrize('text', ['', 'fe80::1%eth0', '10.0.0.300/24', 'host'])
def test_parse_ip_refuses(text):
    with pytest.raises(ResourceError, match='^address: '):
        parse_ip(text, 'address')


def address(**options) -> AddressResource:
    params = {'dev': 'v1', 'netns': 'ns1', 'peer': None, 'state': 'present', **options}
    resource = AddressResource(Netlink(), params)
    resource.validate()
    return resource


def test_identity_is_the_local_address_on_the_link():
    # The prefix and the peer are attributes: another prefix is the same address, replaced.
    assert address(address='10.0.0.1/24').key() == address(address='10.0.0.1/16').key() == ('ns1', 'v1', '10.0.0.1')
    assert address(address='10.0.0.1/24').key() != address(address='10.0.0.1/24', dev='v2').key()
    assert address(address='fd00:0::1/64').key() == ('ns1', 'v1', 'fd00::1')


def test_prefix_follows_iproute2():
    assert address(address='10.0.0.1', peer='10.0.0.2/30').prefixlen == 30
    assert address(address='10.0.0.1').prefixlen == 32
    with pytest.raises(ResourceError, match='different prefix lengths'):
        address(address='10.0.0.1/24', peer='10.0.0.2/30')


def test_wanted_is_the_read_shape():
    assert address(address='10.0.0.1/24').wanted() == {
        'dev': 'v1', 'netns': 'ns1', 'address': '10.0.0.1/24', 'local': '10.0.0.1', 'prefixlen': 24, 'peer': None, 'family': 'ipv4'}
