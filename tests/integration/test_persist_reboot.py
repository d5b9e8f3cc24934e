# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tunnels that come back after a reboot: two User-Mode Linux boots, systemd-networkd in the second.

Boot 1 applies the tunnel_endpoint role with tunnel_endpoint_persist: networkd
for ipip, gre with a key, sit with IPv6 inside, isatap and vti, writing the
files into a scratch directory, and halts: the tunnels it made die with that
kernel. Boot 2 is a fresh kernel (the reboot): it wires a far end (a
namespace with the other end of each tunnel, made with iproute2), starts
systemd-networkd on the files (as the notes in persistence.md describe:
without systemd as PID 1, /sys read-only so that it does not wait for udev)
and waits until networkd has configured every tunnel. Then the same role in
check mode must report nothing to change, and the kernel is read out of band
(`ip -d -j link`, `ip -j addr`, `ip -j route`) and pinged across (vti: the
attributes only; its traffic needs IPsec states). Boot 2 only records what
it saw; the assertions run here, on the host.

The test boots the kernels itself (scripts/uml-run), so it runs natively,
never nested inside User-Mode Linux: marked `boots`, not `tunnel`.

    .venv/bin/pytest -q tests/integration/test_persist_reboot.py
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from harness import under_uml
from persist_reboot_guest import ENDPOINTS, PINGS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'persist_reboot_guest.py')

pytestmark = pytest.mark.boots


def boot(step: str, scratch: str) -> None:
    proc = subprocess.run([os.path.join(REPO, 'scripts', 'uml-run'), '--timeout', '1800', '--',
                           sys.executable, GUEST, step, scratch],
                          capture_output=True, text=True, check=False, cwd=REPO)
    assert proc.returncode == 0, f'{step}: exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr}'


def by_name(entries: list, name: str) -> dict:
    found = [e for e in entries if e.get('ifname') == name]
    assert len(found) == 1, f'{name}: {found}'
    return found[0]


def inet(addrs: list, name: str) -> list:
    """(local, peer or None, prefixlen) of every global address on the link."""
    return sorted((a['local'], a.get('address') if a.get('address') != a['local'] else None, a['prefixlen'])
                  for a in by_name(addrs, name).get('addr_info', []) if a.get('scope') == 'global')


@pytest.fixture
def scratch():
    """A directory of our own: pytest prunes old tmp_path directories, which other runs may do during the boots."""
    if under_uml():
        pytest.skip('boots User-Mode Linux kernels itself: run it on the host, not inside scripts/uml-run')
    if shutil.which('linux.uml') is None:
        pytest.skip('User-Mode Linux is not installed (apt-get install user-mode-linux)')
    path = tempfile.mkdtemp(prefix='linuxnet-persist-reboot-', dir='/var/tmp')
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_tunnels_come_back_after_a_reboot(scratch):
    boot('boot1', scratch)
    with open(os.path.join(scratch, 'boot1.json'), encoding='utf-8') as handle:
        first = json.load(handle)
    assert first['rc'] == 0 and first['changed'] == 2 * len(ENDPOINTS), first['output']  # files and tunnel, each
    assert first['files'] == sorted(f"10-linuxnet-{v['tunnel_endpoint_name']}.{ext}" for v in ENDPOINTS for ext in ('netdev', 'network'))

    boot('boot2', scratch)  # a fresh kernel: the reboot
    with open(os.path.join(scratch, 'boot2.json'), encoding='utf-8') as handle:
        seen = json.load(handle)
    with open(os.path.join(scratch, 'networkd.log'), encoding='utf-8') as handle:
        log = handle.read()
    assert all(ok is True for ok in seen['far']), seen['far']
    assert seen['states'] == {v['tunnel_endpoint_name']: 'configured' for v in ENDPOINTS}, log

    # The same role, in check mode, finds everything as declared.
    assert seen['check']['rc'] == 0 and seen['check']['changed'] == 0, seen['check']['output']

    links, addrs, routes = seen['links'], seen['addrs'], seen['routes']
    expected = {
        'rb-ipip': ('ipip', {'local': '192.0.2.1', 'remote': '192.0.2.2', 'ttl': 64, 'pmtudisc': True}),
        'rb-gre': ('gre', {'local': '192.0.2.1', 'remote': '192.0.2.2', 'ttl': 32, 'tos': '0x1', 'pmtudisc': True,
                           'ikey': '0.0.0.42', 'okey': '0.0.0.42'}),
        'rb-sit': ('sit', {'local': '192.0.2.1', 'remote': '192.0.2.2', 'pmtudisc': False}),
        'rb-isatap': ('sit', {'local': '192.0.2.11', 'remote': 'any', 'pmtudisc': True, 'isatap': True}),
        'rb-vti': ('vti', {'local': '192.0.2.21', 'remote': '192.0.2.22', 'ikey': '0.0.0.7', 'okey': '0.0.0.7'}),
    }
    for name, (kind, attributes) in expected.items():
        link = by_name(links, name)
        assert 'UP' in link['flags'], link
        info = link['linkinfo']
        assert info['info_kind'] == kind, link
        data = info['info_data']
        assert {key: data.get(key) for key in attributes} == attributes, data
        if name == 'rb-sit':
            assert data.get('ttl', 0) == 0, data  # inherit

    assert inet(addrs, 'rb-ipip') == [('10.255.0.1', '10.255.0.2', 32)]
    assert inet(addrs, 'rb-gre') == [('10.255.1.1', '10.255.1.2', 32)]
    assert inet(addrs, 'rb-sit') == [('fd00:255:2::1', None, 64)]
    assert inet(addrs, 'rb-isatap') == [('fd00:255:3::5efe:c000:20b', None, 64)]
    assert inet(addrs, 'rb-vti') == [('10.255.4.1', '10.255.4.2', 32)]

    for endpoint in ENDPOINTS:
        for prefix in endpoint.get('tunnel_endpoint_routes', []):
            network = ipaddress.ip_network(prefix)
            found = [r for r in routes if r.get('dst') == prefix and r.get('dev') == endpoint['tunnel_endpoint_name']
                     and r.get('table', 'main') == 'main']
            assert len(found) == 1, (prefix, [r for r in routes if r.get('dev') == endpoint['tunnel_endpoint_name']])
            assert 'gateway' not in found[0] and found[0].get('metric', 0) == (0 if network.version == 4 else 1024), found

    assert seen['pings'] == {label: True for label, _target in PINGS}, seen['pings']
