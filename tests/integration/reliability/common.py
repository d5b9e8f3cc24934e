# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the reliability tests (tests/integration/test_reliability_*.py).

- snapshot(): the kernel state a failed or finished run must leave as it was.
  Inside User-Mode Linux (scripts/uml-run sets UML_RUN_GUEST=1) that is the
  whole kernel: every namespace plus the one the tests run in, and its
  forwarding sysctls. Natively other engineers' tests make and delete their
  own namespaces at the same time, so only the namespaces a test names are
  compared (plus the host's root namespace, read only).
- lab_topology(): the topology the ipip_lab role hands to the topology module,
  rendered from the role's own defaults and vars (never a copy that drifts).
- playbook(): ansible-playbook in a subprocess, with the collection and the
  interpreter pinned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import yaml

import kernel_state
from harness import ip

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HERE = os.path.dirname(os.path.abspath(__file__))
IN_UML = os.environ.get('UML_RUN_GUEST') == '1'


def load_table(name: str):
    with open(os.path.join(HERE, name), encoding='utf-8') as fh:
        return yaml.safe_load(fh)


# ---------------------------------------------------------------------------
# kernel state

def snapshot(names: list[str] | tuple = ()) -> dict:
    """Everything a run must leave untouched (tests/kernel_state.py).

    Under User-Mode Linux: every namespace and the current one. Natively: the
    namespaces in `names` (existing or not) and the host's namespace, read only.
    """
    if IN_UML:
        return kernel_state.snapshot(current=True)
    snap = kernel_state.snapshot(names, current=True)
    snap['netns'] = sorted(set(snap['netns']) & set(names))
    return snap


def diff_snapshots(before: dict, after: dict) -> str:
    """A readable account of what changed ('' when nothing did)."""
    return '\n'.join(kernel_state.differences(before, after))


def wait_link_gone(name: str, netns: str | None, timeout: float = 3.0) -> None:
    """A veth's other end goes a little after its namespace (kernel.md): poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ip('link', 'show', name, netns=netns, check=False).returncode != 0:
            return
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# the ipip_lab role's own topology, rendered in-process

def _role_vars(overrides: dict | None = None) -> dict:
    from ansible.template import trust_as_template

    def trust(value):
        if isinstance(value, str):
            return trust_as_template(value)
        if isinstance(value, list):
            return [trust(v) for v in value]
        if isinstance(value, dict):
            return {k: trust(v) for k, v in value.items()}
        return value

    role = os.path.join(REPO, 'roles', 'ipip_lab')
    with open(os.path.join(role, 'defaults', 'main.yml'), encoding='utf-8') as fh:
        variables = yaml.safe_load(fh)
    with open(os.path.join(role, 'vars', 'main.yml'), encoding='utf-8') as fh:
        variables.update(trust(yaml.safe_load(fh)))
    variables.update(overrides or {})
    return variables


def render_role(name: str, overrides: dict | None = None):
    """A variable of the ipip_lab role (for example __ipip_lab_topology), rendered."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    variables = _role_vars(overrides)
    value = Templar(loader=DataLoader(), variables=variables).template(variables[name])
    # Plain types: the topology module is run in-process with these as its arguments.
    return json.loads(json.dumps(value))


def lab_topology(overrides: dict | None = None) -> dict:
    """The params of the role's `linuxnet.tunnels.topology` task (state: present)."""
    topo = render_role('__ipip_lab_topology', overrides)
    return dict(topo, state='present')


def lab_pings(overrides: dict | None = None) -> list[dict]:
    return render_role('__ipip_lab_pings', overrides)


# ---------------------------------------------------------------------------
# ansible-playbook

def collections_path() -> str:
    return os.environ['ANSIBLE_COLLECTIONS_PATH']  # set by tests/conftest.py


def inventory_file(tmp_path) -> str:
    path = tmp_path / 'inventory.yml'
    path.write_text(yaml.safe_dump({'all': {'hosts': {'localhost': {
        'ansible_connection': 'local',
        'ansible_python_interpreter': sys.executable,
    }}}}))
    return str(path)


def playbook(tmp_path, playbook_path: str, extra_vars: dict | None = None, inventory: str | None = None,
             args: tuple = (), timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ansible-playbook; stdout and stderr together in .stdout."""
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
           '-i', inventory or inventory_file(tmp_path), playbook_path]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    cmd += list(args)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'),
               ANSIBLE_HOST_KEY_CHECKING='0', LC_ALL='C.UTF-8')
    env.pop('ANSIBLE_DISPLAY_TRACEBACK', None)
    return subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                          text=True, timeout=timeout)


def recap_changed(output: str) -> int:
    """changed=N of the (single-host) PLAY RECAP."""
    for line in output.splitlines()[::-1]:
        if 'changed=' in line and 'ok=' in line:
            return int(line.split('changed=')[1].split()[0])
    raise AssertionError(f'no PLAY RECAP in:\n{output[-3000:]}')
