"""Benchmarks as ratios to a one-task playbook, all measured in one run.

Absolute seconds on shared machines are noise; ratios taken in the same run,
in the same kernel, are not. Measured (median of --runs):

- floor: ansible-playbook with one task (ansible.builtin.ping: one module
  process, the least any real task costs), one sample beside each round of
  every case below (the median of them all);
- lab: playbooks/lab.yml as users run it (default variables, verification
  on) from nothing, re-run with nothing to change, and playbooks/teardown.yml;
- scale: a hub-and-spoke topology of N sites (up to N=1000: 9000 objects),
  one linuxnet.tunnels.topology task: converge, re-run, teardown; the
  marginal cost per site is the slope of a least-squares line through the
  converge medians, and between each size and the next (linear growth keeps
  the one at N=1000 within 1.3 times the one at N=200);
- mesh: the linuxnet.tunnels.tunnel_mesh role on 20 namespace hosts (the
  netns connection, forks 10), a full gre mesh of 190 tunnels: converge,
  re-run, one host leaving (19 hosts, one tunnel removed on each) and removal
  (tunnel_mesh_state=absent); default variables, so each host's pings run.

Every re-run must report changed=0 on every host, or the benchmark aborts.
--cases picks some of lab, scale and mesh (the floor is always sampled).

`make bench` runs this inside the User-Mode Linux runner when the host kernel
has no ipip. It prints a table and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'scripts'))

import collection_path  # noqa: E402  (needs the path above)

HUB = 'bhub'


def playbook(tasks: list[dict], path: str) -> str:
    play = [{'name': 'Benchmark', 'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(play, handle)  # YAML is a superset of JSON
    return path


class Runner:
    def __init__(self) -> None:
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collection_path.ensure(),
                        ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0', LC_ALL='C.UTF-8')
        self.ansible_playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')

    def play(self, path: str, *extra: str, inventory: str = 'localhost,', unchanged: bool = False) -> float:
        """Seconds one ansible-playbook run takes; a failed run aborts the benchmark, and so
        does a run that changed something when it was to find nothing to do (`unchanged`)."""
        cmd = [self.ansible_playbook, '-i', inventory, '-c', 'local',
               '-e', f'ansible_python_interpreter={sys.executable}', path, *extra]
        start = time.monotonic()
        proc = subprocess.run(cmd, env=self.env, cwd=REPO, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f'benchmark aborted: {" ".join(cmd)} failed')
        recap = [line for line in proc.stdout.splitlines() if ' changed=' in line and ' ok=' in line]
        if unchanged and (not recap or any(' changed=0 ' not in line for line in recap)):
            sys.stderr.write('\n'.join(recap) + '\n')
            raise SystemExit(f'benchmark aborted: {" ".join(cmd)} changed something on a re-run')
        return elapsed


def hub_and_spoke(sites: int, state: str) -> dict:
    """One topology task: a hub namespace and `sites` namespaces, each with a
    veth to the hub, an ipip tunnel at both ends with inner p2p addresses,
    and a prefix routed through the tunnel."""
    underlay = ipaddress.ip_network('10.64.0.0/16').subnets(new_prefix=30)
    inner = ipaddress.ip_network('10.128.0.0/16').subnets(new_prefix=31)
    topo: dict = {'namespaces': [{'name': HUB}], 'veths': [], 'addresses': [], 'routes': [], 'tunnels': []}
    for i in range(sites):
        site, net, pair = f'bs{i}', next(underlay), next(inner)
        hub_ip, site_ip = (str(h) for h in list(net.hosts())[:2])
        hub_in, site_in = (str(a) for a in pair)
        topo['namespaces'].append({'name': site})
        topo['veths'].append({'name': f'hv{i}', 'netns': HUB, 'peer': 'uplink', 'peer_netns': site})
        topo['addresses'] += [
            {'dev': f'hv{i}', 'netns': HUB, 'address': f'{hub_ip}/30'},
            {'dev': 'uplink', 'netns': site, 'address': f'{site_ip}/30'},
            {'dev': f't{i}', 'netns': HUB, 'address': hub_in, 'peer': site_in},
            {'dev': 'tun0', 'netns': site, 'address': site_in, 'peer': hub_in},
        ]
        topo['tunnels'] += [
            {'name': f't{i}', 'netns': HUB, 'mode': 'ipip', 'local': hub_ip, 'remote': site_ip, 'dev': f'hv{i}'},
            {'name': 'tun0', 'netns': site, 'mode': 'ipip', 'local': site_ip, 'remote': hub_ip, 'dev': 'uplink'},
        ]
        topo['routes'].append({'dest': '192.168.0.0/16', 'dev': 'tun0', 'netns': site})
    topo['state'] = state
    return topo


MESH_HOSTS = 20
MESH_HUB = 'bmhub'


def mesh_files(workdir: str) -> tuple[str, str, str, str]:
    """The mesh case's inventory, its underlay up and down (one topology task
    on the controller: a namespace per host, each with a veth to a forwarding
    hub), and the playbook applying the role."""
    hosts = {f'bm{i:02d}': i for i in range(1, MESH_HOSTS + 1)}
    inventory = {'all': {
        'vars': {'ansible_python_interpreter': sys.executable},
        'hosts': {'localhost': {'ansible_connection': 'local'}},
        'children': {'mesh': {
            'vars': {'ansible_connection': 'linuxnet.tunnels.netns', 'tunnel_mesh_pool': '10.255.0.0/22'},
            'hosts': {host: {'tunnel_mesh_underlay': f'10.64.{i}.2', 'tunnel_mesh_networks': [f'192.168.{i}.0/24']}
                      for host, i in hosts.items()},
        }},
    }}
    underlay: dict = {'namespaces': [{'name': MESH_HUB}], 'veths': [], 'addresses': [], 'routes': [],
                      'sysctls': [{'name': 'net.ipv4.ip_forward', 'value': '1', 'netns': MESH_HUB}]}
    for host, i in hosts.items():
        underlay['namespaces'].append({'name': host})
        underlay['veths'].append({'name': 'uplink', 'netns': host, 'peer': host, 'peer_netns': MESH_HUB})
        underlay['addresses'] += [{'dev': 'uplink', 'netns': host, 'address': f'10.64.{i}.2/24'},
                                  {'dev': host, 'netns': MESH_HUB, 'address': f'10.64.{i}.1/24'}]
        underlay['routes'].append({'dest': '10.64.0.0/16', 'gateway': f'10.64.{i}.1', 'netns': host})
    inventory_path = f'{workdir}/mesh-inventory.yml'
    with open(inventory_path, 'w', encoding='utf-8') as handle:
        json.dump(inventory, handle)
    mesh = [{'name': 'Mesh', 'hosts': 'mesh', 'gather_facts': False, 'roles': [{'role': 'linuxnet.tunnels.tunnel_mesh'}]}]
    with open(f'{workdir}/mesh.yml', 'w', encoding='utf-8') as handle:
        json.dump(mesh, handle)
    return (inventory_path, playbook([{'linuxnet.tunnels.topology': underlay}], f'{workdir}/mesh-up.yml'),
            playbook([{'linuxnet.tunnels.topology': {'namespaces': underlay['namespaces'], 'state': 'absent'}}],
                     f'{workdir}/mesh-down.yml'), f'{workdir}/mesh.yml')


def mesh_case(runner: Runner, workdir: str, runs: int, floor_playbook: str, floors: list[float]) -> list[dict]:
    inventory, up, down, mesh = mesh_files(workdir)
    runner.play(down)
    runner.play(up)
    samples: dict[str, list[float]] = {'converge': [], 're-run': [], 'one host leaves': [], 'removal': []}
    try:
        for _run in range(runs):
            floors.append(runner.play(floor_playbook))
            samples['converge'].append(runner.play(mesh, '--forks', '10', inventory=inventory))
            samples['re-run'].append(runner.play(mesh, '--forks', '10', inventory=inventory, unchanged=True))
            samples['one host leaves'].append(runner.play(mesh, '--forks', '10', '--limit', f'mesh:!bm{MESH_HOSTS:02d}',
                                                          inventory=inventory))
            samples['removal'].append(runner.play(mesh, '--forks', '10', '-e', 'tunnel_mesh_state=absent', inventory=inventory))
    finally:
        runner.play(down)
    return [{'case': f'mesh {MESH_HOSTS} hosts {case}', 'seconds': statistics.median(values), 'samples': values}
            for case, values in samples.items()]


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope: seconds per site."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x in xs)


def marginal_costs(points: list[tuple[int, float]]) -> dict[int, float]:
    """Seconds per site from each size to the next one, keyed by the larger size.

    Linear growth keeps them equal: the cost per site at N=1000 (from 200)
    should stay within 1.3 times that at N=200 (from 50).
    """
    return {b[0]: (b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(points, points[1:])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=3, help='runs per measurement (median); at least 3')
    parser.add_argument('--sizes', default='10,50,200,1000', help='hub-and-spoke sizes, comma-separated')
    parser.add_argument('--cases', default='lab,scale,mesh', help='which cases, comma-separated: lab, scale, mesh')
    parser.add_argument('--out', default=os.path.join(REPO, 'bench-results', 'bench.json'))
    args = parser.parse_args()
    cases = set(args.cases.split(','))
    if not cases <= {'lab', 'scale', 'mesh'}:
        parser.error(f'--cases: lab, scale, mesh (comma-separated), got {args.cases}')
    sizes = [int(n) for n in args.sizes.split(',')] if 'scale' in cases else []

    workdir = tempfile.mkdtemp(prefix='linuxnet-bench-')
    runner = Runner()
    rows: list[dict] = []
    try:
        # The floor is sampled throughout, beside every round of every case, so
        # that a machine that speeds up or slows down during the run moves the
        # floor with the cases.
        floor_playbook = playbook([{'ansible.builtin.ping': {}}], f'{workdir}/floor.yml')
        floors: list[float] = []
        rows.append({'case': 'floor (one-task playbook)', 'samples': floors})

        if 'lab' in cases:
            lab, teardown = os.path.join(REPO, 'playbooks', 'lab.yml'), os.path.join(REPO, 'playbooks', 'teardown.yml')
            runner.play(teardown)
            converge, rerun, down = [], [], []
            for _run in range(args.runs):
                floors.append(runner.play(floor_playbook))
                converge.append(runner.play(lab))
                rerun.append(runner.play(lab, unchanged=True))
                down.append(runner.play(teardown))
            for case, samples in (('lab from nothing', converge), ('lab re-run', rerun), ('lab teardown', down)):
                rows.append({'case': case, 'seconds': statistics.median(samples), 'samples': samples})

        points = []
        for sites in sizes:
            up = playbook([{'linuxnet.tunnels.topology': hub_and_spoke(sites, 'present')}], f'{workdir}/up{sites}.yml')
            gone = playbook([{'linuxnet.tunnels.topology': hub_and_spoke(sites, 'absent')}], f'{workdir}/down{sites}.yml')
            runner.play(gone)
            converge, rerun, down = [], [], []
            for _run in range(args.runs):
                floors.append(runner.play(floor_playbook))
                converge.append(runner.play(up))
                rerun.append(runner.play(up, unchanged=True))
                down.append(runner.play(gone))
            points.append((sites, statistics.median(converge)))
            for case, samples in ((f'scale N={sites} converge', converge), (f'scale N={sites} re-run', rerun), (f'scale N={sites} teardown', down)):
                rows.append({'case': case, 'seconds': statistics.median(samples), 'samples': samples, 'sites': sites})
        if 'mesh' in cases:
            rows += mesh_case(runner, workdir, args.runs, floor_playbook, floors)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    floor = rows[0]['seconds'] = statistics.median(floors)
    for row in rows:
        row['ratio'] = row['seconds'] / floor
    marginal_ms = slope(points) * 1000 if len(points) > 1 else None
    report = {
        'environment': {
            'kernel': platform.release(),
            'python': platform.python_version(),
            'cpus': os.cpu_count(),
            'runs': args.runs,
            'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
        },
        'rows': rows,
        'marginal_ms_per_site': marginal_ms,
        'marginal_ms_per_site_at': {sites: cost * 1000 for sites, cost in marginal_costs(points).items()},
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as handle:
        json.dump(report, handle, indent=2)

    print(f'\nkernel {platform.release()}, median of {args.runs} runs\n')
    print(f'| {"case":<30} | {"seconds":>8} | {"x floor":>7} |')
    print(f'|{"-" * 32}|{"-" * 10}:|{"-" * 8}:|')
    for row in rows:
        print(f'| {row["case"]:<30} | {row["seconds"]:8.2f} | {row["ratio"]:7.2f} |')
    if marginal_ms is not None:
        print(f'\nmarginal converge cost: {marginal_ms:.1f} ms per site (least squares over N={sizes})')
    steps = report['marginal_ms_per_site_at']
    if 200 in steps and 1000 in steps:
        print(f'marginal converge cost per site: {steps[200]:.1f} ms at N=200, {steps[1000]:.1f} ms at N=1000 '
              f'({steps[1000] / steps[200]:.2f}x; linear growth: at most 1.3x)')
    print(f'JSON: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
