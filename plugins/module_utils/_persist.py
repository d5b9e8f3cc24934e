# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Boot-time configuration of tunnels: systemd-networkd and NetworkManager files.

The same tunnel, address and route items the topology module takes are
validated by their own resource classes, then rendered to the files of one
backend (pure functions). The resource reads the files present in the
directory, plans a per-file change by content, mode and owner, and applies it
with atomic writes. Every file it writes starts with MARK; a file without it
is someone else's and is never overwritten or removed.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import uuid
from dataclasses import dataclass

from ansible_collections.linuxnet.tunnels.plugins.module_utils._address import FAMILY, AddressResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    CREATE,
    DELETE,
    UPDATE,
    Change,
    Resource,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._route import DEFAULT_METRIC, RT_TABLE_MAIN, RouteResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._topology import check_options
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel import TunnelResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel_params import (
    MODES,
    parse_ipv4,
    parse_key,
    parse_tos,
    parse_ttl,
    view_address,
)

MARK = '# Managed by linuxnet.tunnels.persist'
HEADER = (f'{MARK}: changes made here are overwritten, and state=absent removes this file.\n'
          '# Delete these two lines to keep the file as your own (the module then leaves it alone).\n')
ROOT = 0
NM_UUID_NAMESPACE = uuid.UUID('9b1f5c1e-4f4e-4d8e-9a52-6c1d2f0e7a31')
# Characters systemd-networkd reads as a glob in [Match] Name=.
GLOB = '*?['
# NetworkManager's ip-tunnel mode numbers (NMIPTunnelMode); isatap (4) it cannot create.
NM_MODES = {'ipip': 1, 'gre': 2, 'sit': 3, 'vti': 5}
LISTS = (('tunnels', TunnelResource), ('addresses', AddressResource), ('routes', RouteResource))


@dataclass(frozen=True)
class Backend:
    name: str
    dir: str
    mode: int
    daemon: str  # what the docs and messages call it
    reload: tuple


BACKENDS = {
    'networkd': Backend('networkd', '/etc/systemd/network', 0o644, 'systemd-networkd', ('networkctl', 'reload')),
    'networkmanager': Backend('networkmanager', '/etc/NetworkManager/system-connections', 0o600, 'NetworkManager',
                              ('nmcli', 'connection', 'reload')),
}


# ---------------------------------------------------------------------------
# Items (pure)

@dataclass
class Declaration:
    """The validated items, grouped by tunnel: what the files say."""

    tunnels: list  # TunnelResource, in the order given
    addresses: dict  # tunnel name -> [AddressResource]
    routes: dict  # tunnel name -> [RouteResource]
    absent: list  # names of tunnels whose files go


def declare(params: dict) -> Declaration:
    """Every item validated by its own resource class, or one ResourceError naming each bad item."""
    errors: list[str] = []
    found: dict = {key: [] for key, _cls in LISTS}
    for key, resource_class in LISTS:
        for index, options in enumerate(params.get(key) or []):
            label = f'{key}[{index}]'
            if not isinstance(options, dict):
                errors.append(f'{label}: an item must be a dictionary of options of the {resource_class.kind} module, not {options!r}')
                continue
            if options.get('netns'):
                errors.append(f'{label}: netns: boot-time files configure the namespace the network service runs in '
                              '(the one Ansible runs in); leave netns out')
                continue
            values, problems = check_options(resource_class, options)
            if problems:
                errors.append(f'{label}: {"; ".join(problems)}')
                continue
            resource = resource_class(None, values)
            try:
                resource.validate()
            except ResourceError as exc:
                errors.append(f'{label}: {exc}')
                continue
            found[key].append((label, resource))
    if errors:
        raise ResourceError(f'invalid declaration (nothing was written): {" | ".join(errors)}')
    declared: dict = {}
    for label, tunnel in found['tunnels']:
        name = tunnel.params['name']
        if name in declared:
            errors.append(f"{label}: tunnel '{name}' is declared twice (also {declared[name][0]})")
        declared[name] = (label, tunnel)
    present = {name for name, (_label, tunnel) in declared.items() if tunnel.params['state'] == 'present'}
    grouped: dict = {'addresses': {name: [] for name in present}, 'routes': {name: [] for name in present}}
    for key in ('addresses', 'routes'):
        for label, item in found[key]:
            if item.params['state'] == 'absent':
                continue  # not in the files is what absent means there
            dev = item.params.get('dev')
            if dev not in present:
                where = f"'{dev}' is not" if dev else 'no dev is given; it must be'
                errors.append(f'{label}: dev: {where} one of the tunnels declared present here: the {key[:-2]} is '
                              "written into that tunnel's files")
                continue
            grouped[key][dev].append(item)
    if errors:
        raise ResourceError(f'invalid declaration (nothing was written): {" | ".join(errors)}')
    return Declaration(
        tunnels=[tunnel for _label, tunnel in found['tunnels'] if tunnel.params['state'] == 'present'],
        addresses=grouped['addresses'],
        routes=grouped['routes'],
        absent=[tunnel.params['name'] for _label, tunnel in found['tunnels'] if tunnel.params['state'] == 'absent'],
    )


# ---------------------------------------------------------------------------
# Rendering (pure)

def ini(sections: list) -> str:
    """HEADER and [section] key=value blocks; a section may appear more than once."""
    blocks = []
    for title, entries in sections:
        lines = [f'[{title}]'] + [f'{key}={value}' for key, value in entries if value is not None]
        blocks.append('\n'.join(lines) + '\n')
    return HEADER + '\n' + '\n'.join(blocks)


def refuse(tunnel: str, option: str, why: str) -> ResourceError:
    return ResourceError(f"tunnel '{tunnel}': {option}: {why}")


def common_refusals(p: dict, backend: str) -> None:
    """Options neither backend's files can hold."""
    name = p['name']
    if p.get('csum'):
        raise refuse(name, 'csum', f'{BACKENDS[backend].daemon} has no setting for GRE checksums')
    if p.get('encap') not in (None, 'none'):
        raise refuse(name, 'encap', 'fou/gue encapsulation needs a FOU port listener at boot too, which this module '
                                    'does not write; leave encap out')
    for option in ('encap_sport', 'encap_dport'):
        if p.get(option) is not None:
            raise refuse(name, option, 'fou/gue encapsulation is not written to boot-time files; leave it out')


def key_values(p: dict) -> tuple:
    """(input key, output key) as numbers; None where there is none."""
    if p.get('key') is not None:
        key = parse_key(p['key'], 'key')
        return key, key
    return tuple(parse_key(p[option], option) if p.get(option) is not None else None for option in ('ikey', 'okey'))


def endpoint(p: dict, option: str) -> str | None:
    """local or remote as written to the files: an address, 'any', or None when not given."""
    return None if p.get(option) is None else view_address(parse_ipv4(p[option], option, p['mode']))


def outer_header(p: dict) -> tuple:
    """(ttl, tos) in the kernel's numbers (None when not given), and path MTU discovery."""
    ttl = parse_ttl(p['ttl']) if p.get('ttl') is not None else None
    tos = parse_tos(p['tos']) if p.get('tos') is not None else None
    return ttl, tos, bool(p['pmtudisc'])


def networkd_netdev(p: dict) -> str:
    name, mode_name = p['name'], p['mode']
    mode = MODES[mode_name]
    common_refusals(p, 'networkd')
    if p.get('dev') is not None:
        raise refuse(name, 'dev', 'systemd-networkd ties a tunnel to an underlay only through the underlay\'s own '
                                  '.network file (Tunnel=), which hands that whole link to systemd-networkd; leave dev out '
                                  '(routes to the remote end choose the underlay)')
    tunnel = [('Independent', 'yes'), ('Local', endpoint(p, 'local')), ('Remote', endpoint(p, 'remote'))]
    if mode.iptun:
        ttl, tos, pmtudisc = outer_header(p)
        tunnel += [('TTL', ttl), ('TOS', tos), ('DiscoverPathMTU', 'yes' if pmtudisc else 'no')]
    if mode.keys:
        ikey, okey = key_values(p)
        if mode.gre and 0 in (ikey, okey):
            raise refuse(name, 'key', 'systemd-networkd takes a GRE key of 0 as no key; choose another key')
        if ikey is not None and ikey == okey:
            tunnel.append(('Key', ikey or None))
        else:
            tunnel += [('InputKey', ikey or None), ('OutputKey', okey or None)]
    if mode.gre and p.get('seq') is not None:
        tunnel.append(('SerializeTunneledPackets', 'yes' if p['seq'] else 'no'))
    if mode.isatap:
        tunnel.append(('ISATAP', 'yes'))
    return ini([('NetDev', [('Name', name), ('Kind', mode.kind), ('MTUBytes', p.get('mtu'))]), ('Tunnel', tunnel)])


def networkd_network(p: dict, addresses: list, routes: list) -> str:
    name = p['name']
    if any(c in name for c in GLOB):
        raise refuse(name, 'name', f"systemd-networkd reads [Match] Name= as a glob pattern, and '{name}' has one of {GLOB}")
    sections = [('Match', [('Name', name)]), ('Network', [('ConfigureWithoutCarrier', 'yes')])]
    if not p['up']:
        sections.append(('Link', [('ActivationPolicy', 'down')]))
    for address in addresses:
        entries = [('Address', f'{address.local.compressed}/{address.prefixlen}')]
        if address.peer is not None:
            entries.append(('Peer', f'{address.peer.compressed}/{address.prefixlen}'))
        if address.local.version == 6:
            entries.append(('DuplicateAddressDetection', 'none'))  # usable at once, as the address module adds it
        sections.append(('Address', entries))
    for route in routes:
        sections.append(('Route', route_entries(route)))
    return ini(sections)


def route_destination(route: RouteResource) -> str:
    zero = '0.0.0.0' if route.family == socket.AF_INET else '::'
    return f'{route.dst or zero}/{route.dst_len}'


def route_entries(route: RouteResource) -> list:
    p = route.params
    entries = [('Destination', route_destination(route)), ('Gateway', route.gateway), ('Metric', p.get('metric'))]
    if p['table'] != RT_TABLE_MAIN:
        entries.append(('Table', p['table']))
    if route.gateway is None and route.family == socket.AF_INET:
        entries.append(('Scope', 'link'))  # as the route module (and iproute2) add a route without gateway
    return entries


def networkmanager_keyfile(p: dict, addresses: list, routes: list) -> str:
    name, mode_name = p['name'], p['mode']
    mode = MODES[mode_name]
    if mode_name not in NM_MODES:
        raise refuse(name, 'mode', f'NetworkManager cannot create {mode_name} tunnels (it has a mode number for '
                                   'isatap but no way to make one); use the networkd backend')
    common_refusals(p, 'networkmanager')
    if p.get('seq'):
        raise refuse(name, 'seq', 'NetworkManager has no setting for GRE sequence numbers')
    if not p['up']:
        raise refuse(name, 'up', 'NetworkManager creates a tunnel only to bring it up; leave up at true')
    remote = endpoint(p, 'remote')
    if remote in (None, 'any'):
        raise refuse(name, 'remote', 'NetworkManager refuses a tunnel without a remote address')
    local = endpoint(p, 'local')
    tunnel = [('mode', NM_MODES[mode_name]), ('local', None if local == 'any' else local), ('remote', remote),
              ('parent', p.get('dev'))]
    if mode.iptun:
        ttl, tos, pmtudisc = outer_header(p)
        tunnel += [('ttl', ttl), ('tos', tos), ('path-mtu-discovery', 'true' if pmtudisc else 'false')]
    if mode.keys:
        ikey, okey = key_values(p)
        tunnel += [('input-key', ikey), ('output-key', okey)]
    tunnel.append(('mtu', p.get('mtu')))
    sections = [
        ('connection', [('id', name), ('uuid', str(uuid.uuid5(NM_UUID_NAMESPACE, name))), ('type', 'ip-tunnel'),
                        ('interface-name', name)]),
        ('ip-tunnel', tunnel),
    ]
    for version in (4, 6):
        family = [a for a in addresses if a.local.version == version]
        family_routes = [r for r in routes if r.family == FAMILY[version]]
        for address in family:
            if address.peer is not None:
                raise refuse(name, f'addresses: peer {address.peer.compressed}',
                             'NetworkManager has no point-to-point peer setting; give the address a prefix that holds '
                             'the other end, or a route to it')
        if family_routes and not family:
            raise refuse(name, 'routes', f'NetworkManager installs IPv{version} routes only on a connection with an '
                                         f'IPv{version} address; give the tunnel one')
        entries = [('method', 'manual' if family else 'disabled')]
        entries += [(f'address{n}', f'{a.local.compressed}/{a.prefixlen}') for n, a in enumerate(family, 1)]
        for n, route in enumerate(family_routes, 1):
            zero = '0.0.0.0' if version == 4 else '::'
            metric = route.params.get('metric')
            metric = DEFAULT_METRIC[route.family] if metric is None else metric  # not NetworkManager's per-type metric
            entries.append((f'route{n}', f'{route_destination(route)},{route.gateway or zero},{metric}'))
            if route.params['table'] != RT_TABLE_MAIN:
                entries.append((f'route{n}_options', f"table={route.params['table']}"))
        sections.append((f'ipv{version}', entries))
    return ini(sections)


def file_names(backend: str, name: str) -> tuple:
    if backend == 'networkd':
        return (f'10-linuxnet-{name}.netdev', f'10-linuxnet-{name}.network')
    return (f'linuxnet-{name}.nmconnection',)


def render(backend: str, declaration: Declaration) -> dict:
    """file name -> content (None: the file goes) for every tunnel declared."""
    out: dict = {}
    for tunnel in declaration.tunnels:
        p = tunnel.params
        addresses, routes = declaration.addresses[p['name']], declaration.routes[p['name']]
        if backend == 'networkd':
            texts = (networkd_netdev(p), networkd_network(p, addresses, routes))
        else:
            texts = (networkmanager_keyfile(p, addresses, routes),)
        out.update(zip(file_names(backend, p['name']), texts))
    for name in declaration.absent:
        out.update(dict.fromkeys(file_names(backend, name)))
    return out


# ---------------------------------------------------------------------------
# The resource: the files in one directory

def mode_text(mode: int) -> str:
    return f'{mode:04o}'


class PersistResource(Resource):
    """The files of one declaration in one directory."""

    kind = 'persist'
    has_netns_option = False
    argument_spec = {
        'backend': {'type': 'str', 'required': True, 'choices': list(BACKENDS)},
        'dir': {'type': 'path'},
        'tunnels': {'type': 'list', 'elements': 'dict', 'default': []},
        'addresses': {'type': 'list', 'elements': 'dict', 'default': []},
        'routes': {'type': 'list', 'elements': 'dict', 'default': []},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
        'reload': {'type': 'bool', 'default': False},
    }

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.backend = BACKENDS[params['backend']]
        self.dir = params.get('dir') or self.backend.dir
        self.wanted: dict = {}  # path -> content, None for a file that goes
        self._before: dict = {}  # path -> what plan() read there (None: no file), for putting it back

    def display_name(self) -> str:
        return self.dir

    def validate(self) -> None:
        params = dict(self.params)
        if params['state'] == 'absent':
            # Every file of every listed tunnel goes; the items' contents do not matter.
            params['tunnels'] = [dict(t, state='absent') if isinstance(t, dict) else t for t in params['tunnels'] or []]
            params['addresses'] = params['routes'] = []
        files = render(self.backend.name, declare(params))
        self.wanted = {os.path.join(self.dir, name): text for name, text in files.items()}

    def read(self) -> dict:
        """path -> {content, mode, owner, ours} of the files present among ours."""
        found = {}
        for path in self.wanted:
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ResourceError(f'could not read {path}: {exc.strerror}') from exc
            if not stat.S_ISREG(info.st_mode):
                raise ResourceError(f'{path} is in the way: it is not a regular file, and this module did not write it; '
                                    'it is left alone (move it away, or choose another dir)')
            try:
                with open(path, encoding='utf-8', errors='replace') as handle:
                    content = handle.read()
            except OSError as exc:
                raise ResourceError(f'could not read {path}: {exc.strerror}') from exc
            found[path] = {'content': content, 'mode': stat.S_IMODE(info.st_mode), 'uid': info.st_uid, 'gid': info.st_gid,
                           'ours': content.startswith(MARK)}
        return found

    def plan(self) -> Change | None:
        if not os.path.isdir(self.dir):
            if self.params['state'] == 'absent':
                return None  # no directory, none of our files
            raise ResourceError(f'dir: {self.dir} does not exist (or is not a directory); the {self.backend.daemon} '
                                'configuration directory must be there already')
        current = self.read()
        before, after, differs = {}, {}, []
        for path, content in self.wanted.items():
            found = current.get(path)
            if found is not None and not found['ours']:
                verb = 'removed' if content is None else 'overwritten'
                raise ResourceError(f'{path} is in the way: it has no "{MARK}" line, so this module did not write it, '
                                    f'and it is never {verb}; move it away, or remove the tunnel from the declaration')
            if content is None:
                if found is not None:
                    before[path], after[path] = found['content'], None
                    differs.append(path)
                continue
            if found is not None and (found['content'], found['mode'], found['uid'], found['gid']) == (
                    content, self.backend.mode, ROOT, ROOT):
                continue
            before[path] = None if found is None else found['content']
            after[path] = content
            differs.append(path)
        if not differs:
            return None
        if not os.access(self.dir, os.W_OK):
            raise ResourceError(f'dir: {self.dir} is not writable (a read-only file system, or no permission); nothing '
                                'was written')
        actions = {self._action(before[path], after[path]) for path in differs}
        action = actions.pop() if len(actions) == 1 else UPDATE
        self._before = {path: current.get(path) for path in differs}
        return Change(self.kind, self.name, action, before, after, differs)

    @staticmethod
    def _action(before: str | None, after: str | None) -> str:
        if after is None:
            return DELETE
        return CREATE if before is None else UPDATE

    def file_actions(self, change: Change | None) -> list[dict]:
        """Every file of the declaration and what happens to it (V(none): as wanted already)."""
        out = []
        for path in self.wanted:
            if change is not None and path in change.attributes:
                action = self._action(change.before[path], change.after[path])
            else:
                action = 'none'
            out.append({'path': path, 'action': action})
        return out

    def diffs(self, change: Change | None) -> list[dict]:
        """One before/after text per changed file, which Ansible shows as a unified diff."""
        if change is None:
            return []
        return [{'before': change.before[path] or '', 'after': change.after[path] or '',
                 'before_header': path if change.before[path] is not None else '/dev/null',
                 'after_header': path if change.after[path] is not None else '/dev/null'}
                for path in change.attributes]

    def apply(self, change: Change) -> None:
        done = []
        try:
            for path in change.attributes:
                content = change.after[path]
                if content is None:
                    remove(path)
                else:
                    write_atomically(path, content, self.backend.mode)
                done.append(path)
        except ResourceError:
            self._restore(done)
            raise

    def _restore(self, paths: list) -> None:
        """Put back what this call changed before a later file failed: all or nothing."""
        for path in paths:
            old = self._before[path]
            try:
                if old is None:
                    remove(path)
                else:
                    write_atomically(path, old['content'], old['mode'], (old['uid'], old['gid']))
            except ResourceError:
                pass  # best effort: the original error is what the user needs


def write_atomically(path: str, content: str, mode: int, owner: tuple = (ROOT, ROOT)) -> None:
    """A temporary file in the same directory, renamed over the target: readers see the old or the new file."""
    directory, base = os.path.split(path)
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f'.{base}.')  # hidden: neither daemon reads it
    except OSError as exc:
        raise ResourceError(f'could not write {path}: {exc.strerror}') from exc
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(content)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fchown(handle.fileno(), *owner)
            os.fsync(handle.fileno())
        os.rename(temporary, path)
        sync_dir(directory)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise ResourceError(f'could not write {path}: {exc.strerror}') from exc


def remove(path: str) -> None:
    try:
        os.unlink(path)
        sync_dir(os.path.dirname(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ResourceError(f'could not remove {path}: {exc.strerror}') from exc


def sync_dir(directory: str) -> None:
    """The rename or unlink itself survives a crash only once the directory is on disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def reload_daemon(backend: str, module) -> tuple:
    """(reloaded, warning) after asking the running daemon to read the files again."""
    daemon = BACKENDS[backend].daemon
    command = list(BACKENDS[backend].reload)
    executable = module.get_bin_path(command[0])
    if executable is None:
        return False, f'{command[0]} is not installed, so no running {daemon} was asked to reload; the files apply at its next start'
    rc, out, err = module.run_command([executable] + command[1:])
    if rc == 0:
        return True, ''
    reason = (err or out).strip() or f'exit status {rc}'
    return False, f"'{' '.join(command)}' failed ({reason}): no running {daemon} took the files; they apply at its next start"
