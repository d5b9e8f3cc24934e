# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IPsec policies (XFRM policies), as `ip xfrm policy` makes them.

A policy is found by what the kernel tells policies apart by: direction,
selector (source and destination networks) and mark. Priority and the
template are changed in place (XFRM_MSG_UPDPOLICY). A template that no state
matches is only a warning: IKE daemons install policies before they have
negotiated the states.
"""

from __future__ import annotations

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    CREATE,
    DELETE,
    UPDATE,
    Change,
    Resource,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._xfrm import (
    ALL_ALGORITHMS,
    DIRECTIONS,
    MARK_SPEC,
    MODES,
    PROTOCOLS,
    UNLIMITED,
    XFRM_MSG_DELPOLICY,
    XFRM_MSG_GETPOLICY,
    XFRM_MSG_GETSA,
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_UPDPOLICY,
    check_same_family,
    dump,
    dump_namespace,
    family_of,
    mark_of,
    mark_text,
    mark_view,
    packed,
    parse_address,
    parse_mark,
    parse_prefix,
    send,
    unpacked,
    xfrm_session,
    xfrm_userpolicy_id,
    xfrm_userpolicy_info,
)

DIRECTION_NAMES = {number: name for name, number in DIRECTIONS.items()}
ACTIONS = {0: 'allow', 1: 'block'}
PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}
MODE_NAMES = {number: name for name, number in MODES.items()}
TEMPLATE_OPTIONS = ('src', 'dst', 'proto', 'mode', 'reqid', 'spi')


def selector_fields(src, dst) -> dict:
    """struct xfrm_selector of two networks (any protocol and port)."""
    return {
        'sel_saddr': packed(src.network_address), 'sel_prefixlen_s': src.prefixlen,
        'sel_daddr': packed(dst.network_address), 'sel_prefixlen_d': dst.prefixlen,
        'sel_family': family_of(src),
    }


def selector_of(msg) -> dict:
    """The selector of a kernel policy, in the terms selector_fields() takes, for comparison."""
    return {name: msg[name] for name in ('sel_saddr', 'sel_prefixlen_s', 'sel_daddr', 'sel_prefixlen_d', 'sel_family')}


def narrow_selector(msg) -> bool:
    """Whether a policy also selects by protocol, port or interface (which this module does not manage)."""
    return any(msg[name] for name in ('sel_proto', 'sel_sport', 'sel_dport', 'sel_ifindex'))


def template_view(template: dict) -> dict:
    family = template['family']
    return {
        'src': unpacked(template['saddr'], family),
        'dst': unpacked(template['daddr'], family),
        'proto': PROTOCOL_NAMES.get(template['proto'], str(template['proto'])),
        'mode': MODE_NAMES.get(template['mode'], str(template['mode'])),
        'reqid': template['reqid'],
        'spi': template['spi'],
    }


def policy_view(msg, netns: str | None) -> dict:
    family = msg['sel_family']
    return {
        'src': f"{unpacked(msg['sel_saddr'], family)}/{msg['sel_prefixlen_s']}",
        'dst': f"{unpacked(msg['sel_daddr'], family)}/{msg['sel_prefixlen_d']}",
        'dir': DIRECTION_NAMES.get(msg['dir'], str(msg['dir'])),
        'action': ACTIONS.get(msg['action'], str(msg['action'])),
        'priority': msg['priority'],
        'mark': mark_view(*mark_of(msg)),
        'templates': [template_view(template) for template in msg.get_attr('XFRMA_TMPL') or []],
        'netns': netns,
    }


def template_differs(current: list, wanted: list) -> bool:
    """Whether the templates differ; a wanted value of None (spi, reqid not given) matches any."""
    if len(current) != len(wanted):
        return True
    return any(value is not None and have.get(key) != value
               for have, want in zip(current, wanted) for key, value in want.items())


def state_matches(state: dict, template: dict) -> bool:
    """Whether the kernel would use this state (a state_view-like dict of the message) for the template."""
    return (template['dst'] in (state['dst'], '0.0.0.0', '::') and template['src'] in (state['src'], '0.0.0.0', '::')
            and state['proto'] == template['proto'] and state['mode'] == template['mode']
            and (not template['reqid'] or state['reqid'] == template['reqid'])
            and (not template['spi'] or state['spi'] == template['spi']))


class XfrmPolicyResource(Resource):
    """One IPsec policy in one namespace."""

    kind = 'xfrm_policy'
    argument_spec = {
        'src': {'type': 'str', 'required': True},
        'dst': {'type': 'str', 'required': True},
        'dir': {'type': 'str', 'choices': list(DIRECTIONS), 'required': True},
        'template': {'type': 'dict', 'options': {
            'src': {'type': 'str'},
            'dst': {'type': 'str'},
            'proto': {'type': 'str', 'choices': list(PROTOCOLS), 'default': 'esp'},
            'mode': {'type': 'str', 'choices': list(MODES), 'default': 'tunnel'},
            'reqid': {'type': 'int'},
            'spi': {'type': 'int'},
        }},
        'mark': MARK_SPEC,
        'priority': {'type': 'int'},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    }

    # net_info: what the namespace holds (states without their keys); no topology items, as keys cannot be read back into one.
    in_topology_output = False

    @classmethod
    def gather(cls, gatherer, session, space) -> None:
        space.found[cls.kind] = [policy_view(msg, space.netns) for msg in dump_namespace(space.netns, XFRM_MSG_GETPOLICY)]

    @classmethod
    def namespace_facts(cls, gatherer, space) -> dict:
        return {'xfrm_policies': space.found[cls.kind]}

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.src = self.dst = None  # the selector's networks, parsed by validate()
        self.template: dict | None = None  # the template option with its addresses checked

    def display_name(self) -> str:
        value, mask = parse_mark(self.params.get('mark'))
        return f"dir {self.params['dir']} {self.params['src']} -> {self.params['dst']}{mark_text(value, mask)}"

    def key(self) -> tuple:
        return (self.netns, self.params['dir'], str(self.src), str(self.dst), parse_mark(self.params.get('mark')))

    def validate(self) -> None:
        params = self.params
        self.src = parse_prefix(params['src'], 'src')
        self.dst = parse_prefix(params['dst'], 'dst')
        check_same_family('src', self.src, 'dst', self.dst)
        parse_mark(params.get('mark'))
        if params.get('priority') is not None and not 0 <= params['priority'] <= 0xffffffff:
            raise ResourceError(f"priority: {params['priority']} is outside 0..0xffffffff")
        if params.get('template'):
            self.template = self._check_template(params['template'])

    def _check_template(self, option: dict) -> dict:
        mode = option.get('mode') or 'tunnel'
        addresses = {}
        for end in ('src', 'dst'):
            if option.get(end):
                addresses[end] = parse_address(option[end], f'template.{end}')
            elif mode == 'tunnel':
                raise ResourceError(f'template.{end}: a tunnel-mode template needs both tunnel endpoints (src and dst)')
        if len(addresses) == 2:
            check_same_family('template.src', addresses['src'], 'template.dst', addresses['dst'])
        for name in ('reqid', 'spi'):
            if option.get(name) is not None and not 0 <= option[name] <= 0xffffffff:
                raise ResourceError(f'template.{name}: {option[name]} is outside 0..0xffffffff')
        family = family_of(next(iter(addresses.values()), self.src))
        unspecified = '0.0.0.0' if family == 2 else '::'
        return {
            'src': str(addresses.get('src', unspecified)),
            'dst': str(addresses.get('dst', unspecified)),
            'proto': option.get('proto') or 'esp',
            'mode': mode,
            'reqid': option.get('reqid'),
            'spi': option.get('spi'),
            'family': family,
        }

    # Reading -----------------------------------------------------------------

    def _matches(self, msg) -> bool:
        return (msg['dir'] == DIRECTIONS[self.params['dir']] and selector_of(msg) == selector_fields(self.src, self.dst)
                and not narrow_selector(msg) and mark_of(msg) == parse_mark(self.params.get('mark')))

    def read(self) -> dict | None:
        with xfrm_session(self.netns, 'could not list the IPsec policies') as session:
            found = next((msg for msg in dump(session, XFRM_MSG_GETPOLICY) if self._matches(msg)), None)
        return policy_view(found, self.netns) if found is not None else None

    # Planning ----------------------------------------------------------------

    def wanted_templates(self, current: dict | None) -> list[dict]:
        """The template as it will be: where reqid or spi is left out, what is there (or 0)."""
        if self.template is None:
            return []
        have = (current or {}).get('templates') or [{}]
        template = {key: self.template[key] for key in TEMPLATE_OPTIONS}
        for key in ('reqid', 'spi'):
            if template[key] is None:
                template[key] = have[0].get(key) or 0
        return [template]

    def wanted(self) -> dict:
        return self._after(None)

    def _after(self, current: dict | None) -> dict:
        """What the policy will be: the options, and where one is left out, what is there (or the default)."""
        priority = self.params.get('priority')
        return {
            'src': str(self.src), 'dst': str(self.dst), 'dir': self.params['dir'], 'action': 'allow',
            'priority': priority if priority is not None else (current or {}).get('priority', 0),
            'mark': mark_view(*parse_mark(self.params.get('mark'))),
            'templates': self.wanted_templates(current),
            'netns': self.netns,
        }

    def plan_state(self) -> Change | None:
        current = self.read()
        if self.params.get('state', 'present') == 'absent':
            return Change(self.kind, self.name, DELETE, current, None) if current else None
        self._warn_without_state()
        after = self._after(current)
        if current is None:
            return Change(self.kind, self.name, CREATE, None, after)
        changed = [key for key in ('action', 'priority') if current[key] != after[key]]
        if template_differs(current['templates'], after['templates']):
            changed.append('templates')
        if not changed:
            return None
        return Change(self.kind, self.name, UPDATE, current, after, changed)

    def _warn_without_state(self) -> None:
        """A template that no state matches makes the policy drop what it selects: say so, without failing."""
        if self.template is None:
            return
        template = dict(self.template, reqid=self.template['reqid'] or 0, spi=self.template['spi'] or 0)
        with xfrm_session(self.netns, 'could not list the IPsec states') as session:
            states = [template_view(msg) for msg in dump(session, XFRM_MSG_GETSA) if msg['family'] == template['family']]
        if not any(state_matches(state, template) for state in states):
            self.warnings.append(
                f"template: no IPsec state in {where(self.netns)} matches the template of policy {self.name} "
                f"(src {template['src']} dst {template['dst']} proto {template['proto']} mode {template['mode']}"
                f"{' reqid %d' % template['reqid'] if template['reqid'] else ''}); until one exists, the traffic the "
                'policy selects is dropped (as when an IKE daemon has not negotiated the states yet)')

    # Writing -----------------------------------------------------------------

    def _selector(self) -> dict:
        return selector_fields(self.src, self.dst)

    def _mark_attrs(self) -> list:
        value, mask = parse_mark(self.params.get('mark'))
        return [('XFRMA_MARK', {'v': value, 'm': mask})] if (value, mask) != (0, 0) else []

    def new_message(self, after: dict):
        """XFRM_MSG_NEWPOLICY/UPDPOLICY for the planned policy, as `ip xfrm policy add` builds it."""
        msg = xfrm_userpolicy_info()
        msg.update(UNLIMITED)
        msg.update(self._selector())
        msg.update({'priority': after['priority'], 'dir': DIRECTIONS[after['dir']], 'action': 0})
        attrs = self._mark_attrs()
        if after['templates']:
            template = after['templates'][0]
            family = self.template['family']
            attrs.append(('XFRMA_TMPL', [{
                'daddr': packed(parse_address(template['dst'], 'template.dst')),
                'saddr': packed(parse_address(template['src'], 'template.src')),
                'spi': template['spi'], 'proto': PROTOCOLS[template['proto']], 'family': family,
                'reqid': template['reqid'], 'mode': MODES[template['mode']],
                'aalgos': ALL_ALGORITHMS, 'ealgos': ALL_ALGORITHMS, 'calgos': ALL_ALGORITHMS,
            }]))
        msg['attrs'] = attrs
        return msg

    def apply(self, change: Change) -> None:
        if change.action == DELETE:
            self.remove()
            return
        verb = 'add' if change.action == CREATE else 'update'
        with xfrm_session(self.netns, f'could not {verb} IPsec policy {self.display_name()}') as session:
            if change.action == CREATE:
                send(session, self.new_message(change.after), XFRM_MSG_NEWPOLICY, create=True)
            else:
                send(session, self.new_message(change.after), XFRM_MSG_UPDPOLICY)

    def remove(self) -> None:
        msg = xfrm_userpolicy_id()
        msg.update(self._selector())
        msg['dir'] = DIRECTIONS[self.params['dir']]
        msg['attrs'] = self._mark_attrs()
        with xfrm_session(self.netns, f'could not delete IPsec policy {self.display_name()}') as session:
            send(session, msg, XFRM_MSG_DELPOLICY)
