# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Teardown leaves nothing: the kernel after playbooks/teardown.yml is the kernel before playbooks/lab.yml.

The snapshot covers every namespace, link, address and route, the namespace
the tests run in included, and its forwarding sysctls: so these run only
inside User-Mode Linux (a throwaway kernel), for the default router namespace
and for the root-namespace router (ipip_lab_router_netns: '').

    scripts/uml-run --timeout 1200 -- .venv/bin/pytest -q -p no:cacheprovider -m "tunnel or rootns" tests/integration/test_reliability_teardown.py
"""

from __future__ import annotations

import os

import pytest

from harness import ip, list_netns, run_module, unique
from reliability.common import IN_UML, REPO, diff_snapshots, lab_pings, playbook, recap_changed, snapshot

pytestmark = [pytest.mark.tunnel, pytest.mark.rootns]

VARIANTS = {
    'router-namespace': {},
    'root-namespace-router': {'ipip_lab_router_netns': ''},
}


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_teardown_restores_the_kernel(variant, tmp_path):
    if not IN_UML:
        pytest.skip('compares the whole kernel, root namespace included: run under scripts/uml-run')
    # Loading ipip makes the fallback device tunl0 in every namespace, for good:
    # that is the kernel's doing, not the lab's, so it happens before the snapshot.
    os.system('modprobe ipip')  # noqa: S605 (inside the throwaway kernel)
    lab_vars = {'ipip_lab_ns1': unique('t1'), 'ipip_lab_ns2': unique('t2'), 'ipip_lab_verify': False,
                'ipip_lab_state_dir': str(tmp_path / 'state')}
    lab_vars.setdefault('ipip_lab_router_netns', unique('tr'))
    lab_vars.update(VARIANTS[variant])
    before = snapshot()
    assert before['forwarding']['net/ipv4/ip_forward'] == '0', 'the kernel under test forwards already: nothing to restore'
    try:
        up = playbook(tmp_path, f'{REPO}/playbooks/lab.yml', lab_vars)
        assert up.returncode == 0, up.stdout[-4000:]
        assert recap_changed(up.stdout) >= 1
        for probe in lab_pings(lab_vars):
            result = run_module('ping', {'dest': probe['dest'], 'netns': probe['netns'], 'count': 1, 'timeout': 2})
            assert not result.get('failed'), f"{probe['label']}: {result.get('msg')}"
            assert result['ttl'] == probe['ttl'], probe['label']
        during = snapshot()
        assert diff_snapshots(before, during), 'the lab changed nothing?'
        if variant == 'root-namespace-router':
            assert during['forwarding']['net/ipv4/ip_forward'] == '1'

        down = playbook(tmp_path, f'{REPO}/playbooks/teardown.yml', lab_vars)
        assert down.returncode == 0, down.stdout[-4000:]
        after = snapshot()
        assert not diff_snapshots(before, after), f'teardown left this behind:\n{diff_snapshots(before, after)}'
        state_dir = tmp_path / 'state'
        leftovers = os.listdir(state_dir) if state_dir.is_dir() else []
        assert not leftovers, f'teardown left files in ipip_lab_state_dir: {leftovers}'
    finally:
        for key in ('ipip_lab_ns1', 'ipip_lab_ns2', 'ipip_lab_router_netns'):
            if lab_vars[key] and lab_vars[key] in list_netns():
                ip('netns', 'del', lab_vars[key], check=False)
        for name in ('v1-P', 'v2-P'):
            if not lab_vars['ipip_lab_router_netns']:
                ip('link', 'del', name, check=False)
