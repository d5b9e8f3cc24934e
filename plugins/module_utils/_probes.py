# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Several echo probes and captures at once: what the ping module runs.

Each probe is one _ping.Pinger; the main thread drives them all, and every
capture (_capture.Capture), from one select() loop, then judges each probe
against what it expected (replies, their TTL, or none at all).
"""

from __future__ import annotations

import os
import select
import socket
import time
from contextlib import contextmanager

from ansible_collections.linuxnet.tunnels.plugins.module_utils import _capture
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._ping import ICMP6_ECHO_REQUEST, ICMP_ECHO, Pinger, validate
from ansible_collections.linuxnet.tunnels.plugins.module_utils._probe_options import INHERITED


def probe_params(params: dict) -> list[dict]:
    """Each probe's own options: the single probe of dest, or every item of
    probes with what it leaves out taken from the top level."""
    if params.get('probes') is None:
        return [dict(params, label=None)]
    probes = []
    for item in params['probes']:
        probe = {key: params[key] if item.get(key) is None else item[key] for key in INHERITED}
        probe.update(dest=item['dest'], label=item.get('label'))
        probes.append(probe)
    return probes


def label_of(probe: dict) -> str:
    return probe['label'] or f"{probe['netns'] or 'current namespace'} -> {probe['dest']}"


@contextmanager
def _named(probe: dict, index: int | None):
    """Errors about one item of probes say which one."""
    try:
        yield
    except ResourceError as exc:
        if index is None:
            raise
        raise ResourceError(f"probes[{index}] ({label_of(probe)}): {exc}") from None


def run_together(pingers: list[Pinger], captures: list[_capture.Capture]) -> None:
    """Drive every probe from one loop until each is answered or timed out; the
    captures are read all along, and once more at the end."""
    start = time.monotonic()
    for pinger in pingers:
        pinger.next_send = start
    readers = {pinger.sock.fileno(): pinger for pinger in pingers}
    readers.update((capture.sock.fileno(), capture) for capture in captures)
    active = list(pingers)
    while active:
        now = time.monotonic()
        wakes = []
        for pinger in list(active):
            wake = pinger.step(now)
            if wake is None:
                active.remove(pinger)
            else:
                wakes.append(wake)
        if not active:
            break
        sockets = [pinger.sock for pinger in active] + [capture.sock for capture in captures]
        for sock in select.select(sockets, [], [], max(0.0, min(wakes) - time.monotonic()))[0]:
            readers[sock.fileno()].receive()
    for capture in captures:
        capture.receive()


def checked(params: dict) -> tuple[list[dict], list[_capture.Capture]]:
    """Every probe's own options and the captures, all validated without a socket
    or the kernel (so that the topology module refuses them before it builds)."""
    multi = params.get('probes') is not None
    probes = probe_params(params)
    if multi:
        labels = [label_of(probe) for probe in probes]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ResourceError(f"probes: each probe needs its own label; {', '.join(repr(t) for t in twice)} is used more than once")
    for index, probe in enumerate(probes):
        with _named(probe, index if multi else None):
            validate(probe)
    captures = [_capture.Capture(item) for item in params.get('capture') or []]
    for capture in captures:
        capture.validate()
    return probes, captures


def ping(params: dict) -> tuple[dict, str | None]:
    """Validate, open every capture and probe socket, run them all at once, close them.

    Returns the result and the failure message (None when every probe met its
    expectation). The result is the single probe's (dest), or `probes` with
    one entry per item; `packets` and `lines` when several probes ran or
    something was captured. ResourceError for anything the user must fix.
    """
    multi = params.get('probes') is not None
    probes, captures = checked(params)
    pingers = [Pinger(probe) for probe in probes]
    _distinct_identifiers(pingers)
    try:
        # Captures first, so that they see the first request.
        for capture in captures:
            capture.open()
        for index, pinger in enumerate(pingers):
            with _named(pinger.params, index if multi else None):
                pinger.open()
        run_together(pingers, captures)
    finally:
        for item in captures + pingers:
            item.close()
    for capture in captures:
        capture.write_pcap()
    packets = [packet for capture in captures for packet in capture.packets()]
    outcomes = []
    for pinger in pingers:
        outcome = pinger.summary()
        outcome.update(label=label_of(pinger.params), expect=pinger.params['expect'], expected_ttl=pinger.params.get('ttl'))
        outcome['problem'] = problem(pinger.params, outcome)
        outcome['seen'] = seen_on(pinger, captures, packets)
        outcomes.append(outcome)
    lines = [line for outcome in outcomes for line in outcome_lines(outcome)]
    if multi:
        missed = [outcome for outcome in outcomes if outcome['problem']]
        failure = None
        if missed:
            failure = (f"{len(missed)} of {len(outcomes)} probes missed their expectation: "
                       + '; '.join(f"{outcome['label']}: {outcome['problem']}" for outcome in missed))
        return {'probes': outcomes, 'packets': packets, 'lines': lines}, failure
    result = outcomes[0]
    failure = f"ping {result['dest']} from {where(result['netns'])}: {result['problem']}" if result['problem'] else None
    for key in ('label', 'expect', 'expected_ttl', 'problem', 'seen'):
        del result[key]
    if captures:
        result.update(packets=packets, lines=lines)
    return result, failure


def _distinct_identifiers(pingers: list[Pinger]) -> None:
    """Two probes of one run never share an ICMP identifier (captures tell them apart by it)."""
    taken: set[int] = set()
    for pinger in pingers:
        while pinger.ident in taken:
            pinger.ident = int.from_bytes(os.urandom(2), 'big')
        taken.add(pinger.ident)


def seen_on(pinger: Pinger, captures: list[_capture.Capture], packets: list[dict]) -> list[str]:
    """Per capture link, the first of this probe's echo requests it saw, as one line."""
    request = ICMP_ECHO if pinger.family == socket.AF_INET else ICMP6_ECHO_REQUEST
    lines = []
    for capture in captures:
        for packet in packets:
            layer = _capture.innermost(packet)
            if (packet['dev'] == capture.dev and packet['netns'] == capture.netns and layer is not None
                    and layer.get('icmp_type') == request and layer.get('id') == pinger.ident):
                lines.append(f"{capture.dev}: {packet['summary']}")
                break
        else:
            lines.append(f'{capture.dev}: no echo request of this probe seen')
    return lines


def outcome_lines(outcome: dict) -> list[str]:
    """The probe's verdict, then where its request was seen."""
    if outcome['problem']:
        verdict = f"FAILED: {outcome['problem']}"
    elif outcome['expect'] == 'fail':
        verdict = f"no reply to {outcome['transmitted']} echo requests, as expected"
    else:
        verdict = f"{outcome['received']}/{outcome['transmitted']} replies, ttl {outcome['ttl']}"
        if outcome['expected_ttl'] is not None:
            verdict += ' as expected'
    return [f"{outcome['label']}: {verdict}"] + ['  ' + line for line in outcome['seen']]


def problem(probe: dict, result: dict) -> str | None:
    """How a probe missed its expectation, or None."""
    if probe['expect'] == 'fail':
        if result['received'] == 0:
            return None
        return f"expected no reply, but {result['received']} of {result['transmitted']} echo requests were answered"
    if result['loss'] > probe['max_loss']:
        lost = result['transmitted'] - result['received']
        text = (f"{lost} of {result['transmitted']} echo requests lost "
                f"({_pct(result['loss'])}% loss, max_loss is {_pct(probe['max_loss'])}%)")
        if result['errors']:
            shown = result['errors'][:5]
            more = f' (and {len(result["errors"]) - 5} more)' if len(result['errors']) > 5 else ''
            text += '; ' + '; '.join(shown) + more
        return text
    if probe.get('ttl') is not None and result['ttls'] != [probe['ttl']]:
        if not result['ttls']:
            return f"no reply came back to check the TTL against {probe['ttl']}"
        return f"reply TTL {', '.join(str(ttl) for ttl in result['ttls'])}, expected {probe['ttl']}"
    return None


def _pct(value: float) -> str:
    return f'{value:g}'
