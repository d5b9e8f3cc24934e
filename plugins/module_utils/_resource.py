# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The shape every resource kind shares: read, plan, apply, undo.

A resource reads the kernel, compares it with what was asked for and returns
one Change (or None). Check mode and --diff only read that Change; apply() is
the only step that writes. The topology module drives many resources through
the same four calls.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import (
    NamespaceMissing,
    Netlink,
    ResourceError,
    errno_of,
)

CREATE = 'create'
UPDATE = 'update'
REPLACE = 'replace'  # delete and create again: the kernel cannot change it in place
DELETE = 'delete'


@dataclass
class Change:
    """What one resource's apply() will do, attribute by attribute."""

    kind: str
    name: str
    action: str
    before: dict | None
    after: dict | None
    attributes: list[str] = field(default_factory=list)  # the ones that differ
    note: str = ''  # why, when the action is not obvious (for example a replace)

    def summary(self) -> dict:
        out = {'kind': self.kind, 'name': self.name, 'action': self.action}
        if self.attributes:
            out['attributes'] = list(self.attributes)
        if self.note:
            out['note'] = self.note
        return out

    def diff(self) -> dict:
        return {
            'before': self.before or {},
            'after': self.after or {},
            'before_header': f'{self.kind} {self.name}',
            'after_header': f'{self.kind} {self.name}',
        }


def changed_attributes(current: dict, wanted: dict) -> list[str]:
    """Keys of wanted (None means "don't care") whose value differs."""
    return [key for key, value in wanted.items() if value is not None and current.get(key) != value]


class Resource:
    """Base of every resource kind; subclasses fill in read/plan/apply."""

    kind = 'resource'  # also the key of the module's result
    # The module's options, except netns (added when has_netns_option).
    argument_spec: dict = {}
    has_netns_option = True
    # mutually_exclusive, required_if, ... for AnsibleModule (and the topology items).
    module_kwargs: dict = {}

    def __init__(self, nl: Netlink, params: dict) -> None:
        self.nl = nl
        self.params = params
        self.netns: str | None = params.get('netns') or None
        # Things the user should know that are not errors (the module passes them to module.warn()).
        self.warnings: list[str] = []

    @property
    def name(self) -> str:
        """Identity in messages and diffs, with the namespace when there is one."""
        ident = self.identity()
        return f'{self.netns}/{ident}' if self.netns else ident

    def identity(self) -> str:
        return str(self.params['name'])

    def validate(self) -> None:
        """Refuse bad input before anything is read or touched."""

    def read(self) -> dict | None:
        """Current state as the kernel reports it, or None when absent."""
        raise NotImplementedError

    def plan(self) -> Change | None:
        """plan_state(), where a namespace that vanished meanwhile counts as empty when that is safe."""
        try:
            return self.plan_state()
        except NamespaceMissing:
            if self.absent_when_netns_missing():
                return None  # no namespace, nothing in it
            raise

    def plan_state(self) -> Change | None:
        """The comparison itself; subclasses that need no namespace guard override plan() instead."""
        raise NotImplementedError

    def apply(self, change: Change) -> None:
        """Make the change; undo this call's own partial work on failure."""
        raise NotImplementedError

    def undo(self, change: Change) -> None:
        """Take back an applied CREATE (the topology module's rollback)."""
        if change.action == CREATE:
            self.remove()

    def remove(self) -> None:
        raise NotImplementedError

    def absent_when_netns_missing(self) -> bool:
        """Whether a missing namespace means 'absent' rather than an error."""
        return self.params.get('state') == 'absent' or not self.nl.readable(self.netns)

    def read_or_none(self) -> dict | None:
        """read(), where a missing namespace counts as absent when that is safe."""
        if not self.nl.readable(self.netns):
            return None
        try:
            return self.read()
        except NamespaceMissing:
            if self.absent_when_netns_missing():
                return None
            raise

    def result(self, change: Change | None, check_mode: bool) -> dict | None:
        """The resulting state: predicted in check mode, read back otherwise."""
        if check_mode:
            return change.after if change else self.read_or_none()
        return self.read_or_none()


def converge(resource: Resource, check_mode: bool) -> Change | None:
    """Plan, then apply unless in check mode; returns what was (or would be) done.

    A create that meets EEXIST lost a race with a concurrent run between our
    read and our write: when what is there now is what we want, that is
    success with nothing done by us; when it only differs in what can be
    changed in place (the other run has made it but not yet brought it
    up, say), that update is ours to make.
    """
    change = resource.plan()
    if change is None or check_mode:
        return change
    try:
        resource.apply(change)
    except ResourceError as exc:
        if change.action != CREATE or errno_of(exc) != errno.EEXIST:
            raise
        again = resource.plan()
        if again is None:
            return None
        if again.action != UPDATE:
            raise
        resource.apply(again)
        return again
    return change
