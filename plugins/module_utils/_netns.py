# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Named network namespaces (the ones `ip netns` lists)."""

from __future__ import annotations

import errno
import os

from ansible_collections.linuxnet.tunnels.plugins.module_utils._enter import create_netns, remove_netns
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError, errno_of, kernel_call
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import FALLBACK_DEVICES, NETNS_RUN_DIR, check_netns_name, netns_exists, netns_placeholder
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    CREATE,
    DELETE,
    Change,
    Resource,
)


class NetnsResource(Resource):
    kind = 'netns'
    argument_spec = {
        'name': {'type': 'str', 'required': True},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    }
    has_netns_option = False

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.netns = None  # a namespace is not inside another one

    def validate(self) -> None:
        check_netns_name(self.params['name'], 'name')

    def read(self) -> dict | None:
        name = self.params['name']
        if not netns_exists(name):
            return None
        found = {'name': name, 'path': os.path.join(NETNS_RUN_DIR, name)}
        if netns_placeholder(name):
            found['placeholder'] = True
        return found

    def wanted(self) -> dict:
        return {'name': self.params['name'], 'path': os.path.join(NETNS_RUN_DIR, self.params['name'])}

    def key(self) -> tuple:
        return (self.params['name'],)

    def namespace_options(self) -> list:
        return []

    def own_namespace(self) -> str | None:
        return self.params['name']

    @classmethod
    def topology_items(cls, gatherer, infos: dict) -> dict:
        return {'namespaces': [{'name': netns} for netns in infos if netns is not None]}

    def remember(self, change: Change, forecast) -> None:
        if change.action == CREATE:
            forecast.add_namespace(self.params['name'])

    def plan(self) -> Change | None:
        current = self.read()
        if self.params.get('state', 'present') == 'present':
            if current is None or current.get('placeholder'):
                wanted = self.wanted()
                note = f"{wanted['path']} is an empty file (an interrupted creation or removal left it): replaced" if current else ''
                return Change(self.kind, self.name, CREATE, current, wanted, note=note)
            return None
        if current is not None:
            return Change(self.kind, self.name, DELETE, current, None)
        return None

    def apply(self, change: Change) -> None:
        name = self.params['name']
        if change.action == CREATE:
            self.nl.pending_netns.discard(name)
            if change.before is not None and netns_placeholder(name):
                with kernel_call(f"could not remove the empty file {change.before['path']}"):
                    os.unlink(change.before['path'])
            try:
                with kernel_call(f"could not create network namespace '{name}'"):
                    create_netns(name)  # no fork: see _enter.create_netns
            except ResourceError as exc:
                # pyroute2 leaves its placeholder file behind when the unshare
                # fails; EEXIST means another run made it, and it is not ours.
                if errno_of(exc) != errno.EEXIST:
                    self._remove_quietly(name)
                raise
        elif change.action == DELETE:
            self.remove()

    def undo(self, change: Change) -> None:
        """Rollback: only once nothing else is left in it; a concurrent run's links are not ours to delete."""
        name = self.params['name']
        with kernel_call(f"could not list the links of namespace '{name}'"):
            names = [msg.get('ifname') for msg in self.nl(name).links()]
        strangers = sorted(n for n in names if n != 'lo' and n not in FALLBACK_DEVICES)
        if strangers:
            raise ResourceError(f"kept, it holds links this call did not make ({', '.join(strangers)})")
        self.remove()

    def remove(self) -> None:
        name = self.params['name']
        # An open socket keeps a removed namespace (and its links) alive.
        self.nl.release(name)
        with kernel_call(f"could not delete network namespace '{name}'"):
            try:
                remove_netns(name)
            except FileNotFoundError:
                pass  # someone else removed it first: the goal is reached

    @staticmethod
    def _remove_quietly(name: str) -> None:
        try:
            remove_netns(name)
        except OSError:
            pass
