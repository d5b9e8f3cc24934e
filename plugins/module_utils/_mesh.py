# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The plan of a tunnel mesh: which hosts pair up, what each tunnel is called,
its inner addresses and the routes through it. Pure: no host, no kernel.

Rules (the role's README repeats them for users):

- Names: ``prefix`` + the peer's id, the first characters of the base32 of
  SHA-256(peer's inventory name): as many as 15 - len(prefix) leaves, at most
  8, at least 4. A host's id depends on its own name only.
- Addresses: the pool is cut into blocks of two (/31 or /127), numbered 0 to
  B-1. Every pair has a probe sequence over all blocks derived from
  SHA-256 of the sorted pair: start = h mod B, step = an odd number, so the
  sequence visits every block once. Pairs are placed in the order of their
  hash, each taking the first free block of its sequence. A pair alone on its
  first block keeps it whoever else comes or goes; only when two pairs want
  the same block does the one with the smaller hash get it, and the other one
  moves on (and back, when the winner leaves). The alphabetically first host
  of a pair takes the even address.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re

SHAPES = ('full', 'hub')
# Inner address families each mode carries (the underlay is IPv4 for all three).
MODE_FAMILIES = {'gre': (4, 6), 'ipip': (4,), 'sit': (6,)}
IFNAME_MAX = 15
ID_MIN, ID_MAX = 4, 8
ID_ALPHABET = 'a-z2-7'  # lower-case base32


class MeshError(ValueError):
    """A bad input, with a message fit to show the user."""


def id_length(prefix: str) -> int:
    """How many id characters the prefix leaves room for."""
    if not prefix or re.search(r'[\s/:]', prefix):
        raise MeshError(f"tunnel_mesh_prefix: '{prefix}' is not a valid start of an interface name (empty, or with a space, '/' or ':')")
    room = IFNAME_MAX - len(prefix.encode())
    if room < ID_MIN:
        raise MeshError(f"tunnel_mesh_prefix: '{prefix}' is {len(prefix.encode())} bytes long and leaves {max(room, 0)} of the "
                        f'{IFNAME_MAX} characters of an interface name for the peer id, which needs at least {ID_MIN}; '
                        f'use a prefix of at most {IFNAME_MAX - ID_MIN} characters')
    return min(room, ID_MAX)


def host_id(host: str, length: int) -> str:
    digest = hashlib.sha256(host.encode()).digest()
    return base64.b32encode(digest).decode().lower()[:length]


def _digest(a: str, b: str) -> bytes:
    return hashlib.sha256(f'{a}\0{b}'.encode()).digest()


def pairs(hosts: list[str], shape: str, hub: str | None) -> list[tuple[str, str]]:
    """Every tunnel of the mesh as a sorted pair of host names."""
    if shape == 'full':
        return [(a, b) for i, a in enumerate(hosts) for b in hosts[i + 1:]]
    return [tuple(sorted((hub, host))) for host in hosts if host != hub]


def allocate(mesh_pairs: list[tuple[str, str]], pool: ipaddress.IPv4Network | ipaddress.IPv6Network) -> dict:
    """Each pair's block: (even address, odd address), as the module docstring says."""
    blocks = 2 ** (pool.max_prefixlen - 1 - pool.prefixlen) if pool.prefixlen < pool.max_prefixlen else 0
    if len(mesh_pairs) > blocks:
        size = pool.max_prefixlen - 1
        raise MeshError(f'tunnel_mesh_pool: {pool} holds {blocks} /{size} blocks but the mesh has {len(mesh_pairs)} tunnels; '
                        f'use a pool of at least /{size - (len(mesh_pairs) - 1).bit_length()}')
    taken: set[int] = set()
    result = {}
    for digest, pair in sorted((_digest(*pair), pair) for pair in mesh_pairs):
        start = int.from_bytes(digest[:8], 'big') % blocks
        step = (int.from_bytes(digest[8:16], 'big') | 1) % blocks or 1
        block = start
        while block in taken:
            block = (block + step) % blocks
        taken.add(block)
        base = pool.network_address + 2 * block
        result[pair] = (base, base + 1)
    return result


def _underlays(hosts: list[str], hostvars) -> dict[str, str]:
    seen: dict[str, str] = {}
    result = {}
    for host in hosts:
        value = _var(hostvars, host, 'tunnel_mesh_underlay')
        if not value:
            raise MeshError(f'tunnel_mesh_underlay: host {host} has none (every host of the mesh needs its underlay address)')
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            raise MeshError(f"tunnel_mesh_underlay: '{value}' of host {host} is not an IP address") from None
        if address.version != 4:
            raise MeshError(f'tunnel_mesh_underlay: {address} of host {host} is IPv6; gre, ipip and sit tunnels run over IPv4')
        if str(address) in seen:
            raise MeshError(f'tunnel_mesh_underlay: hosts {seen[str(address)]} and {host} have the same underlay address {address}')
        seen[str(address)] = host
        result[host] = str(address)
    return result


def _networks(hosts: list[str], hostvars, families: tuple[int, ...], mode: str) -> dict[str, list[str]]:
    owner: dict[str, str] = {}
    result = {}
    for host in hosts:
        value = _var(hostvars, host, 'tunnel_mesh_networks') or []
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise MeshError(f'tunnel_mesh_networks: host {host} has {value!r}, not a list of prefixes')
        nets = []
        for item in value:
            try:
                net = ipaddress.ip_network(str(item))
            except ValueError as exc:
                raise MeshError(f"tunnel_mesh_networks: '{item}' of host {host} is not a prefix ({exc})") from None
            if net.version not in families:
                raise MeshError(f'tunnel_mesh_networks: {net} of host {host} is IPv{net.version}; {mode} carries IPv{families[0]} only')
            if str(net) in owner:
                raise MeshError(f'tunnel_mesh_networks: {net} is routed to both {owner[str(net)]} and {host}')
            owner[str(net)] = host
            nets.append(str(net))
        result[host] = nets
    return result


def _var(hostvars, host: str, name: str):
    if host not in hostvars:
        raise MeshError(f'tunnel_mesh_hosts: {host} is not a host of the inventory')
    return hostvars[host].get(name)


def _pool(pool: str, mode: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        net = ipaddress.ip_network(str(pool))
    except ValueError as exc:
        raise MeshError(f"tunnel_mesh_pool: '{pool}' is not a prefix ({exc})") from None
    if net.version not in MODE_FAMILIES[mode]:
        wanted = ' or '.join(f'IPv{v}' for v in MODE_FAMILIES[mode])
        raise MeshError(f'tunnel_mesh_pool: {net} is IPv{net.version}; {mode} tunnels need an {wanted} pool')
    return net


def stale(links: list[dict], prefix: str, keep: set[str]) -> list[str]:
    """Tunnels left by hosts that left: a tunnel link named prefix + an id (the
    exact length and alphabet), not in `keep`. Nothing else matches."""
    pattern = re.compile(re.escape(prefix) + f'[{ID_ALPHABET}]{{{id_length(prefix)}}}')
    return sorted(link['name'] for link in links
                  if link.get('tunnel') and pattern.fullmatch(link['name']) and link['name'] not in keep)


def plan(hostvars, host: str, hosts: list[str], shape: str = 'full', hub: str | None = None, mode: str = 'gre',
         pool: str = '', prefix: str = 'mesh-', existing: list[dict] | None = None) -> dict:
    """The mesh as `host` must configure it.

    hostvars maps every host of `hosts` to its variables (tunnel_mesh_underlay,
    optional tunnel_mesh_networks). `existing` is the host's links as
    linuxnet.tunnels.net_info returns them, to find the tunnels of hosts that left.
    Every input is checked, for every host, so that a bad one fails everywhere.
    """
    if shape not in SHAPES:
        raise MeshError(f"tunnel_mesh_shape: '{shape}' is not one of {', '.join(SHAPES)}")
    if mode not in MODE_FAMILIES:
        raise MeshError(f"tunnel_mesh_mode: '{mode}' is not one of {', '.join(MODE_FAMILIES)}")
    hosts = list(dict.fromkeys(str(h) for h in hosts))
    if shape == 'hub' and hub not in hosts:
        raise MeshError(f"tunnel_mesh_hub: '{hub}' is not one of the mesh's hosts ({', '.join(hosts)})" if hub
                        else 'tunnel_mesh_hub: required when tunnel_mesh_shape is hub')
    length = id_length(prefix)
    ids: dict[str, str] = {}
    for member in hosts:
        short = host_id(member, length)
        if short in ids:
            raise MeshError(f"tunnel_mesh_prefix: hosts {ids[short]} and {member} get the same id '{short}' in {length} "
                            'characters; a shorter prefix leaves room for a longer id')
        ids[short] = member
    names = {member: prefix + short for short, member in ids.items()}
    net = _pool(pool, mode)
    underlay = _underlays(hosts, hostvars)
    networks = _networks(hosts, hostvars, MODE_FAMILIES[mode], mode)
    mesh_pairs = pairs(hosts, shape, hub)
    blocks = allocate(mesh_pairs, net)

    result: dict = {'host': host, 'tunnels': [], 'addresses': [], 'routes': [], 'peers': [], 'probes': []}
    # A /31 or /127 rather than a peer address: NetworkManager's files can say only that.
    for pair in mesh_pairs:
        if host not in pair:
            continue
        peer = pair[1] if pair[0] == host else pair[0]
        mine, theirs = blocks[pair] if pair[0] == host else reversed(blocks[pair])
        dev = names[peer]
        result['tunnels'].append({'name': dev, 'mode': mode, 'local': underlay[host], 'remote': underlay[peer]})
        result['addresses'].append({'dev': dev, 'address': f'{mine}/{net.max_prefixlen - 1}'})
        # In a hub, a spoke reaches the other spokes' networks through the hub.
        routed = [peer] if shape == 'full' or host == hub else hosts
        dests = [dest for via in routed if via != host for dest in networks[via]]
        result['routes'] += [{'dest': dest, 'dev': dev} for dest in dests]
        result['peers'].append({'host': peer, 'name': dev, 'local': underlay[host], 'remote': underlay[peer],
                                'address': str(mine), 'peer': str(theirs), 'routes': dests})
        result['probes'].append({'label': peer, 'dest': str(theirs)})
    # The tunnels of hosts that left go in the same topology call, as items to remove.
    result['stale'] = stale(existing or [], prefix, {t['name'] for t in result['tunnels']})
    result['tunnels'] += [{'name': name, 'state': 'absent'} for name in result['stale']]
    return result


def matrix(pings: dict[str, list[dict]], hosts: list[str]) -> list[str]:
    """A reachability table: a row per host, a column per host; ok when the
    row's host got every reply from the column's inner address, LOST when not,
    '-' where there is no tunnel, '?' for a host that reported nothing."""
    width = max([len(h) for h in hosts] + [4])
    lines = [' ' * width + ''.join(f' {h:>{width}}' for h in hosts)]
    for row in hosts:
        results = pings.get(row)
        cells = []
        for col in hosts:
            if results is None:
                cell = '?'
            else:
                got = [r for r in results if r['host'] == col]
                cell = '-' if not got else ('ok' if all(r['reached'] for r in got) else 'LOST')
            cells.append(f' {cell:>{width}}')
        lines.append(f'{row:<{width}}' + ''.join(cells))
    return lines
