# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The mark option of xfrm_state and xfrm_policy.
    DOCUMENTATION = r'''
options:
  mark:
    description:
      - The mark the packets must carry (a firewall mark, or the key of a V(vti) tunnel, which marks what it carries with it).
    type: dict
    suboptions:
      value:
        description: The mark value.
        type: int
        required: true
      mask:
        description: Which bits of the packet's mark are compared.
        type: int
        default: 0xffffffff
'''
