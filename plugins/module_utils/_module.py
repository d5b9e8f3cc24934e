# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every single-resource module does around its resource class."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import HAS_PYROUTE2, Netlink, PYROUTE2_IMPORT_ERROR
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import converge

# The option every in-namespace resource shares (doc fragment linuxnet.tunnels.common).
NETNS_OPTION = {'netns': {'type': 'str'}}


def full_argument_spec(resource_class) -> dict:
    """The module's argument spec: the resource's own options plus netns."""
    spec = dict(NETNS_OPTION) if resource_class.has_netns_option else {}
    spec.update(resource_class.argument_spec)
    return spec


# What ArgumentSpecValidator takes of a resource's module_kwargs.
VALIDATOR_OPTIONS = ('mutually_exclusive', 'required_together', 'required_one_of', 'required_if', 'required_by')
_validators: dict = {}


def check_options(resource_class, options: dict) -> tuple[dict, list[str]]:
    """(options with defaults filled in, problems) against the resource module's own spec (topology items)."""
    validator = _validators.get(resource_class)
    if validator is None:
        kwargs = {k: v for k, v in resource_class.module_kwargs.items() if k in VALIDATOR_OPTIONS}
        validator = _validators[resource_class] = ArgumentSpecValidator(full_argument_spec(resource_class), **kwargs)
    # None is an option left out (Ansible fills in every option of an item whose list has a spec).
    try:
        result = validator.validate({key: value for key, value in options.items() if value is not None})
    except TypeError as exc:  # ansible-core's suboption checks raise on some wrong types instead of refusing them
        return options, [f'invalid options: {exc}']
    problems = []
    for error in result.errors:
        if isinstance(error, UnsupportedError):
            supported = ', '.join(sorted(validator.argument_spec))
            problems.append(f"unsupported option(s) {', '.join(sorted(map(str, result.unsupported_parameters)))} "
                            f'(supported: {supported})')
        else:
            problems.append(str(error))
    return result.validated_parameters, problems


def make_resource(resource_class, nl: Netlink, options: dict):
    """A resource for options we put together ourselves (purge), validated like an item."""
    values, problems = check_options(resource_class, options)
    if problems:  # a bug of ours, not the user's input
        raise ResourceError(f'internal error: {resource_class.kind} {options}: {"; ".join(problems)}')
    resource = resource_class(nl, values)
    resource.validate()
    return resource


def has_secrets(argument_spec: dict) -> bool:
    """Whether an option (or a suboption) is no_log."""
    return any(option.get('no_log') or has_secrets(option.get('options') or {}) for option in argument_spec.values())


def _without_suboptions(option: dict) -> dict:
    """An option without its suboptions; hidden as a whole when any of them was no_log."""
    out = {key: value for key, value in option.items() if key != 'options'}
    if has_secrets(option.get('options') or {}):
        out['no_log'] = True
    return out


def new_module(argument_spec: dict, **kwargs) -> AnsibleModule:
    try:
        module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **kwargs)
    except TypeError as exc:
        # ansible-core 2.19 raises (in set_fallbacks) instead of refusing a number or a boolean given for an option
        # with suboptions; checked without the suboptions, that value is refused with a message (fail_json).
        flat = {name: _without_suboptions(option) for name, option in argument_spec.items()}
        module = AnsibleModule(argument_spec=flat, supports_check_mode=True, **kwargs)
        module.fail_json(msg=f'invalid options: {exc}')
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib('pyroute2'), exception=PYROUTE2_IMPORT_ERROR)
    return module


def run_resource_module(resource_class) -> None:
    """The whole main() of a single-resource module.

    Plan, apply unless in check mode, and exit with the resulting state (under
    the resource's kind), the action, and the diff from the same plan.
    """
    module = new_module(full_argument_spec(resource_class), **resource_class.module_kwargs)
    with Netlink() as nl:
        nl.check_mode = module.check_mode
        resource = resource_class(nl, module.params)
        try:
            resource.validate()
            change = converge(resource, module.check_mode)
            state = resource.result(change, module.check_mode)
        except ResourceError as exc:
            module.fail_json(msg=str(exc))
    for warning in resource.warnings:
        module.warn(warning)
    result = {
        'changed': change is not None,
        'action': change.action if change else 'none',
        resource_class.kind: state,
    }
    if change is not None and change.attributes:
        result['attributes'] = change.attributes
    if change is not None and change.note:
        result['note'] = change.note
    if module._diff:
        result['diff'] = change.diff() if change else {'before': state or {}, 'after': state or {}}
    module.exit_json(**result)
