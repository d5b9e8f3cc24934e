# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Per-namespace sysctls (net.*), runtime only.

/proc/sys/net resolves through the calling thread's namespace, so reads and
writes run in a short-lived thread that has entered the namespace
(run_in_netns). Only keys under net. can be per namespace; a key that does
not exist inside the namespace is global to the host (or does not exist).
"""

from __future__ import annotations

import errno
import os
import re
import stat

from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import (
    ResourceError,
    errno_of,
    kernel_call,
    run_in_netns,
    where,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    UPDATE,
    Change,
    Resource,
)

PROC_SYS = '/proc/sys'
PROC_SYS_NET = '/proc/sys/net'
BOOLEAN_WORDS = frozenset(('true', 'false', 'yes', 'no', 'on', 'off'))
# net.ipv4.conf.<dev>.*, net.ipv6.neigh.<dev>.*: a new link starts from <default>.
SYSCTL_DEVICE = re.compile(r'^net\.ipv[46]\.(?:conf|neigh)\.([^.]+)\.')
# Writing one of these sets the forwarding of every link (and of new ones) in the namespace.
FORWARDING_SWITCHES = {'net.ipv4.ip_forward': '4', 'net.ipv4.conf.all.forwarding': '4', 'net.ipv6.conf.all.forwarding': '6'}
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
        'value': {'type': 'str', 'required': True},
    }

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.path = ''
        self.previous: str | None = None

    def validate(self) -> None:
        self.path = sysctl_path(self.params['name'])
        if '\0' in str(self.params['value']):
            raise ResourceError('value: a sysctl value cannot contain a NUL byte')

    def _inspect(self) -> tuple[str, str | None]:
        if not self.path:
            self.validate()
        with kernel_call(f"could not read {self.params['name']} in {where(self.netns)}"):
            return run_in_netns(self.netns, _inspect, self.path)

    def _public(self, value: str | None) -> dict:
        return {'name': self.params['name'], 'netns': self.netns, 'value': value}

    def read(self) -> dict | None:
        kind, value = self._inspect()
        return None if kind == 'missing' else self._public(value)

    is_setting = True
    uses_option = 'name'

    def key(self) -> tuple:
        return (self.netns, self.path)

    def uses(self) -> list[tuple]:
        dev = sysctl_device(self.params['name'])
        return [(self.netns, dev)] if dev else []

    def wanted(self) -> dict:
        return self._public(str(self.params['value']).strip())

    def predict(self, forecast) -> Change | None:
        forced = forecast.facts.get((self.kind, 'forwarding', self.netns, forwarding_family(self.params['name'])))
        if forced is not None:
            # An earlier item switched forwarding for the whole namespace: every link follows.
            if normalise(self.wanted()['value']) == forced:
                return None
            return Change(self.kind, self.name, UPDATE, self._public(forced), self.wanted(), ['value'])
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
        family = FORWARDING_SWITCHES.get(self.params['name'])
        if family is not None:
            forecast.facts[(self.kind, 'forwarding', self.netns, family)] = normalise(self.params['value'])

    def plan(self) -> Change | None:
        name = self.params['name']
        wanted = self.wanted()
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
        self.previous = current
        if normalise(current) == normalise(wanted['value']):
            return None
        return Change(self.kind, self.name, UPDATE, self._public(current), wanted, ['value'])

    def apply(self, change: Change) -> None:
        name, value = self.params['name'], str(self.params['value']).strip()
        if self.previous is None:  # planned before the namespace existed
            self.previous = self._inspect()[1]
        try:
            with kernel_call(f'could not set {name} to {value!r} in {where(self.netns)}'):
                stored = run_in_netns(self.netns, _write, self.path, value)
        except ResourceError as exc:
            if errno_of(exc) == errno.EINVAL and value.lower() in BOOLEAN_WORDS:
                # YAML turns an unquoted yes/true into a boolean, which reaches us as 'True'.
                raise ResourceError(f"{exc}; sysctls take numbers: write '1' or '0' (quoted)") from exc
            raise
        if normalise(stored) != normalise(value):
            # Put the old value back: a value the kernel rewrites would never converge.
            self._restore()
            raise ResourceError(f'value: {name} was set to {value!r} but the kernel stored {stored!r}; '
                                'give the value as the kernel prints it (the previous value was restored)')

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
