# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The two boots of test_persist_reboot.py, run inside User-Mode Linux: `python persist_reboot_guest.py boot1|boot2 SCRATCH`.

Boot 1 applies the tunnel_endpoint role with tunnel_endpoint_persist: networkd
(files into SCRATCH/network). Boot 2 wires the far end, starts
systemd-networkd on those files, waits until it has configured every tunnel,
runs the role in check mode and records what the kernel shows in
SCRATCH/boot2.json. Standard library only; the assertions run on the host.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time

UNDERLAY = {'u0': ['192.0.2.1/24', '192.0.2.11/24'], 'u1': ['192.0.2.2/24', '192.0.2.12/24']}

# The role's variables for each tunnel (this end), and the far end's `ip` commands.
ENDPOINTS = [
    {'tunnel_endpoint_name': 'rb-ipip', 'tunnel_endpoint_mode': 'ipip', 'tunnel_endpoint_ttl': '64',
     'tunnel_endpoint_local': '192.0.2.1', 'tunnel_endpoint_remote': '192.0.2.2',
     'tunnel_endpoint_address': '10.255.0.1', 'tunnel_endpoint_peer': '10.255.0.2',
     'tunnel_endpoint_routes': ['203.0.113.0/24']},
    {'tunnel_endpoint_name': 'rb-gre', 'tunnel_endpoint_mode': 'gre', 'tunnel_endpoint_key': '42',
     'tunnel_endpoint_ttl': '32', 'tunnel_endpoint_tos': 'inherit',
     'tunnel_endpoint_local': '192.0.2.1', 'tunnel_endpoint_remote': '192.0.2.2',
     'tunnel_endpoint_address': '10.255.1.1', 'tunnel_endpoint_peer': '10.255.1.2',
     'tunnel_endpoint_routes': ['198.51.100.0/24']},
    {'tunnel_endpoint_name': 'rb-sit', 'tunnel_endpoint_mode': 'sit', 'tunnel_endpoint_pmtudisc': False,
     'tunnel_endpoint_ttl': 'inherit',
     'tunnel_endpoint_local': '192.0.2.1', 'tunnel_endpoint_remote': '192.0.2.2',
     'tunnel_endpoint_address': 'fd00:255:2::1/64', 'tunnel_endpoint_routes': ['fd00:203:2::/64']},
    {'tunnel_endpoint_name': 'rb-isatap', 'tunnel_endpoint_mode': 'isatap',
     'tunnel_endpoint_local': '192.0.2.11', 'tunnel_endpoint_remote': 'any',
     'tunnel_endpoint_address': 'fd00:255:3::5efe:c000:20b/64'},
    # Endpoints of its own: vti also takes the ipip and sit packets of a peer with the same endpoints.
    {'tunnel_endpoint_name': 'rb-vti', 'tunnel_endpoint_mode': 'vti', 'tunnel_endpoint_key': '7',
     'tunnel_endpoint_local': '192.0.2.21', 'tunnel_endpoint_remote': '192.0.2.22',
     'tunnel_endpoint_address': '10.255.4.1', 'tunnel_endpoint_peer': '10.255.4.2',
     'tunnel_endpoint_routes': ['198.51.104.0/24']},
]
FAR_END = [
    'tunnel add rb-ipip mode ipip local 192.0.2.2 remote 192.0.2.1 ttl 64',
    'addr add 10.255.0.2 peer 10.255.0.1 dev rb-ipip',
    'addr add 203.0.113.1/32 dev lo',
    'tunnel add rb-gre mode gre local 192.0.2.2 remote 192.0.2.1 key 42 ttl 32',
    'addr add 10.255.1.2 peer 10.255.1.1 dev rb-gre',
    'tunnel add rb-sit mode sit local 192.0.2.2 remote 192.0.2.1',
    'addr add fd00:255:2::2/64 dev rb-sit nodad',
    'tunnel add rb-isatap mode isatap local 192.0.2.12',
    'addr add fd00:255:3::5efe:c000:20c/64 dev rb-isatap nodad',
]
# (what a ping from this end proves, destination): the far end's inner addresses, and a routed one.
PINGS = [('ipip', '10.255.0.2'), ('ipip route', '203.0.113.1'), ('gre', '10.255.1.2'),
         ('sit', 'fd00:255:2::2'), ('isatap', 'fd00:255:3::5efe:c000:20c')]
FAR = 'rb-far'


def play(scratch: str, check: bool) -> dict:
    """The role once per tunnel in one ansible-playbook run; returns rc, the recap's changed count and the output."""
    tasks = [{'name': f"Endpoint {v['tunnel_endpoint_name']}",
              'ansible.builtin.include_role': {'name': 'linuxnet.tunnels.tunnel_endpoint'},
              'vars': dict(v, tunnel_endpoint_persist='networkd', tunnel_endpoint_persist_dir=os.path.join(scratch, 'network'))}
             for v in ENDPOINTS]
    playbook = os.path.join(scratch, 'endpoints.yml')
    with open(playbook, 'w', encoding='utf-8') as handle:
        json.dump([{'name': 'Tunnel endpoints', 'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle)
    progress(f"ansible-playbook{' --check' if check else ''}")
    log = os.path.join(scratch, f"play{'-check' if check else ''}.log")  # written as it runs: a slow run shows where it is
    with open(log, 'w', encoding='utf-8') as handle:
        proc = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), playbook] + (['--check'] if check else []),
            stdout=handle, stderr=subprocess.STDOUT, check=False,
            env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_NOCOLOR='1'),
        )
    with open(log, encoding='utf-8') as handle:
        output = handle.read()
    recap = [line for line in output.splitlines() if line.startswith('localhost') and 'changed=' in line]
    changed = int(recap[-1].split('changed=')[1].split()[0]) if recap else None
    return {'rc': proc.returncode, 'changed': changed, 'output': output}


def progress(text: str) -> None:
    """What the boot is doing, for the host's failure message."""
    print(f'[{time.monotonic():9.1f}] {text}', file=sys.stderr, flush=True)


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def ip_json(*args: str) -> list:
    return json.loads(run('ip', '-j', *args).stdout or '[]')


def boot1(scratch: str) -> None:
    os.makedirs(os.path.join(scratch, 'network'))
    result = play(scratch, check=False)
    result['files'] = sorted(os.listdir(os.path.join(scratch, 'network')))
    with open(os.path.join(scratch, 'boot1.json'), 'w', encoding='utf-8') as handle:
        json.dump(result, handle)


def configured(names: list[str]) -> dict:
    """name -> networkd's ADMIN_STATE for it (from its state files in /run)."""
    states = {}
    for link in ip_json('link', 'show'):
        if link['ifname'] in names:
            try:
                with open(f"/run/systemd/netif/links/{link['ifindex']}", encoding='utf-8') as handle:
                    text = handle.read()
            except OSError:
                continue
            states[link['ifname']] = next((line.split('=', 1)[1] for line in text.splitlines() if line.startswith('ADMIN_STATE=')), '')
    return states


def boot2(scratch: str) -> None:
    # The underlay and the far end, as the rest of the network would be after a reboot.
    run('ip', 'link', 'set', 'lo', 'up')
    run('ip', 'netns', 'add', FAR)
    run('ip', 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1', 'netns', FAR)
    for dev, netns in (('u0', None), ('u1', FAR)):
        prefix = ['ip'] + (['-n', netns] if netns else [])
        for address in UNDERLAY[dev]:
            run(*prefix, 'addr', 'add', address, 'dev', dev)
        run(*prefix, 'link', 'set', dev, 'up')
    run('ip', '-n', FAR, 'link', 'set', 'lo', 'up')
    far = [run('ip', '-n', FAR, *command.split()) for command in FAR_END]
    for dev in ('rb-ipip', 'rb-gre', 'rb-sit', 'rb-isatap'):
        far.append(run('ip', '-n', FAR, 'link', 'set', dev, 'up'))
    far.append(run('ip', '-n', FAR, 'route', 'add', '10.255.0.0/16', 'dev', 'rb-ipip'))  # a route home for the routed ping

    # systemd-networkd on the files boot 1 wrote.
    os.makedirs('/run/systemd/network', exist_ok=True)
    for path in glob.glob(os.path.join(scratch, 'network', '*')):
        shutil.copy(path, '/run/systemd/network/')
    run('mount', '-o', 'remount,ro', '/sys')  # otherwise networkd waits for udev
    names = [v['tunnel_endpoint_name'] for v in ENDPOINTS]
    with open(os.path.join(scratch, 'networkd.log'), 'w', encoding='utf-8') as log:
        daemon = subprocess.Popen(['/lib/systemd/systemd-networkd'], stdout=log, stderr=subprocess.STDOUT)  # pylint: disable=consider-using-with
    progress('systemd-networkd started')
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = configured(names)
        if len(states) == len(names) and set(states.values()) == {'configured'}:
            break
        time.sleep(0.5)
    progress(f'networkd states: {configured(names)}')
    result = {
        'far': [p.returncode == 0 or p.stderr for p in far],
        'states': configured(names),
        'check': play(scratch, check=True),
        'links': ip_json('-d', 'link', 'show'),
        'addrs': ip_json('addr', 'show'),
        'routes': ip_json('-4', 'route', 'show', 'table', 'all') + ip_json('-6', 'route', 'show', 'table', 'all'),
        'pings': {},
    }
    progress('pings')
    for label, target in PINGS:
        family = '-6' if ':' in target else '-4'
        proc = run('ping', family, '-n', '-c', '2', '-i', '0.2', '-W', '2', target)
        result['pings'][label] = proc.returncode == 0 or proc.stdout + proc.stderr
    daemon.terminate()
    daemon.wait()
    with open(os.path.join(scratch, 'boot2.json'), 'w', encoding='utf-8') as handle:
        json.dump(result, handle)


if __name__ == '__main__':
    {'boot1': boot1, 'boot2': boot2}[sys.argv[1]](sys.argv[2])
