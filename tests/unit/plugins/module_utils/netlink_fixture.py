"""Recorded rtnetlink messages (fixtures/netlink_dump.json, made by fixtures/record_netlink.py), parsed by pyroute2."""

from __future__ import annotations

import json
import os

from pyroute2.netlink.rtnl.marshal import MarshalRtnl

HERE = os.path.dirname(os.path.abspath(__file__))


def recorded(kind: str) -> list:
    """The messages of one dump ('links', 'addresses', 'routes'), as pyroute2 parses them."""
    with open(os.path.join(HERE, 'fixtures', 'netlink_dump.json')) as handle:
        data = json.load(handle)[kind]
    return [next(MarshalRtnl().parse(bytes.fromhex(message))) for message in data]


def link_names() -> dict:
    """ifindex -> ifname of the recorded links."""
    return {msg['index']: msg.get('ifname') for msg in recorded('links')}
