# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""XFRM (IPsec) netlink: the kernel's structs as pyroute2 message classes, and what both resources share.

pyroute2 0.9 has no XFRM messages, so the structs of include/uapi/linux/xfrm.h
are spelt out here as pyroute2 field lists, with their padding (the x86-64 and
arm64 layout: struct xfrm_usersa_info is 224 bytes, xfrm_userpolicy_info 168).
Requests go through a Session on a NETLINK_XFRM socket made inside the
namespace, opened per operation so that no socket keeps a namespace alive.
"""

from __future__ import annotations

import errno

import ipaddress
import socket
from contextlib import contextmanager

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError, errno_of, kernel_call, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Session

try:
    from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, nla, nlmsg
    from pyroute2.netlink.marshal import Marshal
except ImportError:
    # Reported once by the module through HAS_PYROUTE2; the classes below stay definable.
    class nla:  # type: ignore[no-redef]
        cdata = object

    nlmsg = Marshal = object
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL = 0x4, 0x400, 0x200

NETLINK_XFRM = 6
XFRM_MSG_NEWSA = 0x10
XFRM_MSG_DELSA = 0x11
XFRM_MSG_GETSA = 0x12
XFRM_MSG_NEWPOLICY = 0x13
XFRM_MSG_DELPOLICY = 0x14
XFRM_MSG_GETPOLICY = 0x15
XFRM_MSG_UPDPOLICY = 0x19
XFRM_MSG_UPDSA = 0x1a
XFRM_INF = (1 << 64) - 1
IPPROTO_ESP = 50
PROTOCOLS = {'esp': IPPROTO_ESP}
MODES = {'transport': 0, 'tunnel': 1}
DIRECTIONS = {'in': 0, 'out': 1, 'fwd': 2}
MARK_ALL = 0xffffffff
ALL_ALGORITHMS = 0xffffffff  # a template's aalgos/ealgos/calgos, as iproute2 sets them: any algorithm

# struct xfrm_selector (56 bytes)
SELECTOR_FIELDS = (
    ('sel_daddr', '16s'),
    ('sel_saddr', '16s'),
    ('sel_dport', '>H'),
    ('sel_dport_mask', '>H'),
    ('sel_sport', '>H'),
    ('sel_sport_mask', '>H'),
    ('sel_family', 'H'),
    ('sel_prefixlen_d', 'B'),
    ('sel_prefixlen_s', 'B'),
    ('sel_proto', 'B'),
    ('__sel_pad', '3x'),
    ('sel_ifindex', 'i'),
    ('sel_user', 'I'),
)
# struct xfrm_lifetime_cfg (64 bytes) and xfrm_lifetime_cur (32 bytes)
LIMITS = ('soft_byte_limit', 'hard_byte_limit', 'soft_packet_limit', 'hard_packet_limit')
LIFETIME_FIELDS = tuple((f'lft_{name}', 'Q') for name in LIMITS + (
    'soft_add_expires_seconds', 'hard_add_expires_seconds', 'soft_use_expires_seconds', 'hard_use_expires_seconds'))
CURRENT_LIFETIME_FIELDS = tuple((f'curlft_{name}', 'Q') for name in ('bytes', 'packets', 'add_time', 'use_time'))
# No byte or packet limit, as `ip xfrm` sets them.
UNLIMITED = {f'lft_{name}': XFRM_INF for name in LIMITS}

# Unset addresses are zeros (pyroute2's default of 0 does not fit a bytes field).
ADDRESS_DEFAULTS = {name: b'' for name in ('sel_daddr', 'sel_saddr', 'daddr', 'saddr')}

# Netlink attributes of xfrm messages (enum xfrm_attr_type_t), in kernel order.
XFRMA_NLAS = (
    ('XFRMA_UNSPEC', 'none'),
    ('XFRMA_ALG_AUTH', 'algo'),
    ('XFRMA_ALG_CRYPT', 'algo'),
    ('XFRMA_ALG_COMP', 'algo'),
    ('XFRMA_ENCAP', 'cdata'),
    ('XFRMA_TMPL', 'templates'),
    ('XFRMA_SA', 'cdata'),
    ('XFRMA_POLICY', 'cdata'),
    ('XFRMA_SEC_CTX', 'cdata'),
    ('XFRMA_LTIME_VAL', 'cdata'),
    ('XFRMA_REPLAY_VAL', 'cdata'),
    ('XFRMA_REPLAY_THRESH', 'uint32'),
    ('XFRMA_ETIMER_THRESH', 'uint32'),
    ('XFRMA_SRCADDR', 'cdata'),
    ('XFRMA_COADDR', 'cdata'),
    ('XFRMA_LASTUSED', 'uint64'),
    ('XFRMA_POLICY_TYPE', 'cdata'),
    ('XFRMA_MIGRATE', 'cdata'),
    ('XFRMA_ALG_AEAD', 'algo_aead'),
    ('XFRMA_KMADDRESS', 'cdata'),
    ('XFRMA_ALG_AUTH_TRUNC', 'algo_auth'),
    ('XFRMA_MARK', 'mark'),
    ('XFRMA_TFCPAD', 'uint32'),
    ('XFRMA_REPLAY_ESN_VAL', 'cdata'),
    ('XFRMA_SA_EXTRA_FLAGS', 'uint32'),
    ('XFRMA_PROTO', 'uint8'),
    ('XFRMA_ADDRESS_FILTER', 'cdata'),
    ('XFRMA_PAD', 'cdata'),
    ('XFRMA_OFFLOAD_DEV', 'cdata'),
    ('XFRMA_SET_MARK', 'uint32'),
    ('XFRMA_SET_MARK_MASK', 'uint32'),
    ('XFRMA_IF_ID', 'uint32'),
    ('XFRMA_MTIMER_THRESH', 'uint32'),
)


class xfrm_user_tmpl(nlmsg):
    """struct xfrm_user_tmpl (64 bytes): one template of a policy, without a header of its own."""

    header = None
    defaults = ADDRESS_DEFAULTS
    fields = (
        ('daddr', '16s'),
        ('spi', '>I'),
        ('proto', 'B'),
        ('__id_pad', '3x'),
        ('family', 'H'),
        ('__family_pad', '2x'),
        ('saddr', '16s'),
        ('reqid', 'I'),
        ('mode', 'B'),
        ('share', 'B'),
        ('optional', 'B'),
        ('__pad', 'x'),
        ('aalgos', 'I'),
        ('ealgos', 'I'),
        ('calgos', 'I'),
    )


class xfrm_msg(nlmsg):
    """The attributes every xfrm message may carry."""

    nla_map = XFRMA_NLAS
    defaults = ADDRESS_DEFAULTS

    class algo(nla):
        """struct xfrm_algo: the name, the key length in bits, then the key."""

        fields = (('alg_name', '64s'), ('alg_key_len', 'I'), ('alg_key', 's'))

        def ft_decode(self, offset):
            # The key's length is in the struct, not in the field list.
            for name, fmt in self.fields[:-1]:
                self[name], offset = self.decode_field(fmt, self.data, offset)
            self['alg_name'] = self['alg_name'].split(b'\0', 1)[0].decode()
            self['alg_key'] = bytes(self.data[offset:offset + self['alg_key_len'] // 8])
            del self['attrs']

    class algo_auth(algo):
        """struct xfrm_algo_auth: as xfrm_algo, with the ICV truncation length in bits."""

        fields = (('alg_name', '64s'), ('alg_key_len', 'I'), ('alg_trunc_len', 'I'), ('alg_key', 's'))

    class algo_aead(algo):
        """struct xfrm_algo_aead: as xfrm_algo, with the ICV length in bits."""

        fields = (('alg_name', '64s'), ('alg_key_len', 'I'), ('alg_icv_len', 'I'), ('alg_key', 's'))

    class mark(nla):
        """struct xfrm_mark"""

        fields = (('v', 'I'), ('m', 'I'))

    class templates(nla.cdata):
        """XFRMA_TMPL: struct xfrm_user_tmpl, one after another; the value is a list of dicts."""

        def encode(self):
            blob = bytearray()
            for template in self.value:
                msg = xfrm_user_tmpl()
                msg.update(template)
                msg.encode()
                blob += msg.data
            self['value'] = bytes(blob)
            super().encode()

        def decode(self):
            super().decode()
            raw, found = self['value'], []
            size = 64
            for offset in range(0, len(raw) - size + 1, size):
                msg = xfrm_user_tmpl(bytearray(raw[offset:offset + size]))
                msg.decode()
                found.append(dict(msg))
            self.value = found


class xfrm_usersa_info(xfrm_msg):
    """struct xfrm_usersa_info (224 bytes): a security association (XFRM_MSG_NEWSA, and each one of a GETSA dump)."""

    fields = SELECTOR_FIELDS + (
        ('daddr', '16s'),  # struct xfrm_id
        ('spi', '>I'),
        ('proto', 'B'),
        ('__id_pad', '3x'),
        ('saddr', '16s'),
    ) + LIFETIME_FIELDS + CURRENT_LIFETIME_FIELDS + (
        ('stats_replay_window', 'I'),
        ('stats_replay', 'I'),
        ('stats_integrity_failed', 'I'),
        ('seq', 'I'),
        ('reqid', 'I'),
        ('family', 'H'),
        ('mode', 'B'),
        ('replay_window', 'B'),
        ('flags', 'B'),
        ('__pad', '7x'),
    )


class xfrm_usersa_id(xfrm_msg):
    """struct xfrm_usersa_id (24 bytes): which security association (XFRM_MSG_DELSA)."""

    fields = (
        ('daddr', '16s'),
        ('spi', '>I'),
        ('family', 'H'),
        ('proto', 'B'),
        ('__pad', 'x'),
    )


class xfrm_userpolicy_info(xfrm_msg):
    """struct xfrm_userpolicy_info (168 bytes): a policy (XFRM_MSG_NEWPOLICY/UPDPOLICY, and each one of a dump)."""

    fields = SELECTOR_FIELDS + LIFETIME_FIELDS + CURRENT_LIFETIME_FIELDS + (
        ('priority', 'I'),
        ('index', 'I'),
        ('dir', 'B'),
        ('action', 'B'),
        ('flags', 'B'),
        ('share', 'B'),
        ('__pad', '4x'),
    )


class xfrm_userpolicy_id(xfrm_msg):
    """struct xfrm_userpolicy_id (64 bytes): which policy (XFRM_MSG_DELPOLICY)."""

    fields = SELECTOR_FIELDS + (
        ('index', 'I'),
        ('dir', 'B'),
        ('__pad', '3x'),
    )


class MarshalXfrm(Marshal):
    """Which class parses which answer."""

    msg_map = {
        XFRM_MSG_NEWSA: xfrm_usersa_info,
        XFRM_MSG_UPDSA: xfrm_usersa_info,
        XFRM_MSG_DELSA: xfrm_usersa_id,
        XFRM_MSG_GETSA: xfrm_usersa_id,
        XFRM_MSG_NEWPOLICY: xfrm_userpolicy_info,
        XFRM_MSG_UPDPOLICY: xfrm_userpolicy_info,
        XFRM_MSG_DELPOLICY: xfrm_userpolicy_id,
        XFRM_MSG_GETPOLICY: xfrm_userpolicy_id,
    }


@contextmanager
def xfrm_session(netns: str | None, action: str):
    """A NETLINK_XFRM Session inside netns for one operation; refusals become ResourceErrors naming action."""
    with kernel_call(f'{action} in {where(netns)}'):
        session = Session(netns, NETLINK_XFRM, MarshalXfrm())
        try:
            yield session
        finally:
            session.close()


def dump(session: Session, msg_type: int) -> list:
    """Every state (XFRM_MSG_GETSA) or policy (XFRM_MSG_GETPOLICY) of the namespace."""
    request = xfrm_usersa_id() if msg_type == XFRM_MSG_GETSA else xfrm_userpolicy_id()
    return session._request(request, msg_type, dump=True)


def dump_namespace(netns: str | None, msg_type: int) -> list:
    """dump() in a session of its own, for net_info; a kernel without XFRM has nothing to list."""
    try:
        with xfrm_session(netns, 'could not read the IPsec states and policies') as session:
            return dump(session, msg_type)
    except ResourceError as exc:
        if errno_of(exc) == errno.EPROTONOSUPPORT:
            return []
        raise


def send(session: Session, msg, msg_type: int, create: bool = False) -> None:
    """One change, acknowledged; create: EEXIST when it is there already."""
    session._request(msg, msg_type, flags=NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if create else 0))


# Addresses ------------------------------------------------------------------

def parse_address(value, option: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ResourceError(f"{option}: '{value}' is not an IPv4 or IPv6 address") from None


def parse_prefix(value, option: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A selector: an address or a network (host bits must be zero)."""
    try:
        return ipaddress.ip_network(str(value).strip(), strict=True)
    except ValueError as exc:
        raise ResourceError(f"{option}: '{value}' is not an address or a network in CIDR notation ({exc})") from None


def family_of(address) -> int:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


def packed(address) -> bytes:
    """xfrm_address_t: 16 bytes, an IPv4 address in the first four."""
    return address.packed.ljust(16, b'\0')


def unpacked(raw: bytes, family: int) -> str:
    """The text of an xfrm_address_t."""
    if family == socket.AF_INET6:
        return str(ipaddress.IPv6Address(bytes(raw[:16])))
    return str(ipaddress.IPv4Address(bytes(raw[:4])))


def check_same_family(option_a: str, a, option_b: str, b) -> None:
    if a.version != b.version:
        raise ResourceError(f'{option_a} and {option_b}: one is IPv{a.version}, the other IPv{b.version}; both must be of one family')


# Marks ------------------------------------------------------------------------

MARK_SPEC = {
    'type': 'dict',
    'options': {
        'value': {'type': 'int', 'required': True},
        'mask': {'type': 'int', 'default': MARK_ALL},
    },
}


def parse_mark(mark: dict | None) -> tuple[int, int]:
    """(value, mask); (0, 0) when there is none, as the kernel keeps it."""
    if not mark:
        return 0, 0
    value, mask = mark['value'], mark.get('mask', MARK_ALL)
    for option, number in (('mark.value', value), ('mark.mask', mask)):
        if not 0 <= number <= MARK_ALL:
            raise ResourceError(f'{option}: {number} is outside 0..0xffffffff')
    if value & ~mask:
        raise ResourceError(f'mark.value: {value:#x} has bits outside mark.mask {mask:#x}; the kernel would never match it')
    return value, mask


def mark_view(value: int, mask: int) -> dict | None:
    return {'value': value, 'mask': mask} if (value, mask) != (0, 0) else None


def mark_of(msg) -> tuple[int, int]:
    found = msg.get_attr('XFRMA_MARK')
    return (found['v'], found['m']) if found else (0, 0)


def mark_text(value: int, mask: int) -> str:
    return f' mark {value:#x}/{mask:#x}' if (value, mask) != (0, 0) else ''
