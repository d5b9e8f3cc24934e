# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Per-namespace sysctls (net.*), runtime only.

/proc/sys/net resolves through the calling thread's namespace, so reads and
writes run in a short-lived thread that has entered the namespace
(run_in_netns). Only keys under net. can be per namespace; a key that does
not exist inside the namespace is global to the host (or does not exist).

With original_file, the first change also keeps the value it replaces in
that file (never overwritten), and state=absent writes it back and deletes
the file: what a lab that borrows the host's forwarding switch needs to
leave the host as it found it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat

from ansible_collections.linuxnet.tunnels.plugins.module_utils._enter import run_in_netns
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import NamespaceMissing, ResourceError, errno_of, kernel_call, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    UPDATE,
    Change,
    Resource,
    compact,
)

PROC_SYS = '/proc/sys'
PROC_SYS_NET = '/proc/sys/net'
BOOLEAN_WORDS = frozenset(('true', 'false', 'yes', 'no', 'on', 'off'))
# net.ipv4.conf.<dev>.*, net.ipv6.neigh.<dev>.*: a new link starts from <default>.
SYSCTL_DEVICE = re.compile(r'^net\.ipv[46]\.(?:conf|neigh)\.([^.]+)\.')
# Writing one of these sets the forwarding of every link (and of new ones) in the namespace.
FORWARDING_SWITCHES = {'net.ipv4.ip_forward': '4', 'net.ipv4.conf.all.forwarding': '4', 'net.ipv6.conf.all.forwarding': '6'}
# What net_info reads of each namespace.
FORWARDING_SYSCTLS = ('net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding')
FORWARDING = re.compile(r'^net\.ipv([46])\.conf\.[^.]+\.forwarding$')


def sysctl_device(name: str) -> str | None:
    """The link a per-device sysctl belongs to ('/' in a key part is a dot, as in sysctl(8))."""
    match = SYSCTL_DEVICE.match(str(name))
    if match is None or match.group(1) in ('all', 'default'):
        return None
    return match.group(1).replace('/', '.')


def forwarding_family(name: str) -> str | None:
    """'4' or '6' for a forwarding switch of a namespace or a link, else None."""
    if name in FORWARDING_SWITCHES:
        return FORWARDING_SWITCHES[name]
    match = FORWARDING.match(str(name))
    return match.group(1) if match else None


def sysctl_path(name: str) -> str:
    """/proc/sys path of a net.* key; a '/' inside a key part is a literal dot, as in sysctl(8).

    net.ipv4.conf.eth0/100.forwarding -> /proc/sys/net/ipv4/conf/eth0.100/forwarding
    """
    text = str(name).strip()
    if not text.startswith('net.'):
        first = text.split('.', 1)[0] or text
        raise ResourceError(f"name: '{name}' is not under net.; only net.* keys belong to a network namespace "
                            f"({first}.* keys are global to the host and are not managed by this module)")
    parts = [part.replace('/', '.') for part in text.split('.')]
    if any(part in ('', '.', '..') or '\0' in part for part in parts):
        raise ResourceError(f"name: '{name}' is not a valid sysctl name (empty parts, '.' or '..' are not allowed)")
    path = os.path.join(PROC_SYS, *parts)
    if os.path.normpath(path) != path or not path.startswith(PROC_SYS_NET + '/'):
        raise ResourceError(f"name: '{name}' does not name a key under {PROC_SYS_NET}")
    return path


def normalise(value: str) -> str:
    """Multi-value sysctls print tab-separated: compare words, not whitespace."""
    return ' '.join(str(value).split())


def _inspect(path: str) -> tuple[str, str | None]:
    """(kind, value) seen from inside the namespace: kind is missing, dir, readonly, writeonly or ok."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return 'missing', None
    if stat.S_ISDIR(mode):
        return 'dir', None
    if not mode & stat.S_IWUSR:
        return 'readonly', _read(path) if mode & stat.S_IRUSR else None
    if not mode & stat.S_IRUSR:
        return 'writeonly', None
    return 'ok', _read(path)


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def _write(path: str, value: str) -> str:
    with open(path, 'w') as handle:
        handle.write(value)
    return _read(path)


class SysctlResource(Resource):
    """One net.* sysctl in one namespace."""

    kind = 'sysctl'
    argument_spec = {
        'name': {'type': 'str', 'required': True},
        'value': {'type': 'str'},
        'original_file': {'type': 'path'},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    }
    module_kwargs = {'required_if': [('state', 'present', ['value'])]}

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.path = ''
        self.previous: str | None = None
        self.original_file: str | None = params.get('original_file') or None
        self.absent = params.get('state') == 'absent'

    def validate(self) -> None:
        self.path = sysctl_path(self.params['name'])
        if '\0' in str(self.params.get('value') or ''):
            raise ResourceError('value: a sysctl value cannot contain a NUL byte')
        if self.original_file and os.path.isdir(self.original_file):
            raise ResourceError(f'original_file: {self.original_file} is a directory; give the path of a file')

    def _inspect(self) -> tuple[str, str | None]:
        if not self.path:
            self.validate()
        with kernel_call(f"could not read {self.params['name']} in {where(self.netns)}"):
            return run_in_netns(self.netns, _inspect, self.path)

    def _kept(self) -> str | None:
        """The value kept in original_file; None without the option or the file."""
        if not self.original_file:
            return None
        try:
            with open(self.original_file) as handle:
                return handle.read().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ResourceError(f'original_file: cannot read {self.original_file}: {exc.strerror}') from exc

    def _public(self, value: str | None, original: str | None = None) -> dict:
        state = {'name': self.params['name'], 'netns': self.netns, 'value': value}
        if self.original_file:
            state['original'] = original
        return state

    def read(self) -> dict | None:
        kind, value = self._inspect()
        return None if kind == 'missing' else self._public(value, self._kept())

    is_setting = True
    uses_option = 'name'

    def key(self) -> tuple:
        return (self.netns, self.path)

    def uses(self) -> list[tuple]:
        dev = sysctl_device(self.params['name'])
        return [(self.netns, dev)] if dev else []

    def wanted(self) -> dict:
        return self._public(str(self.params['value']).strip(), self._kept())

    def removed_on_its_own(self, namespace_goes: bool) -> bool:
        # A kept value goes back, and its file (outside any namespace) goes, even when the namespace goes.
        return bool(self.original_file)

    @classmethod
    def gather(cls, gatherer, session, space) -> None:
        values = {}
        for name in FORWARDING_SYSCTLS:
            # value is required by the spec but unused by read().
            state = cls(gatherer.nl, {'name': name, 'value': '', 'netns': space.netns}).read()
            if state is not None:  # IPv6 may be absent from the kernel
                values[name] = state['value']
        space.found[cls.kind] = values

    @classmethod
    def namespace_facts(cls, gatherer, space) -> dict:
        return {'sysctls': space.found[cls.kind]}

    @classmethod
    def topology_items(cls, gatherer, infos: dict) -> dict:
        return {'sysctls': [compact({'name': name, 'value': value, 'netns': netns})
                            for netns, info in infos.items() for name, value in info['sysctls'].items()]}

    def predict(self, forecast) -> Change | None:
        if self.absent:
            return self.plan()  # the kept file and the value set now: no earlier item changes either
        forced = forecast.facts.get((self.kind, 'forwarding', self.netns, forwarding_family(self.params['name'])))
        if forced is not None:
            # An earlier item switched forwarding for the whole namespace: every link follows.
            if normalise(self.wanted()['value']) == forced:
                return None
            return Change(self.kind, self.name, UPDATE, self._public(forced, self._kept()), self.wanted(), ['value'])
        if forecast.pending(self.netns):
            return Change(self.kind, self.name, UPDATE, None, self.wanted(), ['value'],
                          uncertain='the namespace is made by this task, so the value it starts with is not known yet')
        if any(forecast.made(link) for link in self.uses()):
            return self._predict_from_default()
        return self.plan()

    def _predict_from_default(self) -> Change | None:
        """A sysctl of a link made by this call starts from the namespace's default for new links."""
        name = self.params['name']
        match = SYSCTL_DEVICE.match(name)
        template = SysctlResource(self.nl, dict(self.params, name=f'{name[:match.start(1)]}default{name[match.end(1):]}'))
        template.validate()
        change = template.plan()
        if change is None:
            return None
        return Change(self.kind, self.name, UPDATE, dict(change.before, name=name), dict(change.after, name=name), list(change.attributes))

    def remember(self, change: Change, forecast) -> None:
        if self.absent:
            return
        family = FORWARDING_SWITCHES.get(self.params['name'])
        if family is not None:
            forecast.facts[(self.kind, 'forwarding', self.netns, family)] = normalise(self.params['value'])

    def _current(self) -> str:
        """The value inside the namespace, or a ResourceError saying why the key cannot be managed."""
        name = self.params['name']
        kind, current = self._inspect()
        if kind == 'missing':
            raise ResourceError(f"name: {name} does not exist in {where(self.netns)} (no {self.path}); either there is no such key, "
                                'or it is global to the host and exists only in the initial namespace, so it cannot be set per namespace')
        if kind == 'dir':
            raise ResourceError(f'name: {name} is a group of keys ({self.path} is a directory), not a key')
        if kind == 'writeonly':
            raise ResourceError(f'name: {name} is write-only; it has no value to compare, so it cannot be managed idempotently')
        if kind == 'readonly':
            raise ResourceError(f'name: {name} is read-only in {where(self.netns)} (its value is {current!r}); some net.* keys, '
                                'such as net.core.rmem_max, are global to the host and can only be changed in the initial namespace')
        return current

    def plan(self) -> Change | None:
        if self.absent:
            return self._plan_put_back()
        wanted = self.wanted()
        current = self.previous = self._current()
        if normalise(current) == normalise(wanted['value']):
            return None
        kept = wanted.get('original')
        change = Change(self.kind, self.name, UPDATE, self._public(current, kept), wanted, ['value'])
        if self.original_file and kept is None:
            change.after['original'] = current
            change.attributes.append('original')
            change.note = f'keeps the value found, {current!r}, in {self.original_file}'
        return change

    def _plan_put_back(self) -> Change | None:
        """state=absent: the kept value back in the kernel, and its file gone; nothing kept, nothing to do."""
        kept = self._kept()
        if kept is None:
            return None
        try:
            current = self.previous = self._current()
        except NamespaceMissing:
            return Change(self.kind, self.name, UPDATE, self._public(None, kept), self._public(None), ['original'],
                          note=f'{where(self.netns)} is gone, so only {self.original_file} is deleted')
        attributes = ['value'] if normalise(current) != normalise(kept) else []
        return Change(self.kind, self.name, UPDATE, self._public(current, kept), self._public(kept), attributes + ['original'],
                      note=f'puts back {kept!r} kept in {self.original_file} and deletes the file')

    def apply(self, change: Change) -> None:
        if self.absent:
            self._put_back(change)
            return
        name, value = self.params['name'], str(self.params['value']).strip()
        if self.previous is None:  # planned before the namespace existed
            self.previous = self._inspect()[1]
        # Kept before the write: an interrupted run must not lose the value found.
        kept_now = 'original' in change.attributes and self._keep(self.previous)
        try:
            with kernel_call(f'could not set {name} to {value!r} in {where(self.netns)}'):
                stored = run_in_netns(self.netns, _write, self.path, value)
        except ResourceError as exc:
            if kept_now:
                self._forget()
            if errno_of(exc) == errno.EINVAL and value.lower() in BOOLEAN_WORDS:
                # YAML turns an unquoted yes/true into a boolean, which reaches us as 'True'.
                raise ResourceError(f"{exc}; sysctls take numbers: write '1' or '0' (quoted)") from exc
            raise
        if normalise(stored) != normalise(value):
            # Put the old value back: a value the kernel rewrites would never converge.
            self._restore()
            if kept_now:
                self._forget()
            raise ResourceError(f'value: {name} was set to {value!r} but the kernel stored {stored!r}; '
                                'give the value as the kernel prints it (the previous value was restored)')

    def _keep(self, value: str | None) -> bool:
        """Write the value found into original_file, unless a concurrent run kept one first; True when this run wrote it."""
        path = self.original_file
        partial = f'{path}.{os.getpid()}.partial'
        try:
            os.makedirs(os.path.dirname(path) or '.', mode=0o755, exist_ok=True)
            with open(partial, 'w') as handle:
                handle.write(f'{value}\n')
            os.chmod(partial, 0o644)
            os.link(partial, path)  # whole or not at all, and never over a value kept already
        except FileExistsError:
            return False
        except OSError as exc:
            raise ResourceError(f'original_file: cannot write {path}: {exc.strerror} (nothing was changed)') from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(partial)
        return True

    def _forget(self) -> None:
        try:
            os.unlink(self.original_file)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ResourceError(f'original_file: cannot delete {self.original_file}: {exc.strerror}') from exc

    def _put_back(self, change: Change) -> None:
        kept = change.before['original']
        if 'value' in change.attributes:
            with kernel_call(f"could not put {self.params['name']} back to {kept!r} in {where(self.netns)} "
                             f'(the value stays kept in {self.original_file})'):
                stored = run_in_netns(self.netns, _write, self.path, kept)
            if normalise(stored) != normalise(kept):
                raise ResourceError(f"original_file: {self.params['name']} was set back to {kept!r} but the kernel stored {stored!r} "
                                    f'(the value stays kept in {self.original_file})')
        self._forget()

    def _restore(self) -> None:
        if self.previous is None:
            return
        try:
            run_in_netns(self.netns, _write, self.path, self.previous)
        except (OSError, ResourceError):
            pass

    def result(self, change: Change | None, check_mode: bool) -> dict | None:
        state = super().result(change, check_mode)
        if state is not None:
            state['previous'] = self.previous if self.previous is not None else state['value']
        return state
