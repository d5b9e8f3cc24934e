# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A whole topology in one call, driven through the resource classes.

Every list item is validated against the argument spec of its resource
module and by the resource's own validate() before anything is read or
touched. Each item is then planned and, unless in check mode, applied right
away, in dependency order, through exactly the classes the single-resource
modules use: later plans see what earlier items made. Check mode asks each
resource to predict its plan given what earlier items of the same call would
have made (Resource.predict and remember, with a Forecast). A failure stops
the run and removes again what this call created.

Nothing here knows a kind: the kinds come from _kinds.KINDS, and everything
about one lives in its class (see _resource.py).
"""

from __future__ import annotations

import traceback

from ansible_collections.linuxnet.tunnels.plugins.module_utils._kinds import KINDS
from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import get_link
from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import check_options, full_argument_spec, has_secrets, new_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError, kernel_call, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import FALLBACK_DEVICES, netns_exists
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Netlink
from ansible_collections.linuxnet.tunnels.plugins.module_utils._probe_options import VERIFY_SPEC
from ansible_collections.linuxnet.tunnels.plugins.module_utils._purge import Purge
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    CREATE,
    DELETE,
    REPLACE,
    UPDATE,
    Change,
    Forecast,
    Resource,
    converge,
)


def named_by_a_string(resource_class) -> bool:
    """Whether a name alone makes an item of the kind (namespaces: [ns1, ns2]): nothing else is ever required."""
    required = {option for option, spec in resource_class.argument_spec.items() if spec.get('required')}
    return required == {'name'} and not resource_class.module_kwargs.get('required_if')


def list_spec(resource_class) -> dict:
    """A topology list; a kind with secrets gives its items its spec, so that Ansible hides just those (no_log)."""
    spec = {'type': 'list', 'elements': 'raw' if named_by_a_string(resource_class) else 'dict', 'default': []}
    if has_secrets(resource_class.argument_spec):
        spec['options'] = full_argument_spec(resource_class)
    return spec


ARGUMENT_SPEC: dict = {key: list_spec(cls) for key, cls in KINDS}
ARGUMENT_SPEC.update({
    'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    'purge': {'type': 'bool', 'default': False},
    'verify': {'type': 'dict', 'options': VERIFY_SPEC},
})


class TopologyFailed(ResourceError):
    """A failure after the run started, with what was done and undone."""

    def __init__(self, message: str, details: dict) -> None:
        super().__init__(message)
        self.details = details


class Item:
    """One list item (or one thing purge removes) and its resource."""

    __slots__ = ('key', 'index', 'resource')

    def __init__(self, key: str, index: int | None, resource: Resource) -> None:
        self.key = key  # the topology list
        self.index = index  # None: found by purge
        self.resource = resource

    @property
    def params(self) -> dict:
        return self.resource.params

    @property
    def label(self) -> str:
        return 'purge' if self.index is None else f'{self.key}[{self.index}]'

    def __str__(self) -> str:
        return f'{self.label} ({self.resource.name})'


def item_options(resource_class, options) -> dict | None:
    """An item as options; a plain string is the name, where a name alone makes an item."""
    if isinstance(options, str) and named_by_a_string(resource_class):
        return {'name': options}
    return options if isinstance(options, dict) else None


def build_items(nl: Netlink, params: dict, absent: bool) -> list[Item]:
    """Every item validated, in registry order, or one ResourceError listing every bad item."""
    items: list[Item] = []
    errors: list[str] = []
    for key, resource_class in KINDS:
        takes_absent = 'absent' in (resource_class.argument_spec.get('state', {}).get('choices') or ())
        for index, given in enumerate(params.get(key) or []):
            label = f'{key}[{index}]'
            options = item_options(resource_class, given)
            if options is None:
                errors.append(f'{label}: an item must be a dictionary of options of the {resource_class.kind} module, not {given!r}')
                continue
            if absent and takes_absent:
                # state=absent removes every listed object, whatever the item says.
                options = dict(options, state='absent')
            values, problems = check_options(resource_class, options)
            if problems:
                errors.append(f'{label}: {"; ".join(problems)}')
                continue
            item = Item(key, index, resource_class(nl, values))
            try:
                item.resource.validate()
            except ResourceError as exc:
                errors.append(f'{item}: {exc}')
                continue
            items.append(item)
    if not errors:
        errors = cross_check(items, absent)
    if errors:
        raise ResourceError(f'invalid topology (nothing was changed): {" | ".join(errors)}')
    return items


def cross_check(items: list[Item], absent: bool) -> list[str]:
    """What only the whole topology shows: duplicates, one link made twice, unknown namespaces."""
    errors: list[str] = []
    seen: dict = {}
    for item in items:
        ident = (item.key,) + item.resource.key()
        if ident in seen:
            errors.append(f'{item}: declared twice (also {seen[ident].label})')
        else:
            seen[ident] = item
    if errors:
        return errors
    makers: dict = {}
    for item in items:
        for link in item.resource.makes():
            if link in makers:
                errors.append(f"{item}: link '{link[1]}' in {where(link[0])} is also made by {makers[link]}")
            makers[link] = item
    if absent:
        return errors  # a namespace that is not there holds nothing to remove
    declared = {i.resource.own_namespace() for i in items if i.params.get('state') != 'absent'} - {None}
    for item in items:
        if item.params.get('state') == 'absent':
            continue
        for option, netns in item.resource.namespace_options():
            if netns and netns not in declared and not netns_exists(netns):
                errors.append(f"{item}: {option}: network namespace '{netns}' does not exist and is not declared under namespaces")
    return errors


class Topology:
    """Plans and applies a validated topology; `done` is what was (or would be) changed."""

    def __init__(self, nl: Netlink, params: dict, check_mode: bool) -> None:
        self.nl = nl
        self.check_mode = nl.check_mode = check_mode
        self.absent = params['state'] == 'absent'
        self.purge = bool(params.get('purge')) and not self.absent
        self.items = build_items(nl, params, self.absent)
        self.done: list[tuple[Item, Change]] = []
        self.rolled_back: list[str] = []
        self.warnings: list[str] = []
        self.forecast = Forecast(nl)  # check mode: what earlier items would have made
        # state=absent: the listed namespaces that exist (and are about to go).
        self.removed_netns: set[str] = set()

    # ---- order -------------------------------------------------------------

    def _ordered(self) -> tuple[list[Item], list[Item]]:
        """(the namespaces, every other item) in an order that respects what each item needs.

        The items that live in no namespace (the namespaces themselves) come
        first. Then namespace by namespace its items in registry order, where
        one with ends in several namespaces (a veth) comes with the first of
        them, so that what a namespace's items need of it is made first.
        Namespaces with the fewest such items come first, so that a hub
        comes last: each spoke's socket is then used in one stretch and the
        hub's stays open, instead of every socket being opened again once
        more than Netlink.MAX_OPEN namespaces were touched.
        """
        spaces: list[Item] = []
        groups: dict = {}
        spanning: dict = {}
        for item in self.items:
            homes = item.resource.namespaces()
            if not homes:
                spaces.append(item)
            for netns in homes:
                groups.setdefault(netns, []).append(item)
                if len(homes) > 1:
                    spanning[netns] = spanning.get(netns, 0) + 1
        steps: list[Item] = []
        placed: set = set()
        for netns in sorted(groups, key=lambda name: spanning.get(name, 0)):  # stable: otherwise as declared
            for item in groups[netns]:
                if id(item) not in placed:
                    placed.add(id(item))
                    steps.append(item)
        return spaces, steps

    def _present_steps(self) -> list[Item]:
        spaces, steps = self._ordered()
        return spaces + steps

    def _absent_steps(self) -> list[Item]:
        # Backwards; what lives only in namespaces that go anyway goes with them, not one by one.
        spaces, steps = self._ordered()
        steps = [item for item in reversed(steps) if item.resource.removed_on_its_own(self._goes_with_namespace(item))]
        return steps + list(reversed(spaces))

    def _goes_with_namespace(self, item: Item) -> bool:
        homes = set(item.resource.namespaces())
        return bool(homes) and None not in homes and homes <= self.removed_netns

    # ---- running -----------------------------------------------------------

    def run(self) -> None:
        if self.absent:
            self.removed_netns = {name for name in (i.resource.own_namespace() for i in self.items) if name and netns_exists(name)}
            steps = self._absent_steps()
        else:
            steps = self._purge_steps() if self.purge else []
            steps += self._present_steps()
        item = None
        try:
            for item in steps:
                change = self._step(item)
                self.warnings += item.resource.warnings
                if change is not None:
                    if item.index is None and not change.note:
                        change.note = 'not declared (purge)'
                    self.done.append((item, change))
        except ResourceError as exc:
            raise self._failed(item, exc) from exc
        except Exception as exc:  # a bug of ours must not leave half a lab behind either
            failure = self._failed(item, ResourceError(f'unexpected {type(exc).__name__}: {exc}'))
            failure.details['exception'] = traceback.format_exc()
            raise failure from exc

    def _step(self, item: Item) -> Change | None:
        removal = self.absent or item.index is None
        if self.check_mode:
            if removal:
                change = self._plan_removal(item)
            else:
                self._check_will_exist(item)
                change = item.resource.predict(self.forecast)
            if change is not None:
                item.resource.remember(change, self.forecast)
            return change
        if removal:
            change = self._plan_removal(item)
            if change is not None:
                item.resource.apply(change)
            return change
        return converge(item.resource, False)

    def _plan_removal(self, item: Item) -> Change | None:
        """A removal's plan; a missing namespace or link means nothing to do."""
        try:
            return item.resource.plan()
        except ResourceError:
            if self._something_missing(item):
                return None
            raise

    def _something_missing(self, item: Item) -> bool:
        if any(netns and not netns_exists(netns) for netns in item.resource.namespaces()):
            return True
        for netns, ifname in item.resource.uses():
            try:
                with kernel_call(f"could not read link '{ifname}' in {where(netns)}"):
                    if get_link(self.nl(netns), ifname) is None:
                        return True
            except ResourceError:
                return True
        return False

    def _check_will_exist(self, item: Item) -> None:
        """Check mode: a link in a namespace this call makes exists only if an earlier item makes it (or it is lo)."""
        if item.params.get('state') == 'absent':
            return
        for netns, ifname in item.resource.uses():
            if not self.forecast.pending(netns) or (netns, ifname) in self.forecast.links or ifname in FALLBACK_DEVICES:
                continue
            raise ResourceError(f"{item.resource.uses_option}: link '{ifname}' does not exist in {where(netns)}: the namespace is "
                                'made by this topology, and only lo and the links the topology declares will be in it')

    # ---- purge -------------------------------------------------------------

    def _purge_steps(self) -> list[Item]:
        purge = Purge(self.nl, [item.resource for item in self.items])
        steps = [Item(resource.kind, None, resource) for resource in purge.steps()]
        self.warnings += purge.warnings
        return steps

    # ---- failure -----------------------------------------------------------

    def _failed(self, item: Item | None, exc: ResourceError) -> TopologyFailed:
        message = f'{item}: {exc}' if item is not None else str(exc)
        if not self.check_mode:
            undone, failed = self._rollback()
            if undone:
                message += f'. Rolled back what this call had created: {", ".join(undone)}'
            if failed:
                message += f'. Could NOT roll back: {"; ".join(failed)}'
            kept = [f'{i} {c.action}' for i, c in self.done if c.action != CREATE]
            if kept:
                message += f'. Changes to what existed before stay: {", ".join(kept)}'
        return TopologyFailed(message, {'changes': self._summaries(), 'rolled_back': self.rolled_back})

    def _rollback(self) -> tuple[list[str], list[str]]:
        """Undo every creation of this call, newest first, each object on its own (Resource.undo)."""
        undone, failed = [], []
        for item, change in reversed(self.done):
            if change.action != CREATE:
                continue
            try:
                item.resource.undo(change)
            except ResourceError as exc:
                failed.append(f'{item}: {exc}')
                continue
            undone.append(str(item))
            self.rolled_back.append(f'{change.kind} {change.name}')
        return undone, failed

    # ---- result ------------------------------------------------------------

    def _summaries(self) -> list[dict]:
        return [dict(change.summary(), item=item.label) for item, change in self.done]

    def result(self, diff: bool) -> dict:
        changes = [change for _item, change in self.done]
        by_action = {
            'created': [c for c in changes if c.action == CREATE],
            'updated': [c for c in changes if c.action in (UPDATE, REPLACE)],
            'removed': [c for c in changes if c.action == DELETE],
        }
        out: dict = {'changed': bool(changes), 'changes': self._summaries()}
        for key, found in by_action.items():
            out[key] = [f'{c.kind} {c.name}' for c in found]
        out['counts'] = {key: len(found) for key, found in by_action.items()}
        if diff:
            out['diff'] = [c.diff() for c in changes]
        return out


def run_topology_module() -> None:
    """The whole main() of the topology module."""
    module = new_module(ARGUMENT_SPEC)
    verify = module.params['verify']
    probes = None
    if verify:
        # Only a topology that verifies pays for the probe code.
        from ansible_collections.linuxnet.tunnels.plugins.module_utils import _probes as probes

        if module.params['state'] == 'absent':
            module.fail_json(msg='verify: only with state=present (there is nothing to ping once a topology is removed)')
        try:
            probes.checked(verify)
        except ResourceError as exc:
            module.fail_json(msg=f'verify: {exc}')
    with Netlink() as nl:
        try:
            topology = Topology(nl, module.params, module.check_mode)
            topology.run()
        except TopologyFailed as exc:
            module.fail_json(msg=str(exc), **exc.details)
        except ResourceError as exc:
            module.fail_json(msg=str(exc))
        result = topology.result(module._diff)
    for warning in topology.warnings:
        module.warn(warning)
    # Check mode builds nothing, so there is nothing to ping yet.
    if probes and not module.check_mode:
        try:
            result['verification'], failure = probes.ping(verify)
        except ResourceError as exc:
            module.fail_json(msg=f'verify: {exc}', **result)
        if failure:
            module.fail_json(msg=f'verify: {failure}', **result)
    module.exit_json(**result)
