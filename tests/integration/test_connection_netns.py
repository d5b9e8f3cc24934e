"""The linuxnet.tunnels.netns connection plugin, through a real ansible-playbook run.

Two namespaces made here are two inventory hosts (one by its inventory name,
one through ansible_netns_name); a third host names a namespace that does not
exist and must come out unreachable with a readable message.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from harness import ip, links, list_netns, unique

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PLAYBOOK = textwrap.dedent('''\
    - name: Run inside each namespace
      hosts: all
      gather_facts: false
      tasks:
        - name: Read /proc/net/dev (per network namespace)
          ansible.builtin.command: cat /proc/net/dev
          register: dev
          changed_when: false

        - name: Read /sys/class/net (the plugin mounts the namespace's own sysfs)
          ansible.builtin.command: ls /sys/class/net
          register: sys
          changed_when: false

        - name: Bring lo up where the task runs (no netns option, so the current namespace)
          linuxnet.tunnels.link:
            name: lo
            state: up

        - name: Keep what each host saw
          ansible.builtin.copy:
            content: "{{ {'dev': dev.stdout, 'sys': sys.stdout_lines} | to_json }}"
            dest: "{{ outdir }}/{{ inventory_hostname }}.json"
            mode: "0644"
''')


def collections_path() -> str:
    return subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'collection_path.py')],
                          capture_output=True, text=True, check=True).stdout.strip()


def findmnt_sys() -> str:
    return subprocess.run(['findmnt', '-n', '/sys'], capture_output=True, text=True, check=False).stdout


@pytest.fixture
def hosts(make_netns):
    first, second = make_netns('ca'), make_netns('cb')
    ip('link', 'add', 'only1', 'type', 'veth', 'peer', 'name', 'only1b', netns=first)
    ip('link', 'add', 'only2', 'type', 'veth', 'peer', 'name', 'only2b', netns=second)
    return first, second


def run_playbook(tmp_path, inventory: str, playbook: str = PLAYBOOK, path: str | None = None) -> subprocess.CompletedProcess:
    (tmp_path / 'inventory.yml').write_text(inventory)
    (tmp_path / 'playbook.yml').write_text(playbook)
    env = dict(os.environ,
               PATH=path or os.environ['PATH'],
               ANSIBLE_COLLECTIONS_PATH=collections_path(),
               ANSIBLE_NOCOLOR='1',
               ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_CONFIG=str(tmp_path / 'none.cfg'),  # no ansible.cfg from elsewhere
               ANSIBLE_LOCAL_TEMP=str(tmp_path / 'local-tmp'),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / 'remote-tmp'))
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'inventory.yml', 'playbook.yml',
         '-e', f'outdir={tmp_path}', '-f', '5'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_tasks_run_inside_the_namespace_and_a_missing_one_is_unreachable(tmp_path, hosts):
    first, second = hosts
    missing = unique('cm')
    inventory = textwrap.dedent(f'''\
        all:
          vars:
            ansible_connection: linuxnet.tunnels.netns
            ansible_python_interpreter: {sys.executable}
          hosts:
            {first}: {{}}
            aliased:
              ansible_netns_name: {second}
            {missing}: {{}}
        ''')
    sys_before = findmnt_sys()
    root_links = sorted(links())
    proc = run_playbook(tmp_path, inventory)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 4, output  # 4: some host was unreachable

    # Each task ran in its host's namespace, and only there.
    seen = {host: json.loads((tmp_path / f'{host}.json').read_text()) for host in (first, 'aliased')}
    assert 'only1' in seen[first]['dev'] and 'only2' not in seen[first]['dev']
    assert 'only2' in seen['aliased']['dev'] and 'only1' not in seen['aliased']['dev']
    assert sorted(seen[first]['sys']) == sorted(['lo', 'only1', 'only1b'])
    assert sorted(seen['aliased']['sys']) == sorted(['lo', 'only2', 'only2b'])
    # A collection module run through the connection acted inside the namespace.
    assert 'UP' in links(first)['lo']['flags'] and 'UP' in links(second)['lo']['flags']

    # The missing namespace: unreachable, with the reason, no traceback; and not created.
    assert f'fatal: [{missing}]: UNREACHABLE!' in output
    assert f"network namespace '{missing}' does not exist (create it first, e.g. with linuxnet.tunnels.netns)" in output
    assert 'Traceback' not in output
    assert re.search(rf'^{missing}\s+: ok=0\s+changed=0\s+unreachable=1\s+failed=0', output, re.M), output
    assert re.search(rf'^{first}\s+: ok=4\s+changed=\d\s+unreachable=0\s+failed=0', output, re.M), output
    assert missing not in list_netns()
    assert not (tmp_path / f'{missing}.json').exists()

    # Nothing leaked to the controller's own namespace or mounts.
    assert findmnt_sys() == sys_before
    assert sorted(links()) == root_links


INTERPRETER_PLAYBOOK = textwrap.dedent('''\
    - name: Run a collection module (it needs pyroute2) with whatever Python the host gets
      hosts: all
      gather_facts: false
      tasks:
        - name: Bring lo up
          linuxnet.tunnels.link:
            name: lo
            state: up
    ''')


def test_modules_run_with_the_controllers_python_unless_the_host_says_otherwise(tmp_path, hosts):
    """No interpreter discovery: a PATH whose pythons are broken shims (pyenv's exit 127) must not matter."""
    first, second = hosts
    shims = tmp_path / 'shims'
    shims.mkdir()
    for name in ('python', 'python3', 'python3.11', 'python3.12', 'python3.13'):
        (shims / name).write_text('#!/bin/sh\necho "pyenv: shim without a version" >&2\nexit 127\n')
        (shims / name).chmod(0o755)
    marker = tmp_path / 'chosen'
    chosen = tmp_path / 'chosen-python'
    chosen.write_text(f'#!/bin/sh\ntouch {marker}\nexec {sys.executable} "$@"\n')
    chosen.chmod(0o755)
    inventory = textwrap.dedent(f'''\
        all:
          vars:
            ansible_connection: linuxnet.tunnels.netns
          hosts:
            {first}: {{}}
            {second}:
              ansible_python_interpreter: {chosen}
        ''')
    proc = run_playbook(tmp_path, inventory, INTERPRETER_PLAYBOOK, path=f"{shims}:{os.environ['PATH']}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert 'interpreter' not in output.lower(), output  # no discovery, no warning about it
    assert 'UP' in links(first)['lo']['flags'] and 'UP' in links(second)['lo']['flags']
    assert marker.exists()  # the host's own ansible_python_interpreter was used


def test_documentation_renders():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR='1')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-doc'), '-t', 'connection', 'linuxnet.tunnels.netns'],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert 'ansible_netns_name' in proc.stdout and 'inventory_hostname' in proc.stdout
