# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ctrl-C in each task of `ansible-playbook playbooks/lab.yml`.

SIGINT goes to the playbook's process group, as a terminal sends it, when
the task's header is printed, and in the task that builds the lab also at
three moments of its module run: its first step, halfway, and during the
probes. (ansible-core puts each worker in a session of its own, so the
module it runs does not get the signal and ends its work alone: the test
waits for it, as the next run would meet it.) After each: a re-run builds
and verifies the lab (net_info reads exactly the role's topology), a second
re-run changes nothing, and teardown leaves the kernel as its snapshot from
before.

They compare the whole kernel, so they run only inside User-Mode Linux:

    scripts/uml-run -- .venv/bin/pytest -q -p no:cacheprovider tests/integration/test_reliability_interrupt.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from kernel_state import list_netns
from reliability.common import IN_UML, REPO, diff_snapshots, lab_topology, playbook, recap_changed, snapshot
from reliability.faults import declared_state, kernel_state, state_diff

pytestmark = [pytest.mark.tunnel, pytest.mark.rootns]

LAB, TEARDOWN = f'{REPO}/playbooks/lab.yml', f'{REPO}/playbooks/teardown.yml'
# The tasks lab.yml prints, in order (the role's argument check first); the
# fixture fails when the role's tasks change, so that this list follows them.
TASKS = (
    'Validating arguments against arg spec',
    'Build and verify, or remove, the lab',
    'Show what each probe got and what crossed the router',
)
BUILD = TASKS.index('Build and verify, or remove, the lab')


def _run_ok(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True, text=True, check=False).returncode == 0


# When to press Ctrl-C once a task's header is printed. Inside the build the
# moments are states of the kernel, polled: its first step (ns1 made), its
# middle (tunr made, after the namespaces and veths) and its end, when the
# router forwards and the probes and captures run.
TRIGGERS = {
    'at once': lambda: True,
    'once ns1 exists': lambda: os.path.exists('/run/netns/ns1'),
    'once tunr exists': lambda: _run_ok('ip', '-n', 'ns2', 'link', 'show', 'tunr'),
    'once the router forwards': lambda: _run_ok('ip', 'netns', 'exec', 'ipip-router', 'grep', '-qx', '1',
                                                '/proc/sys/net/ipv4/ip_forward'),
}
POINTS = [(task, 'at once') for task in range(len(TASKS))] + [
    (BUILD, 'once ns1 exists'), (BUILD, 'once tunr exists'), (BUILD, 'once the router forwards')]


def task_headers(output: str) -> list[str]:
    return [line.split(' : ', 1)[1].rstrip('*] ') for line in output.splitlines()
            if line.startswith('TASK [') and ' : ' in line]


@pytest.fixture(scope='module')
def kernel(tmp_path_factory):
    """The kernel before the lab; the lab's whole run prints exactly TASKS."""
    if not IN_UML:
        pytest.skip('compares the whole kernel, root namespace included: run under scripts/uml-run')
    tmp = tmp_path_factory.mktemp('interrupt')
    before = snapshot()
    up = playbook(tmp, LAB)
    assert up.returncode == 0, up.stdout[-3000:]
    headers = task_headers(up.stdout)
    assert len(headers) == len(TASKS) and all(h.startswith(t) for h, t in zip(headers, TASKS)), headers
    down = playbook(tmp, TEARDOWN)
    assert down.returncode == 0, down.stdout[-3000:]
    assert not diff_snapshots(before, snapshot())
    return before


def interrupted(tmp_path, task: int, trigger: str) -> tuple[str, bool]:
    """lab.yml, Ctrl-C'd in TASKS[task] when TRIGGERS[trigger] holds: its output, and
    whether its module ran on after it (see modules_run_on)."""
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'), PYTHONUNBUFFERED='1', LC_ALL='C.UTF-8')
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
                             '-c', 'local', '-e', f'ansible_python_interpreter={sys.executable}', LAB],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    output = []
    try:
        for line in proc.stdout:
            output.append(line)
            if line.startswith('TASK [') and TASKS[task] in line:
                deadline = time.monotonic() + 60
                while not TRIGGERS[trigger]():
                    assert proc.poll() is None and time.monotonic() < deadline, f'{trigger} never happened'
                    time.sleep(0.01)
                os.killpg(proc.pid, signal.SIGINT)
                break
        output += proc.stdout.readlines()
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = ''.join(output)
    assert rc != 0, f'lab.yml finished before Ctrl-C reached {TASKS[task]!r} {trigger}:\n{text[-2000:]}'
    assert subprocess.run(['pgrep', '-g', str(proc.pid)], capture_output=True, check=False).returncode == 1, \
        'a process of the interrupted run is still alive'
    return text, modules_run_on()


def modules_run_on() -> bool:
    """Whether a module process outlived the interrupted run, after waiting for it to end.

    ansible-core starts each worker in a session of its own, so Ctrl-C does not
    reach the module it runs: the module finishes its work on its own (the
    kernel only, as nobody reads its result) while the terminal is back.
    """
    deadline, seen = time.monotonic() + 60, False
    while subprocess.run(['pgrep', '-f', 'AnsiballZ_'], capture_output=True, check=False).returncode == 0:
        seen = True
        assert time.monotonic() < deadline, 'a module of the interrupted run still runs 60 s later'
        time.sleep(0.1)
    return seen


@pytest.mark.parametrize(('task', 'trigger'), POINTS, ids=[f'{TASKS[t]} {trigger}' for t, trigger in POINTS])
def test_lab_interrupted(kernel, tmp_path, task, trigger):
    output, ran_on = interrupted(tmp_path, task, trigger)
    left = sorted(set(list_netns()) - set(kernel['netns']))
    try:
        rerun = playbook(tmp_path, LAB)
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        topology = lab_topology()
        namespaces = [n['name'] for n in topology['namespaces']]
        found = kernel_state(namespaces)
        assert not state_diff(declared_state(topology), found), state_diff(declared_state(topology), found)
        again = playbook(tmp_path, LAB)
        assert again.returncode == 0 and recap_changed(again.stdout) == 0, again.stdout[-3000:]
    finally:
        down = playbook(tmp_path, TEARDOWN)
    assert down.returncode == 0, down.stdout[-3000:]
    after = snapshot()
    assert not diff_snapshots(kernel, after), f'teardown left this behind:\n{diff_snapshots(kernel, after)}'
    # For the run's log (pytest -rP): what the interrupted run left, what the re-run did.
    print(f'Ctrl-C in {TASKS[task]!r} {trigger}: last line {output.strip().splitlines()[-1]!r}, '
          f'module ran on: {ran_on}, namespaces left {left}, re-run changed={recap_changed(rerun.stdout)}')
