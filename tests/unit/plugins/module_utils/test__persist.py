"""linuxnet.tunnels.persist without a kernel.

The files of both backends for every mode, the refusals, and an all-or-nothing
apply (on a scratch directory).
"""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils import _persist
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._persist import HEADER, MARK, PersistResource, declare, render


def files(backend: str, tunnels: list, addresses: list = (), routes: list = ()) -> dict:
    return render(backend, declare({'tunnels': list(tunnels), 'addresses': list(addresses), 'routes': list(routes)}))


def body(text: str) -> str:
    """The file without its header, which every file has."""
    assert text.startswith(HEADER + '\n') and text.startswith(MARK)
    return text[len(HEADER) + 1:]


def refused(backend: str, tunnels: list, addresses: list = (), routes: list = ()) -> str:
    with pytest.raises(ResourceError) as caught:
        files(backend, tunnels, addresses, routes)
    return str(caught.value)


ENDS = {'local': '192.0.2.1', 'remote': '192.0.2.2'}

# mode -> (tunnel options, [Tunnel] lines after Independent/Local/Remote, NetworkManager mode and [ip-tunnel] lines)
MODES = {
    'ipip': ({'ttl': '64', 'tos': '0x10'}, 'TTL=64\nTOS=16\nDiscoverPathMTU=yes\n',
             'mode=1\nlocal=192.0.2.1\nremote=192.0.2.2\nttl=64\ntos=16\npath-mtu-discovery=true\n'),
    'gre': ({'key': '0.0.0.42', 'ttl': 'inherit', 'tos': 'inherit', 'pmtudisc': False},
            'TTL=0\nTOS=1\nDiscoverPathMTU=no\nKey=42\n',
            'mode=2\nlocal=192.0.2.1\nremote=192.0.2.2\nttl=0\ntos=1\npath-mtu-discovery=false\ninput-key=42\noutput-key=42\n'),
    'sit': ({'mtu': 1400}, 'DiscoverPathMTU=yes\n',
            'mode=3\nlocal=192.0.2.1\nremote=192.0.2.2\npath-mtu-discovery=true\nmtu=1400\n'),
    'vti': ({'ikey': '7', 'okey': '8'}, 'InputKey=7\nOutputKey=8\n',
            'mode=5\nlocal=192.0.2.1\nremote=192.0.2.2\ninput-key=7\noutput-key=8\n'),
}


@pytest.mark.parametrize('mode', sorted(MODES))
def test_networkd_netdev_every_mode(mode):
    options, tunnel_lines, _nm = MODES[mode]
    out = files('networkd', [dict(ENDS, name='t0', mode=mode, **options)])
    mtu = f"MTUBytes={options['mtu']}\n" if 'mtu' in options else ''
    assert body(out['10-linuxnet-t0.netdev']) == (
        f'[NetDev]\nName=t0\nKind={mode}\n{mtu}\n'
        f'[Tunnel]\nIndependent=yes\nLocal=192.0.2.1\nRemote=192.0.2.2\n{tunnel_lines}'
    )


def test_networkd_isatap_is_sit_with_isatap():
    out = files('networkd', [{'name': 'isa0', 'mode': 'isatap', 'local': '192.0.2.1', 'remote': 'any'}])
    assert body(out['10-linuxnet-isa0.netdev']) == (
        '[NetDev]\nName=isa0\nKind=sit\n\n'
        '[Tunnel]\nIndependent=yes\nLocal=192.0.2.1\nRemote=any\nDiscoverPathMTU=yes\nISATAP=yes\n'
    )


def test_networkd_gre_keys_and_seq():
    out = files('networkd', [dict(ENDS, name='g0', mode='gre', ikey='1', okey='2', seq=True)])
    assert 'InputKey=1\nOutputKey=2\nSerializeTunneledPackets=yes\n' in out['10-linuxnet-g0.netdev']


def test_networkd_network_addresses_routes():
    out = files(
        'networkd',
        [dict(ENDS, name='t0', mode='sit', up=False)],
        [{'dev': 't0', 'address': '10.0.0.1', 'peer': '10.0.0.2'}, {'dev': 't0', 'address': 'fd00::1/64'},
         {'dev': 't0', 'address': '10.9.9.9/24', 'state': 'absent'}],
        [{'dest': '198.51.100.0/24', 'dev': 't0'}, {'dest': 'default', 'gateway': 'fd00::2', 'dev': 't0', 'metric': 5, 'table': 100},
         {'dest': '10.8.0.0/16', 'gateway': '10.0.0.2', 'dev': 't0'}],
    )
    assert body(out['10-linuxnet-t0.network']) == (
        '[Match]\nName=t0\n\n[Network]\nConfigureWithoutCarrier=yes\n\n[Link]\nActivationPolicy=down\n\n'
        '[Address]\nAddress=10.0.0.1/32\nPeer=10.0.0.2/32\n\n'
        '[Address]\nAddress=fd00::1/64\nDuplicateAddressDetection=none\n\n'
        '[Route]\nDestination=198.51.100.0/24\nScope=link\n\n'
        '[Route]\nDestination=::/0\nGateway=fd00::2\nMetric=5\nTable=100\n\n'
        '[Route]\nDestination=10.8.0.0/16\nGateway=10.0.0.2\n'
    )


@pytest.mark.parametrize('mode', sorted(MODES))
def test_networkmanager_keyfile_every_mode(mode):
    options, _nd, tunnel_lines = MODES[mode]
    out = files('networkmanager', [dict(ENDS, name='t0', mode=mode, **options)])
    text = body(out['linuxnet-t0.nmconnection'])
    assert text.startswith('[connection]\nid=t0\nuuid=')
    assert text.endswith(
        '\ntype=ip-tunnel\ninterface-name=t0\n\n'
        f'[ip-tunnel]\n{tunnel_lines}\n'
        '[ipv4]\nmethod=disabled\n\n[ipv6]\nmethod=disabled\n'
    )


def test_networkmanager_uuid_is_stable_per_name():
    def uuid_line(name):
        text = files('networkmanager', [dict(ENDS, name=name)])[f'linuxnet-{name}.nmconnection']
        return next(line for line in text.splitlines() if line.startswith('uuid='))
    assert uuid_line('a') == uuid_line('a') != uuid_line('b')


def test_networkmanager_addresses_routes():
    out = files(
        'networkmanager',
        [dict(ENDS, name='t0', mode='sit', dev='eth0')],
        [{'dev': 't0', 'address': '10.0.0.1/30'}, {'dev': 't0', 'address': 'fd00::1/64'}],
        [{'dest': '198.51.100.0/24', 'dev': 't0'}, {'dest': '10.8.0.0/16', 'gateway': '10.0.0.2', 'dev': 't0', 'metric': 7, 'table': 100},
         {'dest': 'fd01::/64', 'dev': 't0'}],
    )
    text = out['linuxnet-t0.nmconnection']
    assert 'parent=eth0\n' in text
    assert text.endswith(
        '[ipv4]\nmethod=manual\naddress1=10.0.0.1/30\nroute1=198.51.100.0/24,0.0.0.0,0\n'
        'route2=10.8.0.0/16,10.0.0.2,7\nroute2_options=table=100\n\n'
        '[ipv6]\nmethod=manual\naddress1=fd00::1/64\nroute1=fd01::/64,::,1024\n'
    )


def test_absent_tunnels_name_their_files():
    assert files('networkd', [{'name': 't0', 'state': 'absent'}]) == {'10-linuxnet-t0.netdev': None, '10-linuxnet-t0.network': None}
    assert files('networkmanager', [{'name': 't0', 'state': 'absent'}]) == {'linuxnet-t0.nmconnection': None}


@pytest.mark.parametrize('backend, tunnel, words', [
    ('networkmanager', {'mode': 'isatap', 'remote': '192.0.2.2'}, ['isatap', 'cannot create']),
    ('networkmanager', {'remote': 'any'}, ['remote', 'without a remote']),
    ('networkmanager', {'remote': None}, ['remote']),
    ('networkmanager', {'mode': 'gre', 'seq': True}, ['seq', 'sequence']),
    ('networkmanager', {'up': False}, ['up']),
    ('networkd', {'dev': 'eth0'}, ['dev', 'Tunnel=']),
    ('networkd', {'mode': 'gre', 'key': '0'}, ['key', '0']),
    ('networkd', {'name': 'tun*'}, ['name', 'glob']),
    ('networkd', {'mode': 'gre', 'csum': True}, ['csum', 'checksum']),
    ('networkmanager', {'mode': 'gre', 'csum': True}, ['csum', 'checksum']),
    ('networkd', {'encap': 'fou', 'encap_dport': 5555}, ['encap']),
    ('networkd', {'encap_sport': 1}, ['encap_sport']),
])
def test_backend_refusals_name_the_option(backend, tunnel, words):
    options = {k: v for k, v in {**ENDS, 'name': 't0', **tunnel}.items() if v is not None}
    msg = refused(backend, [options])
    for word in words:
        assert word in msg, msg


def test_networkmanager_refuses_peer_and_routes_without_address():
    msg = refused('networkmanager', [dict(ENDS, name='t0')], [{'dev': 't0', 'address': '10.0.0.1', 'peer': '10.0.0.2'}])
    assert 'peer' in msg and 'point-to-point' in msg
    msg = refused('networkmanager', [dict(ENDS, name='t0')], [{'dev': 't0', 'address': '10.0.0.1/30'}],
                  [{'dest': 'fd01::/64', 'dev': 't0'}])
    assert 'IPv6 routes' in msg


@pytest.mark.parametrize('declaration, words', [
    ({'tunnels': [{'name': '../x'}]}, ['tunnels[0]', "'/'"]),
    ({'tunnels': [{'name': 't0', 'netns': 'ns1'}]}, ['tunnels[0]', 'netns']),
    ({'tunnels': [{'name': 't0', 'bogus': 1}]}, ['tunnels[0]', 'bogus']),
    ({'tunnels': [{'name': 't0', 'mode': 'ipip', 'key': '1'}]}, ['tunnels[0]', 'key']),
    ({'tunnels': [{'name': 't0'}, {'name': 't0'}]}, ['tunnels[1]', 'twice']),
    ({'tunnels': [{'name': 't0'}], 'addresses': [{'dev': 'eth0', 'address': '10.0.0.1/24'}]}, ['addresses[0]', 'eth0']),
    ({'tunnels': [{'name': 't0'}], 'routes': [{'dest': '10.0.0.0/8', 'gateway': '10.1.1.1'}]}, ['routes[0]', 'dev']),
    ({'tunnels': ['t0']}, ['tunnels[0]', 'dictionary']),
])
def test_bad_items_are_named(declaration, words):
    with pytest.raises(ResourceError) as caught:
        declare(declaration)
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_a_failed_write_puts_back_what_the_run_wrote(tmp_path, monkeypatch):
    """All or nothing: when the second file cannot be written, the first one is as it was before the run."""
    params = {'backend': 'networkd', 'dir': str(tmp_path), 'state': 'present', 'reload': False, 'addresses': [], 'routes': [],
              'tunnels': [dict(ENDS, name='t0')]}
    netdev, network = tmp_path / '10-linuxnet-t0.netdev', tmp_path / '10-linuxnet-t0.network'
    netdev.write_text(f'{MARK}: an older version\n')
    os.chmod(netdev, 0o640)
    resource = PersistResource(None, params)
    resource.validate()
    change = resource.plan()
    assert change.attributes == [str(netdev), str(network)]
    real_write = _persist.write_atomically

    def failing_write(path, content, mode, owner=(0, 0)):
        if path == str(network):
            raise ResourceError(f'could not write {path}: No space left on device')
        real_write(path, content, mode, owner)

    monkeypatch.setattr(_persist, 'write_atomically', failing_write)
    with pytest.raises(ResourceError, match='No space left'):
        resource.apply(change)
    assert netdev.read_text() == f'{MARK}: an older version\n' and stat.S_IMODE(os.stat(netdev).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ['10-linuxnet-t0.netdev']  # no temporary file left either
