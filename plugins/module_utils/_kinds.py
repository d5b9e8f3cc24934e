# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The resource kinds a topology takes: one line per kind (see _resource.py for what a kind implements)."""

from __future__ import annotations

from ansible_collections.linuxnet.tunnels.plugins.module_utils._address import AddressResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import LinkResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netns import NetnsResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._route import RouteResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._sysctl import SysctlResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel import TunnelResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._veth import VethResource

# (topology list, resource class), in the order a namespace's items are built
# (removed: backwards). Namespaces, which live in no namespace, come first.
KINDS = (
    ('namespaces', NetnsResource),
    ('veths', VethResource),
    ('tunnels', TunnelResource),
    ('links', LinkResource),
    ('addresses', AddressResource),
    ('routes', RouteResource),
    ('sysctls', SysctlResource),
)
