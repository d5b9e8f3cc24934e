# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The options of echo probes and captures, apart from the code that runs them.

The ping module takes them at its top level; the topology module takes them as
its verify option, and imports the probe code (_probes) only when it verifies.
"""

from __future__ import annotations

# The options of one probe. At the top level they describe the single probe
# (dest) or give the defaults of every item of probes.
PROBE_OPTIONS = {
    'dest': {'type': 'str'},
    'netns': {'type': 'str'},
    'count': {'type': 'int', 'default': 3},
    'interval': {'type': 'float', 'default': 0.2},
    'timeout': {'type': 'float', 'default': 2.0},
    'size': {'type': 'int', 'default': 56},
    'dont_fragment': {'type': 'bool', 'default': False},
    'max_loss': {'type': 'float', 'default': 0},
    'ttl': {'type': 'int'},
    'expect': {'type': 'str', 'choices': ['reply', 'fail'], 'default': 'reply'},
}
# Inherited by each item of probes from the top level when the item leaves them out.
INHERITED = ('netns', 'count', 'interval', 'timeout', 'size', 'dont_fragment', 'max_loss', 'ttl', 'expect')

CAPTURE_SPEC = {
    'type': 'list',
    'elements': 'dict',
    'options': {
        'netns': {'type': 'str'},
        'dev': {'type': 'str', 'required': True},
        'pcap': {'type': 'path'},
    },
}

PING_SPEC = dict(
    PROBE_OPTIONS,
    probes={
        'type': 'list',
        'elements': 'dict',
        # No defaults here: what an item leaves out comes from the top level.
        'options': dict({key: {'type': spec['type']} for key, spec in PROBE_OPTIONS.items()},
                        dest={'type': 'str', 'required': True},
                        expect={'type': 'str', 'choices': ['reply', 'fail']},
                        label={'type': 'str'}),
    },
    capture=CAPTURE_SPEC,
)
PING_KWARGS = {'mutually_exclusive': [('dest', 'probes')], 'required_one_of': [('dest', 'probes')]}

# The topology module's verify: the probes (required), the defaults their items
# take, and the captures, exactly as the ping module takes them.
VERIFY_SPEC = dict({key: spec for key, spec in PING_SPEC.items() if key != 'dest'},
                   probes=dict(PING_SPEC['probes'], required=True))
