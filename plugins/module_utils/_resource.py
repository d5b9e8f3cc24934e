# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The shape every resource kind shares, and what a kind must implement.

A resource reads the kernel, compares it with what was asked for and returns
one Change (or None). Check mode and --diff only read that Change; apply() is
the only step that writes. The single-resource modules drive one resource
(_module.run_resource_module); the topology module drives many, in order, and
knows nothing of any kind beyond what this protocol asks of its class.

A new kind is one Resource subclass plus one line in _kinds.KINDS (its
topology list name and class), and the matching list option in the topology
module's documentation. The subclass implements:

- kind, argument_spec, module_kwargs, has_netns_option: its module's options
  (topology items take exactly these).
- validate(): refuse bad input from the options alone.
- read(): the current state (a dict) or None; plan_state() (or plan() when it
  needs no namespace guard): the Change; apply(change); remove() when
  CREATE can be rolled back (the default undo() calls it).
- wanted(): the state it will have once created, in read()'s shape. The
  default predict_fresh() returns it as the after of a CREATE.

And, when the defaults do not fit:

- key(): what makes two items of its list the same object (default
  (netns, name)); display_name(): its name in messages and diffs.
- namespace_options(): the (option, namespace) pairs it lives in (default
  [('netns', netns)]); own_namespace(): the namespace it *is* (netns only).
- makes() / uses(): the links, as (netns, ifname), it creates / needs;
  uses_option: the option that names the links it uses (in messages).
- is_setting: True for settings of objects (links, sysctls): state=absent
  in a topology leaves them alone. removed_on_its_own(namespace_goes):
  whether a topology's state=absent removes the object itself (default: not
  a setting, and not inside a namespace that goes anyway).
- predict(forecast): check mode in a topology, given what earlier items would
  have made. The default plans against the kernel, or calls predict_fresh()
  when its namespace or a link it uses is made by this call (nothing of it
  exists yet). remember(change, forecast): what its change makes, for the
  items after it (links it makes or changes, facts of its own kind).
- PREDICTED_UNKNOWN: the state keys check mode cannot know (an ifindex the
  kernel has yet to assign); they are None in a prediction. A prediction
  that may differ from the real run in more than these says why in
  Change.uncertain (the topology module documents each case).

And for net_info (_info.Gatherer), which reads whole namespaces and knows
no kind either; every hook has a default that does nothing:

- gather(gatherer, session, space): read what the kind needs beyond the
  link, address and route dumps while the namespace's socket is open (into
  space.found[kind]).
- link_facts(gatherer, space, msg): keys it adds to net_info's view of a
  link (a veth's peer, a tunnel's parameters); claims_link(link): whether
  such a link is an object of this kind rather than a plain link.
- namespace_facts(gatherer, space): its part of a namespace's result.
- topology_items(gatherer, infos): items, by topology list, that declare
  what the namespaces hold of this kind; in_topology_output = False for a
  kind net_info cannot read back whole (secrets), whose list it leaves out.

The parsing of its kernel messages lives next to the class (link_state,
address_from_msg, route_from_msg, parms_from_msg), and these hooks use the
same functions the plans compare with.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import NamespaceMissing, ResourceError, errno_of
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Netlink

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
    uncertain: str = ''  # check mode: why this prediction may differ from what a real run does

    def summary(self) -> dict:
        out = {'kind': self.kind, 'name': self.name, 'action': self.action}
        if self.attributes:
            out['attributes'] = list(self.attributes)
        if self.note:
            out['note'] = self.note
        if self.uncertain:
            out['uncertain'] = self.uncertain
        return out

    def diff(self) -> dict:
        return {
            'before': self.before or {},
            'after': self.after or {},
            'before_header': f'{self.kind} {self.name}',
            'after_header': f'{self.kind} {self.name}',
        }


def compact(item: dict) -> dict:
    """A topology item without the options left to their defaults (None)."""
    return {key: value for key, value in item.items() if value is not None}


def changed_attributes(current: dict, wanted: dict) -> list[str]:
    """Keys of wanted (None means "don't care") whose value differs."""
    return [key for key, value in wanted.items() if value is not None and current.get(key) != value]


NEW_LOOPBACK = {'kind': None, 'up': False, 'mtu': 65536, 'index': 1, 'new': False}


class Forecast:
    """Check mode in a topology: what the items planned so far would have made.

    links maps (netns, ifname) to what is known of a link earlier items make
    or change: kind, up, mtu, index (when known) and new (made by this call,
    so it carries nothing yet). facts holds what a kind tells later items of
    its own kind, keyed by tuples that start with the kind.
    """

    def __init__(self, nl: Netlink) -> None:
        self.nl = nl
        self.links: dict[tuple, dict] = {}
        self.facts: dict[tuple, object] = {}

    def pending(self, netns: str | None) -> bool:
        """Whether netns is made by this call and not there yet."""
        return not self.nl.readable(netns)

    def made(self, link: tuple) -> bool:
        """Whether the link (netns, ifname) is made (or made again) by this call."""
        return bool(self.links.get(link, {}).get('new'))

    def add_namespace(self, name: str) -> None:
        self.nl.pending_netns.add(name)
        self.links[(name, 'lo')] = dict(NEW_LOOPBACK)


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
        shown = self.display_name()
        return f'{self.netns}/{shown}' if self.netns else shown

    def display_name(self) -> str:
        """The object in messages and diffs, without its namespace."""
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
        """Take back an applied CREATE (the topology module's rollback calls it for CREATEs only)."""
        self.remove()

    def remove(self) -> None:
        raise NotImplementedError

    def wanted(self) -> dict:
        """The state it will have once created, in the shape read() returns."""
        raise NotImplementedError

    # ---- its place in a topology ----------------------------------------

    is_setting = False  # a setting of an object: a topology's state=absent leaves it alone
    in_topology_output = True  # net_info's topology has its list (False: it cannot be read back whole)
    uses_option = 'dev'  # the option naming the links uses() returns
    PREDICTED_UNKNOWN: tuple = ()  # state keys check mode cannot know (None in a prediction)

    def key(self) -> tuple:
        """What makes two items of one topology list the same object."""
        return (self.netns, self.params['name'])

    def removed_on_its_own(self, namespace_goes: bool) -> bool:
        """Whether a topology's state=absent removes it, rather than leaving it alone or letting its namespace take it."""
        return not self.is_setting and not namespace_goes

    def namespace_options(self) -> list[tuple[str, str | None]]:
        """(option, namespace) of each namespace the object lives in (None: the one Ansible runs in)."""
        return [('netns', self.netns)]

    def namespaces(self) -> list[str | None]:
        return list(dict.fromkeys(netns for _option, netns in self.namespace_options()))

    def own_namespace(self) -> str | None:
        """The namespace this object is (the netns kind only)."""
        return None

    def makes(self) -> list[tuple]:
        """The links this object creates, as (netns, ifname)."""
        return []

    def uses(self) -> list[tuple]:
        """The links this object needs, as (netns, ifname)."""
        return []

    # ---- check mode inside a topology -----------------------------------

    def predict(self, forecast: Forecast) -> Change | None:
        """The plan, seen through what earlier items of the same topology would have made."""
        if forecast.pending(self.netns) or any(forecast.made(link) for link in self.uses()):
            return self.predict_fresh(forecast)
        return self.plan()

    def predict_fresh(self, forecast: Forecast) -> Change | None:
        """The plan when its namespace or a link it uses is new: nothing of it exists yet."""
        if self.params.get('state') == 'absent':
            return None
        return Change(self.kind, self.name, CREATE, None, self.wanted())

    def remember(self, change: Change, forecast: Forecast) -> None:
        """Record what this change makes for the items after it."""

    # ---- net_info: what namespaces hold of this kind --------------------

    @classmethod
    def gather(cls, gatherer, session, space) -> None:
        """Read what this kind needs beyond the dumps, while the namespace's socket is open."""

    @classmethod
    def link_facts(cls, gatherer, space, msg) -> dict:
        """Keys this kind adds to net_info's view of a link message."""
        return {}

    @classmethod
    def claims_link(cls, link: dict) -> bool:
        """Whether a link of net_info's view is an object of this kind, not a plain link."""
        return False

    @classmethod
    def namespace_facts(cls, gatherer, space) -> dict:
        """This kind's part of net_info's result for one namespace."""
        return {}

    @classmethod
    def topology_items(cls, gatherer, infos: dict) -> dict:
        """{topology list: items} declaring what the namespaces read (infos: netns -> result) hold of this kind."""
        return {}

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
