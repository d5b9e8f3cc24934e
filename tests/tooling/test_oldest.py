# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/test oldest: the oldest ansible-core meta/runtime.yml claims (2.18), in .venv-oldest."""

from __future__ import annotations

import os
import subprocess
import uuid

from collection import REPO, doc_failures, plugins

BIN = os.path.join(REPO, '.venv-oldest', 'bin')


def test_it_is_the_oldest():
    version = subprocess.run([f'{BIN}/python', '-c', 'import ansible.release as r; print(r.__version__)'],
                             capture_output=True, text=True, check=True).stdout
    assert version.startswith('2.18.'), version


def test_every_module_renders():
    assert doc_failures(f'{BIN}/ansible-doc', 'module', plugins('modules')) == []


def test_netns_round_trip():
    ns = f'lt-oldest-{uuid.uuid4().hex[:8]}'
    env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=f'{BIN}/python')
    try:
        result = subprocess.run([f'{BIN}/ansible-playbook', '-i', 'localhost,', '-c', 'local', '-e', f'ns={ns}',
                                 os.path.join(REPO, 'tests', 'tooling', 'oldest_netns.yml')],
                                env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        left = subprocess.run(['ip', 'netns', 'delete', ns], capture_output=True, check=False).returncode == 0
    assert not left, f'namespace {ns} left behind'
