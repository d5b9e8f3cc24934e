# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/test build: the collection as its users get it.

Built with ansible-galaxy from the files git would commit (as a fresh clone
has them), installed into an empty collections path, then read by
ansible-doc and ansible-builder from there only.
"""

from __future__ import annotations

import glob
import os
import subprocess
import tarfile

import pytest
import yaml

from collection import REPO, copy_committed, doc_failures, plugins

# Development tooling and output that must not reach users (galaxy.yml build_ignore).
NOT_SHIPPED = ('scripts/', 'benchmarks/', 'bench-results/', '.ci/', '.build/', 'tests/', 'molecule/', 'Makefile',
               'requirements-dev.txt', 'bindep.txt', '.venv', 'docs/testing.md')


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """(tarball, environment whose only collection is the installed tarball)."""
    tmp = tmp_path_factory.mktemp('build')
    copy_committed(str(tmp / 'src'))
    subprocess.run(['ansible-galaxy', 'collection', 'build', '--output-path', str(tmp / 'dist'), str(tmp / 'src')],
                   check=True, capture_output=True)
    (tarball,) = (tmp / 'dist').glob('linuxnet-tunnels-*.tar.gz')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / 'collections'), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false')
    subprocess.run(['ansible-galaxy', 'collection', 'install', '--offline', '-p', str(tmp / 'collections'), str(tarball)],
                   env=env, check=True, capture_output=True)
    return tarball, env


def test_tarball_holds_the_collection_and_no_tooling(built):
    with tarfile.open(built[0]) as tar:
        names = {m.name + ('/' if m.isdir() else '') for m in tar.getmembers()}
    assert not {n for n in names if n.startswith(NOT_SHIPPED)}
    wanted = {f'plugins/modules/{m}.py' for m in plugins('modules')} | {f'plugins/connection/{c}.py' for c in plugins('connection')}
    wanted |= {os.path.relpath(p, REPO) for d in ('playbooks', 'roles', 'meta') for p in _files(d)}
    assert wanted - names == set()
    assert {'README.md', 'requirements.txt', 'MANIFEST.json', 'FILES.json'} <= names


def _files(folder: str) -> list[str]:
    return [p for p in glob.glob(f'{REPO}/{folder}/**/*', recursive=True) if os.path.isfile(p) and '__pycache__' not in p]


def test_every_module_is_listed_and_renders(built):
    listing = subprocess.run(['ansible-doc', '-t', 'module', '-l', 'linuxnet.tunnels'], env=built[1], capture_output=True,
                             text=True, check=True).stdout
    listed = {line.split()[0] for line in listing.splitlines() if line.strip()}
    modules = plugins('modules')
    assert modules and listed == {f'linuxnet.tunnels.{m}' for m in modules}
    assert doc_failures('ansible-doc', 'module', modules, built[1]) == []


def test_connection_plugins_and_roles_render(built):
    roles = sorted(os.path.basename(os.path.dirname(os.path.dirname(p)))
                   for p in _files('roles') if p.endswith('meta/argument_specs.yml'))
    assert roles and doc_failures('ansible-doc', 'role', roles, built[1]) == []
    assert doc_failures('ansible-doc', 'connection', plugins('connection'), built[1]) == []


def test_execution_environment(built, tmp_path):
    """ansible-builder finds the collection's requirements, and makes a build context with it."""
    collections = built[1]['ANSIBLE_COLLECTIONS_PATH']
    found = subprocess.run(['ansible-builder', 'introspect', '--sanitize', collections], capture_output=True, text=True, check=True)
    deps = yaml.safe_load(found.stdout)
    assert any(line.startswith('pyroute2') for line in deps['python']), deps
    assert any(line.startswith('util-linux') for line in deps['system']), deps
    (tmp_path / 'requirements.yml').write_text(yaml.safe_dump({'collections': [{'name': str(built[0]), 'type': 'file'}]}))
    (tmp_path / 'execution-environment.yml').write_text(yaml.safe_dump({
        'version': 3, 'dependencies': {'galaxy': 'requirements.yml', 'ansible_core': {'package_pip': 'ansible-core'}},
    }))
    subprocess.run(['ansible-builder', 'create', '--context', 'context', '--output-filename', 'Containerfile'],
                   cwd=tmp_path, capture_output=True, check=True)
    containerfile = (tmp_path / 'context' / 'Containerfile').read_text()
    assert 'ansible-galaxy collection install' in containerfile and 'introspect' in containerfile
    assert (tmp_path / 'context' / '_build' / 'requirements.yml').exists()
