# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linuxnet.tunnels.persist on scratch directories: files, modes, diffs, refusals.

No kernel is touched (the module writes files only), so these run natively.
The NetworkManager keyfiles are read back by NetworkManager's own parser
(`nmcli --offline`, no daemon); the systemd-networkd files are proven by
test_persist_reboot.py, which runs the daemon on them in a fresh kernel.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from harness import assert_failed, assert_rhythm, nm_keyfile, rhythm, run_module

MARK = '# Managed by linuxnet.tunnels.persist'

GRE = {'name': 'gre-b', 'mode': 'gre', 'local': '198.51.100.10', 'remote': '203.0.113.20', 'key': '0.0.0.42',
       'ttl': '64', 'tos': '0x10', 'mtu': 1400}
SIT = {'name': 'sit-b', 'mode': 'sit', 'local': '198.51.100.10', 'remote': '203.0.113.20', 'ttl': 'inherit',
       'pmtudisc': False, 'dev': 'eth0'}
VTI = {'name': 'vti-b', 'mode': 'vti', 'local': '198.51.100.10', 'remote': '203.0.113.21', 'ikey': '7', 'okey': '8'}
NM_ADDRESSES = [{'dev': 'gre-b', 'address': '10.255.0.1/30'}, {'dev': 'sit-b', 'address': '10.255.1.1/30'},
                {'dev': 'sit-b', 'address': 'fd00:255::1/64'}]
NM_ROUTES = [{'dest': '192.168.20.0/24', 'dev': 'gre-b'},
             {'dest': '192.168.21.0/24', 'gateway': '10.255.0.2', 'dev': 'gre-b', 'metric': 7, 'table': 100},
             {'dest': 'fd00:20::/64', 'gateway': 'fd00:255::2', 'dev': 'sit-b'}]


def networkd(path, **extra) -> dict:
    return dict({'backend': 'networkd', 'dir': str(path),
                 'tunnels': [dict(GRE), {'name': 'ipip-b', 'local': '198.51.100.10', 'remote': '203.0.113.20'}],
                 'addresses': [{'dev': 'gre-b', 'address': '10.255.0.1', 'peer': '10.255.0.2'}],
                 'routes': [{'dest': '192.168.20.0/24', 'dev': 'gre-b'}]}, **extra)


def networkmanager(path, **extra) -> dict:
    return dict({'backend': 'networkmanager', 'dir': str(path), 'tunnels': [dict(GRE), dict(SIT), dict(VTI)],
                 'addresses': NM_ADDRESSES, 'routes': NM_ROUTES}, **extra)


def listing(path) -> dict:
    """name -> (mode, uid, gid, content) of every file in path, hidden ones included."""
    out = {}
    for name in sorted(os.listdir(path)):
        info = os.lstat(os.path.join(path, name))
        with open(os.path.join(path, name), encoding='utf-8') as handle:
            out[name] = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, handle.read())
    return out


def test_networkd_files_rhythm_and_diff(tmp_path):
    results = rhythm('persist', networkd(tmp_path))
    assert_rhythm(results)
    files = listing(tmp_path)
    assert sorted(files) == ['10-linuxnet-gre-b.netdev', '10-linuxnet-gre-b.network',
                             '10-linuxnet-ipip-b.netdev', '10-linuxnet-ipip-b.network']
    for mode, uid, gid, content in files.values():
        assert (mode, uid, gid) == (0o644, 0, 0) and content.startswith(MARK)
    netdev = files['10-linuxnet-gre-b.netdev'][3]
    assert '[NetDev]\nName=gre-b\nKind=gre\nMTUBytes=1400\n' in netdev
    assert ('[Tunnel]\nIndependent=yes\nLocal=198.51.100.10\nRemote=203.0.113.20\nTTL=64\nTOS=16\n'
            'DiscoverPathMTU=yes\nKey=42\n') in netdev
    network = files['10-linuxnet-gre-b.network'][3]
    assert ('[Match]\nName=gre-b\n\n[Network]\nConfigureWithoutCarrier=yes\n\n'
            '[Address]\nAddress=10.255.0.1/32\nPeer=10.255.0.2/32\n\n'
            '[Route]\nDestination=192.168.20.0/24\nScope=link\n') in network
    # The check run's diff is the real run's files, one before/after text each.
    predicted = {d['after_header']: d for d in results[0]['diff']}
    assert set(predicted) == {str(tmp_path / name) for name in files}
    for name, (_mode, _uid, _gid, content) in files.items():
        diff = predicted[str(tmp_path / name)]
        assert (diff['before_header'], diff['before'], diff['after']) == ('/dev/null', '', content)
    assert [f['action'] for f in results[0]['files']] == ['create'] * 4
    assert [f['action'] for f in results[3]['files']] == ['none'] * 4 and results[3]['diff'] == []


def test_networkd_update_shows_the_changed_lines(tmp_path):
    assert not run_module('persist', networkd(tmp_path)).get('failed')
    before = listing(tmp_path)
    changed = networkd(tmp_path)
    changed['tunnels'][0] = dict(GRE, ttl='32')
    results = rhythm('persist', changed)
    assert_rhythm(results)
    diff = results[0]['diff']
    assert len(diff) == 1 and diff[0]['before_header'] == diff[0]['after_header'] == str(tmp_path / '10-linuxnet-gre-b.netdev')
    assert 'TTL=64\n' in diff[0]['before'] and 'TTL=32\n' in diff[0]['after']
    assert diff[0]['before'].replace('TTL=64', 'TTL=32') == diff[0]['after']
    after = listing(tmp_path)
    assert after['10-linuxnet-gre-b.netdev'][3] == diff[0]['after']
    assert {k: v for k, v in after.items() if k != '10-linuxnet-gre-b.netdev'} == \
        {k: v for k, v in before.items() if k != '10-linuxnet-gre-b.netdev'}
    assert results[1]['action'] == 'update'


def test_mode_and_owner_are_repaired(tmp_path):
    assert not run_module('persist', networkd(tmp_path)).get('failed')
    path = tmp_path / '10-linuxnet-ipip-b.network'
    os.chmod(path, 0o666)
    os.chown(path, 1, 1)
    results = rhythm('persist', networkd(tmp_path))
    assert_rhythm(results)
    assert listing(tmp_path)['10-linuxnet-ipip-b.network'][:3] == (0o644, 0, 0)


def test_absent_removes_only_its_own_files(tmp_path):
    assert not run_module('persist', networkd(tmp_path)).get('failed')
    (tmp_path / '20-eth0.network').write_text('[Match]\nName=eth0\n')
    results = rhythm('persist', {'backend': 'networkd', 'dir': str(tmp_path), 'state': 'absent',
                                 'tunnels': [{'name': 'gre-b'}]})
    assert_rhythm(results)
    assert results[1]['action'] == 'delete'
    assert sorted(os.listdir(tmp_path)) == ['10-linuxnet-ipip-b.netdev', '10-linuxnet-ipip-b.network', '20-eth0.network']
    assert results[0]['diff'][0]['after_header'] == '/dev/null' and results[0]['diff'][0]['after'] == ''
    # A tunnel item with state=absent removes that tunnel's files while the others stay.
    params = networkd(tmp_path)
    params['tunnels'][1]['state'] = 'absent'
    params['tunnels'][0] = dict(GRE)
    assert_rhythm(rhythm('persist', params))
    assert sorted(os.listdir(tmp_path)) == ['10-linuxnet-gre-b.netdev', '10-linuxnet-gre-b.network', '20-eth0.network']


@pytest.mark.parametrize('state', ['present', 'absent'])
def test_foreign_file_in_the_way_is_refused(tmp_path, state):
    foreign = tmp_path / '10-linuxnet-gre-b.network'
    foreign.write_text('[Match]\nName=gre-b\n')
    before = listing(tmp_path)
    params = networkd(tmp_path, state=state)
    for check in (True, False):
        assert_failed(run_module('persist', params, check=check), str(foreign), 'did not write')
    assert listing(tmp_path) == before


def test_a_file_without_the_mark_is_foreign(tmp_path):
    assert not run_module('persist', networkd(tmp_path)).get('failed')
    path = tmp_path / '10-linuxnet-gre-b.netdev'
    path.write_text(''.join(path.read_text().splitlines(keepends=True)[2:]))  # the user took it over
    before = listing(tmp_path)
    assert_failed(run_module('persist', networkd(tmp_path, tunnels=[dict(GRE, ttl='1')])), str(path))
    assert listing(tmp_path) == before


def test_missing_dir(tmp_path):
    missing = tmp_path / 'nope'
    assert_failed(run_module('persist', networkd(missing)), str(missing), 'does not exist')
    assert not missing.exists()
    result = run_module('persist', networkd(missing, state='absent'))
    assert not result.get('failed') and not result['changed']


@pytest.fixture
def read_only_dir(tmp_path):
    path = tmp_path / 'ro'
    path.mkdir()
    subprocess.run(['mount', '--bind', str(path), str(path)], check=True)
    try:
        subprocess.run(['mount', '-o', 'remount,ro,bind', str(path)], check=True)
        yield path
    finally:
        subprocess.run(['umount', str(path)], check=True)


def test_read_only_dir(read_only_dir):
    for check in (True, False):
        assert_failed(run_module('persist', networkd(read_only_dir), check=check), str(read_only_dir), 'not writable')
    assert os.listdir(read_only_dir) == []


@pytest.mark.parametrize('backend, tunnels, addresses, words', [
    ('networkmanager', [{'name': 'isa-b', 'mode': 'isatap', 'local': '198.51.100.10', 'remote': '203.0.113.20'}], [],
     ['isatap', 'NetworkManager cannot create']),
    ('networkd', [{'name': '../../etc/x', 'remote': '203.0.113.20'}], [], ['tunnels[0]', "'/'"]),
    ('networkd', [{'name': '..', 'remote': '203.0.113.20'}], [], ['tunnels[0]', "'..'"]),
    ('networkd', [dict(SIT)], [], ['dev', 'Tunnel=']),
    ('networkmanager', [dict(GRE)], [{'dev': 'gre-b', 'address': '10.255.0.1', 'peer': '10.255.0.2'}], ['peer', 'point-to-point']),
    ('networkd', [dict(GRE, netns='ns1')], [], ['netns']),
])
def test_bad_inputs_write_nothing(tmp_path, backend, tunnels, addresses, words):
    target = tmp_path / 'etc' / 'network'
    target.mkdir(parents=True)
    params = {'backend': backend, 'dir': str(target), 'tunnels': tunnels, 'addresses': addresses}
    for check in (True, False):
        assert_failed(run_module('persist', params, check=check), *words)
    assert os.listdir(target) == [] and os.listdir(tmp_path) == ['etc'] and os.listdir(tmp_path / 'etc') == ['network']


@pytest.mark.skipif(shutil.which('nmcli') is None, reason='nmcli is not installed (Debian package network-manager)')
def test_networkmanager_keyfiles_read_back_by_nmcli(tmp_path):
    results = rhythm('persist', networkmanager(tmp_path))
    assert_rhythm(results)
    files = listing(tmp_path)
    assert sorted(files) == ['linuxnet-gre-b.nmconnection', 'linuxnet-sit-b.nmconnection', 'linuxnet-vti-b.nmconnection']
    for mode, uid, gid, content in files.values():
        assert (mode, uid, gid) == (0o600, 0, 0) and content.startswith(MARK)

    gre = nm_keyfile(tmp_path / 'linuxnet-gre-b.nmconnection')
    assert dict(gre['connection'], uuid='') == {'id': 'gre-b', 'uuid': '', 'type': 'ip-tunnel', 'interface-name': 'gre-b'}
    assert dict(gre['ip-tunnel']) == {'mode': '2', 'local': '198.51.100.10', 'remote': '203.0.113.20', 'ttl': '64',
                                      'tos': '16', 'input-key': '42', 'output-key': '42', 'mtu': '1400'}
    assert dict(gre['ipv4']) == {'method': 'manual', 'address1': '10.255.0.1/30', 'route1': '192.168.20.0/24,0.0.0.0,0',
                                 'route2': '192.168.21.0/24,10.255.0.2,7', 'route2_options': 'table=100'}
    assert dict(gre['ipv6']) == {'method': 'disabled'}

    sit = nm_keyfile(tmp_path / 'linuxnet-sit-b.nmconnection')
    # ttl 0 (inherit) and path MTU discovery off; NetworkManager leaves ttl=0 out, its default.
    assert dict(sit['ip-tunnel']) == {'mode': '3', 'local': '198.51.100.10', 'remote': '203.0.113.20', 'parent': 'eth0',
                                      'path-mtu-discovery': 'false'}
    assert dict(sit['ipv4']) == {'method': 'manual', 'address1': '10.255.1.1/30'}
    assert dict(sit['ipv6']) == {'method': 'manual', 'address1': 'fd00:255::1/64', 'route1': 'fd00:20::/64,fd00:255::2,1024'}

    vti = nm_keyfile(tmp_path / 'linuxnet-vti-b.nmconnection')
    assert dict(vti['ip-tunnel']) == {'mode': '5', 'local': '198.51.100.10', 'remote': '203.0.113.21',
                                      'input-key': '7', 'output-key': '8'}
    assert dict(vti['ipv4']) == {'method': 'disabled'} and dict(vti['ipv6']) == {'method': 'disabled'}


def daemon_running(name: str) -> bool:
    return subprocess.run(['pgrep', '-x', name], capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize('backend, daemon, command', [('networkd', 'systemd-network', 'networkctl reload'),
                                                      ('networkmanager', 'NetworkManager', 'nmcli connection reload')])
def test_reload_without_a_running_daemon_warns(tmp_path, backend, daemon, command):
    if daemon_running(daemon):
        pytest.skip(f'{daemon} runs here: a reload would reach it')
    params = {'backend': backend, 'dir': str(tmp_path), 'reload': True,
              'tunnels': [{'name': 'ipip-b', 'local': '198.51.100.10', 'remote': '203.0.113.20'}]}
    result = run_module('persist', params)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] and result['reloaded'] is False
    assert any(command in str(w) and 'apply at its next start' in str(w) for w in result.get('warnings', [])), result
    again = run_module('persist', params)
    assert not again['changed'] and again['reloaded'] is False
