# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every single-resource module does around its resource class."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import (
    HAS_PYROUTE2,
    PYROUTE2_IMPORT_ERROR,
    Netlink,
    ResourceError,
)
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
    result = validator.validate(options)
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


def new_module(argument_spec: dict, **kwargs) -> AnsibleModule:
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **kwargs)
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
