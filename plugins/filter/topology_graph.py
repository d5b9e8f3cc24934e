# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""to_mermaid and to_dot: a picture of a topology (net_info's topology, or a topology task's arguments).

Both filters draw the same graph (see Graph): one box per namespace with its
links' addresses, one solid edge per veth, one dashed edge per tunnel between
its two ends (or to its remote address when the other end is not in the
topology), namespaces that forward marked.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

CURRENT = 'current namespace'  # how the namespace Ansible runs in (no netns) is labelled
FORWARDING = {'net.ipv4.ip_forward': 'IPv4', 'net.ipv6.conf.all.forwarding': 'IPv6'}
# Tunnel attributes that tell two tunnels between the same addresses apart.
TUNNEL_KEYS = ('key', 'ikey', 'okey')
BOTH_WAYS = '\u2194'  # a left right arrow between a tunnel's outer addresses


def _netns(item: Mapping, key: str = 'netns') -> str:
    return item.get(key) or ''


def _present(item: Mapping) -> bool:
    return item.get('state', 'present') != 'absent'


class Graph:
    """Namespaces (with the lines of their boxes), veth edges and tunnel edges."""

    def __init__(self, topology) -> None:
        if not isinstance(topology, Mapping):
            raise AnsibleFilterError(f'expected a topology (a dictionary with namespaces, veths, tunnels, ...), got {type(topology).__name__}')
        lists = {}
        for key in ('namespaces', 'veths', 'tunnels', 'addresses', 'sysctls'):
            for index, item in enumerate(topology.get(key) or []):
                if not isinstance(item, Mapping):
                    raise AnsibleFilterError(f'{key}[{index}]: expected a dictionary, got {type(item).__name__}')
            lists[key] = [item for item in topology.get(key) or [] if _present(item)]
        topology = lists
        self.nodes: list[str] = []  # namespace names in order of appearance, '' for the current one
        self.devices: dict[str, dict[str, list[str]]] = {}  # netns -> dev -> its addresses
        self.forwarding: dict[str, list[str]] = {}
        self.veths: list[tuple[str, str, str, str]] = []  # (netns, name, peer netns, peer)
        self.tunnels: list[dict] = []  # {'mode', 'ends': [(netns, name, local)], 'remote', 'keys'}
        for item in topology['namespaces']:
            self._node(item['name'])
        for item in topology['veths']:
            netns = _netns(item)
            peer_netns = item['peer_netns'] if item.get('peer_netns') is not None else netns
            self._device(netns, item['name'])
            self._device(peer_netns, item['peer'])
            self.veths.append((netns, item['name'], peer_netns, item['peer']))
        for item in topology['tunnels']:
            self._device(_netns(item), item['name'])
        for item in topology['addresses']:
            text = item['address'] + (f" peer {item['peer']}" if item.get('peer') else '')
            self._device(_netns(item), item['dev']).append(text)
        for item in topology['sysctls']:
            family = FORWARDING.get(item.get('name'))
            if family and str(item.get('value')).strip() == '1':
                self._node(_netns(item))
                self.forwarding.setdefault(_netns(item), []).append(family)
        self._pair_tunnels(topology['tunnels'])

    def _node(self, netns: str) -> None:
        if netns not in self.devices:
            self.nodes.append(netns)
            self.devices[netns] = {}

    def _device(self, netns: str, dev: str) -> list[str]:
        self._node(netns)
        return self.devices[netns].setdefault(dev, [])

    def _pair_tunnels(self, tunnels: list) -> None:
        """Two tunnels of one mode whose local and remote addresses mirror each other are the two ends of one."""
        open_ends: dict[tuple, int] = {}
        for item in tunnels:
            mode = item.get('mode', 'ipip')
            local, remote = item.get('local'), item.get('remote')
            keys = tuple((key, item[key]) for key in TUNNEL_KEYS if item.get(key) is not None)
            end = (_netns(item), item['name'], local)
            mirror = open_ends.pop((mode, remote, local, keys), None) if local and remote else None
            if mirror is not None:
                self.tunnels[mirror]['ends'].append(end)
                continue
            if local and remote:
                open_ends[(mode, local, remote, keys)] = len(self.tunnels)
            self.tunnels.append({'mode': mode, 'ends': [end], 'local': local, 'remote': remote, 'keys': keys})

    # -- what both pictures say ----------------------------------------------

    @staticmethod
    def title(netns: str) -> str:
        return netns or CURRENT

    def box_lines(self, netns: str) -> list[str]:
        lines = [self.title(netns)]
        if netns in self.forwarding:
            lines[0] += f" (forwards {' and '.join(self.forwarding[netns])})"
        for dev, addresses in self.devices[netns].items():
            lines.append(f"{dev} {', '.join(addresses)}" if addresses else dev)
        return lines

    @staticmethod
    def tunnel_lines(tunnel: dict) -> list[str]:
        keys = ''.join(f' {key} {value}' for key, value in tunnel['keys'])
        outer = f"{tunnel['local']} {BOTH_WAYS} {tunnel['remote']}" if tunnel['remote'] else f"local {tunnel['local'] or 'any'}"
        return [f"{tunnel['mode']}{keys} {outer}", ' - '.join(name for _netns, name, _local in tunnel['ends'])]

    def remote_nodes(self) -> list[str]:
        """Remote addresses of tunnels whose other end is not in the topology."""
        remotes: list[str] = []
        for tunnel in self.tunnels:
            if len(tunnel['ends']) == 1 and tunnel['remote'] and tunnel['remote'] not in remotes:
                remotes.append(tunnel['remote'])
        return remotes


def _layout(graph: Graph) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str, list[str], bool]]]:
    """Node identifiers that are safe in both languages, whatever the namespace names are,
    and the edges between them: (from, to, label lines, is a tunnel)."""
    nodes = {netns: f'n{index}' for index, netns in enumerate(graph.nodes)}
    remotes = {remote: f'r{index}' for index, remote in enumerate(graph.remote_nodes())}
    edges = [(nodes[netns], nodes[peer_netns], [f'{name} - {peer}'], False) for netns, name, peer_netns, peer in graph.veths]
    for tunnel in graph.tunnels:
        ends = tunnel['ends']
        if len(ends) == 1 and not tunnel['remote']:
            continue  # no other end to draw to (isatap): its box lists it
        far = nodes[ends[1][0]] if len(ends) > 1 else remotes[tunnel['remote']]
        edges.append((nodes[ends[0][0]], far, graph.tunnel_lines(tunnel), True))
    return nodes, remotes, edges


def _mermaid_text(lines: list[str]) -> str:
    return '<br/>'.join(line.replace('#', '#35;').replace('"', '#quot;').replace('<', '#lt;').replace('>', '#gt;') for line in lines)


def to_mermaid(topology) -> str:
    """A Mermaid flowchart of the topology."""
    graph = Graph(topology)
    nodes, remotes, edges = _layout(graph)
    out = ['flowchart LR']
    for netns in graph.nodes:
        text = _mermaid_text(graph.box_lines(netns))
        # A forwarding namespace is a hexagon, the others are boxes.
        out.append(f'  {nodes[netns]}{{{{"{text}"}}}}' if netns in graph.forwarding else f'  {nodes[netns]}["{text}"]')
    for remote, node in remotes.items():
        out.append(f'  {node}(["{_mermaid_text([remote])}"])')
    for near, far, lines, dashed in edges:
        out.append(f'  {near} {"-.-" if dashed else "---"}|"{_mermaid_text(lines)}"| {far}')
    return '\n'.join(out) + '\n'


def _dot_text(lines: list[str]) -> str:
    return '\\n'.join(line.replace('\\', '\\\\').replace('"', '\\"') for line in lines)


def to_dot(topology, name: str = 'topology') -> str:
    """A Graphviz (DOT) graph of the topology."""
    graph = Graph(topology)
    nodes, remotes, edges = _layout(graph)
    out = [f'graph "{_dot_text([name])}" {{', '  rankdir=LR;', '  node [shape=box, style=rounded, fontname="monospace"];',
           '  edge [fontname="monospace", fontsize=10];']
    for netns in graph.nodes:
        extra = ', peripheries=2' if netns in graph.forwarding else ''
        out.append(f'  {nodes[netns]} [label="{_dot_text(graph.box_lines(netns))}"{extra}];')
    for remote, node in remotes.items():
        out.append(f'  {node} [label="{_dot_text([remote])}", shape=ellipse, style=dashed];')
    for near, far, lines, dashed in edges:
        out.append(f'  {near} -- {far} [{"style=dashed, " if dashed else ""}label="{_dot_text(lines)}"];')
    out.append('}')
    return '\n'.join(out) + '\n'


class FilterModule:
    def filters(self):
        return {'to_mermaid': to_mermaid, 'to_dot': to_dot}
