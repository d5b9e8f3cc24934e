# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad inputs, table-driven (reliability/bad_inputs.yml).

Each case fails, with a readable message naming the problem, no traceback,
and the kernel exactly as before. Module cases run in-process (fast); the
non-root ones run the module in a subprocess that drops to uid 65534 (or to
root without capabilities); role cases run ansible-playbook.

Natively: `.venv/bin/pytest -q -p no:cacheprovider tests/integration/test_reliability_bad_inputs.py`
Tunnel and root-namespace cases: under scripts/uml-run with -m "tunnel or rootns".
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import uuid

import pytest

from harness import assert_failed, ip, list_netns, run_module, unique
from reliability.common import REPO, diff_snapshots, load_table, playbook, snapshot

TABLE = load_table('bad_inputs.yml')
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A module run as a non-root user. The venv's interpreter lives under /root
# (pyenv), which uid 65534 cannot read, so the process starts as root, imports
# everything it needs, and only then drops to nobody before the module's main().
NONROOT_SCRIPT = r'''
import importlib, json, os, sys
sys.path[:0] = [sys.argv[1]]
import conftest  # noqa: F401  (the collection path)
from harness import run_module
module, params = sys.argv[2], json.loads(sys.argv[3])
importlib.import_module(f'ansible_collections.linuxnet.tunnels.plugins.modules.{module}')
import pyroute2, pyroute2.netns, encodings.idna  # noqa: E401,F401  (imported lazily otherwise)
if sys.argv[4] == 'nobody':
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    assert os.geteuid() == 65534
print(json.dumps(run_module(module, params, check=False)))
'''


def expand(value, names: dict):
    """$ns, $ns2, $missing, $u, $long substituted everywhere in a case."""
    if isinstance(value, str):
        return string.Template(value).safe_substitute(names)
    if isinstance(value, list):
        return [expand(v, names) for v in value]
    if isinstance(value, dict):
        return {expand(k, names): expand(v, names) for k, v in value.items()}
    return value


def marks_of(case: dict) -> list:
    return [getattr(pytest.mark, mark) for mark in case.get('marks', [])]


def module_params():
    for case in TABLE['modules']:
        for mode in case.get('modes', ['check', 'real']):
            yield pytest.param(case, mode == 'check', id=f"{case['id']}-{mode}", marks=marks_of(case))


@pytest.fixture
def names():
    """Fresh namespaces ns/ns2, a missing name and a unique stem; all removed after."""
    made = {'ns': unique('bi'), 'ns2': unique('bj'), 'missing': unique('bm'), 'u': uuid.uuid4().hex[:6]}
    made['long'] = made['missing'] + 'x' * (262 - len(made['missing']))
    for key in ('ns', 'ns2'):
        ip('netns', 'add', made[key])
    yield made
    for name in list_netns():
        if name in (made['ns'], made['ns2'], made['missing']) or made['missing'] in name:
            ip('netns', 'del', name, check=False)


def run_nonroot(module: str, params: dict, how: str) -> dict:
    """The module's result when run by uid 65534 ('nobody'), or by root without capabilities ('nocaps')."""
    cmd = [sys.executable, '-c', NONROOT_SCRIPT, TESTS, module, json.dumps(params), how]
    if how == 'nocaps':
        # uid 0 keeps its files (the interpreter under /root), but no capability:
        # no CAP_NET_ADMIN, no CAP_SYS_ADMIN (setns), no CAP_DAC_OVERRIDE.
        cmd = ['setpriv', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--'] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert 'Traceback' not in proc.stderr, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
    assert lines, f'no result from the module run as {how}: {proc.stdout}\n{proc.stderr}'
    return json.loads(lines[-1])


@pytest.mark.parametrize(('case', 'check'), list(module_params()))
def test_module_bad_input(case, check, names):
    names['mode'] = 'check' if check else 'real'
    case = expand(case, names)
    for command in case.get('setup', []):
        ip(*command.split())
    watched = [names['ns'], names['ns2'], names['missing']]
    before = snapshot(watched)
    if case.get('nonroot'):
        how = 'nocaps' if case['nonroot'] == 'nocaps' else 'nobody'
        result = run_nonroot(case['module'], case['params'], how)
    else:
        try:
            result = run_module(case['module'], case['params'], check=check)
        except Exception as exc:  # a traceback would reach the user
            pytest.fail(f'{case["module"]} raised instead of failing cleanly: {exc!r}')
    try:
        assert_failed(result, *map(str, case['words']))
    finally:
        # Whatever the verdict on the message, the kernel must be as it was.
        after = snapshot(watched)
        changed = diff_snapshots(before, after)
        for path in case.get('absent_paths', []):
            if os.path.lexists(path):
                changed += f'\n{path} was created'
        # Anything named after the missing namespace is the case's doing: clean it up, then report.
        strays = [n for n in list_netns() if names['missing'] in n]
        assert not strays and not changed, f'kernel changed by a failed task:\n{changed}\nnamespaces: {strays}'


# ---------------------------------------------------------------------------
# roles, through ansible-playbook

ROLE_PLAY = '''
- name: Bad input for a role
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Apply the role
      ansible.builtin.include_role:
        name: linuxnet.tunnels.{role}
'''


@pytest.mark.parametrize('case', TABLE['roles'], ids=[c['id'] for c in TABLE['roles']])
def test_role_bad_input(case, names, tmp_path):
    case = expand(case, names)
    extra = dict(case['vars'])
    if case['role'] == 'ipip_lab':
        # Never the default ns1/ns2/ipip-router on this host: names of the case's own.
        for var, suffix in (('ipip_lab_ns1', 'a'), ('ipip_lab_ns2', 'b'), ('ipip_lab_router_netns', 'r')):
            extra.setdefault(var, f"{names['missing']}{suffix}")
        extra.setdefault('ipip_lab_verify', False)
    watched = [names['ns'], names['ns2'], names['missing']] + [v for v in extra.values() if isinstance(v, str)]
    before = snapshot(watched)
    play = tmp_path / 'play.yml'
    play.write_text(ROLE_PLAY.format(role=case['role']))
    proc = playbook(tmp_path, str(play), extra)
    out = proc.stdout
    after = snapshot(watched)
    assert proc.returncode != 0, out
    assert 'failed=1' in out, out[-3000:]
    assert 'Traceback' not in out, out
    failed = [line for line in out.splitlines() if 'fatal:' in line or 'ERROR!' in line or '[ERROR]' in line]
    assert failed, out[-3000:]
    lowered = out.lower()
    for word in map(str, case['words']):
        assert word.lower() in lowered, f'{word!r} not in the output:\n{out[-3000:]}'
    assert not diff_snapshots(before, after), diff_snapshots(before, after)
    assert not [n for n in list_netns() if names['missing'] in n]


def test_table_is_large_enough():
    """The issue asks for at least 30 cases across modules and roles."""
    cases = TABLE['modules'] + TABLE['roles']
    assert len(cases) >= 30
    assert len({c['id'] for c in cases}) == len(cases), 'duplicate ids'
    assert {c['module'] for c in TABLE['modules']} >= {'netns', 'veth', 'link', 'address', 'route', 'sysctl', 'tunnel', 'topology'}
    assert os.path.isdir(os.path.join(REPO, 'roles'))
