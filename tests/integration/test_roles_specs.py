# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The roles' public interface: argument specs, defaults, prefixes, options read, modules used."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = ('ipip_lab', 'tunnel_endpoint')
# What the roles may call: the collection's modules for the kernel, builtins
# for control flow and the root-namespace router's saved forwarding value.
ALLOWED = {
    'linuxnet.tunnels.topology', 'linuxnet.tunnels.persist', 'linuxnet.tunnels.ping', 'linuxnet.tunnels.sysctl',
    'ansible.builtin.assert', 'ansible.builtin.debug', 'ansible.builtin.include_tasks',
    'ansible.builtin.slurp', 'ansible.builtin.file', 'ansible.builtin.copy',
}
TASK_KEYWORDS = {
    'name', 'when', 'register', 'loop', 'loop_control', 'block', 'rescue', 'always', 'failed_when',
    'changed_when', 'vars', 'tags', 'become', 'check_mode', 'no_log', 'notify', 'delegate_to', 'environment',
}


def load(*parts: str):
    with open(os.path.join(REPO, *parts)) as fh:
        return yaml.safe_load(fh)


def tasks_of(role: str):
    folder = os.path.join(REPO, 'roles', role, 'tasks')
    for name in sorted(os.listdir(folder)):
        yield from walk(load('roles', role, 'tasks', name) or [])


def walk(tasks):
    for task in tasks:
        yield task
        for key in ('block', 'rescue', 'always'):
            yield from walk(task.get(key, []))


@pytest.mark.parametrize('role', ROLES)
def test_defaults_mirror_argument_specs(role):
    defaults = load('roles', role, 'defaults', 'main.yml')
    spec = load('roles', role, 'meta', 'argument_specs.yml')['argument_specs']['main']
    assert spec['short_description']
    options = spec['options']
    with_default = {name: opt['default'] for name, opt in options.items() if 'default' in opt}
    assert defaults == with_default
    for name, opt in options.items():
        assert name.startswith(f'{role}_'), name
        assert opt.get('type') in ('str', 'bool', 'int', 'list', 'dict', 'path'), (name, opt.get('type'))
        assert opt.get('description'), name
        if 'choices' in opt and 'default' in opt:
            assert opt['default'] in opt['choices'], name


@pytest.mark.parametrize('role', sorted(os.listdir(os.path.join(REPO, 'roles'))))
def test_descriptions_hold_no_template(role):
    """ansible-core templates a role's whole argument spec when it validates the variables: a
    description holding Jinja is evaluated on every run, and fails where its variables do not exist."""
    def texts(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from ([value] if key in ('description', 'short_description') and isinstance(value, str) else
                            value if key == 'description' else texts(value))
        elif isinstance(node, list):
            for item in node:
                yield from texts(item)
    found = [text for text in texts(load('roles', role, 'meta', 'argument_specs.yml')) if '{{' in text or '{%' in text]
    assert found == []


@pytest.mark.parametrize('role', ROLES)
def test_internal_variables_are_private(role):
    for name in load('roles', role, 'vars', 'main.yml'):
        assert name.startswith(f'__{role}_'), name


@pytest.mark.parametrize('role', ROLES)
def test_only_collection_modules_touch_the_kernel(role):
    for task in tasks_of(role):
        if 'block' in task:
            continue
        actions = set(task) - TASK_KEYWORDS
        assert len(actions) == 1 and actions <= ALLOWED, (role, task.get('name'), actions)
        assert task.get('changed_when') is not False, task.get('name')


@pytest.mark.parametrize('role', ROLES)
def test_every_option_is_read_and_every_variable_specified(role):
    """A documented option nothing reads, or a role variable read but not in the spec (a typo), fails."""
    options = set(load('roles', role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options'])
    text = ''
    for folder in ('tasks', 'vars', 'templates', 'handlers'):
        for path in glob.glob(os.path.join(REPO, 'roles', role, folder, '**', '*'), recursive=True):
            if os.path.isfile(path):
                with open(path, encoding='utf-8') as fh:
                    text += fh.read()
    registered = {task['register'] for task in tasks_of(role) if 'register' in task}
    read = set(re.findall(rf'(?<!\w){role}_\w+', text)) - registered
    assert sorted(options - read) == [], 'specified but never read'
    assert sorted(read - options) == [], 'read but not in meta/argument_specs.yml'


def test_playbooks_syntax():
    env = dict(os.environ)
    for playbook in ('lab.yml', 'teardown.yml'):
        result = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '--syntax-check',
             os.path.join(REPO, 'playbooks', playbook)],
            capture_output=True, text=True, env=env, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
