# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The namespace option shared by every resource module.
    DOCUMENTATION = r'''
options:
  netns:
    description:
      - Name of the network namespace (as listed by C(ip netns list)) the resource lives in.
      - Omitted means the namespace Ansible itself runs in.
      - The namespace must exist; it is never created as a side effect.
    type: str
requirements:
  - pyroute2 >= 0.9.7 on the managed node
  - 'root privileges (C(become: true)) for anything that changes the kernel'
'''

    # Check mode, diff and platform support of the resource modules.
    ATTRIBUTES = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The check run computes the same plan a real run applies.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: linux
'''

    # The modules that only read (net_info, ping): list it before common.attributes, whose
    # descriptions it keeps and whose support levels it replaces.
    INFO_MODULE = r'''
attributes:
  check_mode:
    support: full
    details:
      - The module changes nothing, so check mode runs it just the same and returns real results.
  diff_mode:
    support: N/A
    details:
      - The module changes nothing.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run indicates no change.
    support: full
'''
