# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IPsec security associations (XFRM states), as `ip xfrm state` makes them.

A state is found by what the kernel looks it up by: destination, SPI and
protocol (a mark only tells apart states that share them). The kernel hands
its keys back to root in a dump, so keys are compared exactly; they are never
returned or shown, a diff only says that one changed. XFRM_MSG_UPDSA cannot
change algorithms, keys or addresses (it keeps them), so any difference
replaces the state: delete, then add, and put the old one back if the add is
refused.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    CREATE,
    DELETE,
    REPLACE,
    Change,
    Resource,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._xfrm import (
    MARK_SPEC,
    MODES,
    PROTOCOLS,
    UNLIMITED,
    XFRM_MSG_DELSA,
    XFRM_MSG_GETSA,
    XFRM_MSG_NEWSA,
    check_same_family,
    dump,
    dump_namespace,
    family_of,
    mark_of,
    mark_view,
    packed,
    parse_address,
    parse_mark,
    send,
    unpacked,
    xfrm_session,
    xfrm_usersa_id,
    xfrm_usersa_info,
)


@dataclass(frozen=True)
class Algorithm:
    key_bits: tuple  # the key lengths the kernel's crypto accepts (or the RFC prescribes), in bits
    what: str = ''  # what the key is made of, when it is not just the cipher's key
    lengths: tuple = ()  # aead: the ICV lengths; auth: the longest truncation, then the kernel's default one


AES_KEYS = (128, 192, 256)
SALTED_AES_KEYS = (160, 224, 288)
# The kernel's own tables (net/xfrm/xfrm_algo.c): the names it accepts, and the older names it maps to them.
AEAD = {
    'rfc4106(gcm(aes))': Algorithm(SALTED_AES_KEYS, 'an AES key and a 4-byte salt', (64, 96, 128)),
    'rfc4309(ccm(aes))': Algorithm((152, 216, 280), 'an AES key and a 3-byte salt', (64, 96, 128)),
    'rfc4543(gcm(aes))': Algorithm(SALTED_AES_KEYS, 'an AES key and a 4-byte salt', (128,)),
    'rfc7539esp(chacha20,poly1305)': Algorithm((288,), 'a ChaCha20 key and a 4-byte salt', (128,)),
}
AUTH = {
    'digest_null': Algorithm((0,), lengths=(0, 0)),
    'hmac(md5)': Algorithm((128,), lengths=(128, 96)),
    'hmac(sha1)': Algorithm((160,), lengths=(160, 96)),
    'hmac(sha256)': Algorithm((256,), lengths=(256, 96)),
    'hmac(sha384)': Algorithm((384,), lengths=(384, 192)),
    'hmac(sha512)': Algorithm((512,), lengths=(512, 256)),
    'hmac(rmd160)': Algorithm((160,), lengths=(160, 96)),
    'hmac(sm3)': Algorithm((256,), lengths=(256, 256)),
    'xcbc(aes)': Algorithm((128,), lengths=(128, 96)),
    'cmac(aes)': Algorithm((128,), lengths=(128, 96)),
}
ENC = {
    'ecb(cipher_null)': Algorithm((0,)),
    'cbc(des)': Algorithm((64,)),
    'cbc(des3_ede)': Algorithm((192,)),
    'cbc(cast5)': Algorithm(tuple(range(40, 129, 8))),
    'cbc(blowfish)': Algorithm(tuple(range(40, 449, 8))),
    'cbc(aes)': Algorithm(AES_KEYS),
    'cbc(serpent)': Algorithm(AES_KEYS),
    'cbc(camellia)': Algorithm(AES_KEYS),
    'cbc(twofish)': Algorithm(AES_KEYS),
    'rfc3686(ctr(aes))': Algorithm(SALTED_AES_KEYS, 'an AES key and a 4-byte nonce'),
    'cbc(sm4)': Algorithm((128,)),
}
ALIASES = {
    'md5': 'hmac(md5)', 'sha1': 'hmac(sha1)', 'sha256': 'hmac(sha256)', 'sha384': 'hmac(sha384)',
    'sha512': 'hmac(sha512)', 'rmd160': 'hmac(rmd160)', 'sm3': 'hmac(sm3)',
    'cipher_null': 'ecb(cipher_null)', 'des': 'cbc(des)', 'des3_ede': 'cbc(des3_ede)', 'cast5': 'cbc(cast5)',
    'blowfish': 'cbc(blowfish)', 'aes': 'cbc(aes)', 'serpent': 'cbc(serpent)', 'camellia': 'cbc(camellia)',
    'twofish': 'cbc(twofish)', 'sm4': 'cbc(sm4)',
}
TABLES = {'aead': AEAD, 'auth': AUTH, 'enc': ENC}
# Which attribute carries which algorithm: authentication always with its truncation length.
ATTRIBUTES = {'aead': 'XFRMA_ALG_AEAD', 'auth': 'XFRMA_ALG_AUTH_TRUNC', 'enc': 'XFRMA_ALG_CRYPT'}
PROTOCOL_NAMES = {50: 'esp', 51: 'ah', 108: 'comp'}
MODE_NAMES = {0: 'transport', 1: 'tunnel', 2: 'ro', 3: 'in_trigger', 4: 'beet'}
# What the old state carried that a re-add must carry again (the rest the kernel computes).
RESTORED_ATTRIBUTES = frozenset(('XFRMA_ALG_AEAD', 'XFRMA_ALG_AUTH_TRUNC', 'XFRMA_ALG_CRYPT', 'XFRMA_ALG_COMP',
                                 'XFRMA_ENCAP', 'XFRMA_MARK', 'XFRMA_COADDR', 'XFRMA_SA_EXTRA_FLAGS', 'XFRMA_TFCPAD',
                                 'XFRMA_SET_MARK', 'XFRMA_SET_MARK_MASK', 'XFRMA_IF_ID', 'XFRMA_REPLAY_ESN_VAL'))


def words(numbers) -> str:
    """'160, 224 or 288'"""
    numbers = [str(n) for n in numbers]
    return numbers[0] if len(numbers) == 1 else f"{', '.join(numbers[:-1])} or {numbers[-1]}"


def key_lengths(bits: tuple) -> str:
    """The accepted lengths, in bits and in hex digits."""
    if len(bits) > 4:
        return f'{bits[0]} to {bits[-1]} bits in steps of 8 ({bits[0] // 4} to {bits[-1] // 4} hex digits)'
    return f'{words(bits)} bits ({words(b // 4 for b in bits)} hex digits)'


def parse_key(value, option: str) -> bytes:
    """A key as `ip xfrm` takes it: hex digits, with or without 0x."""
    text = str(value).strip()
    digits = text[2:] if text.lower().startswith('0x') else text
    if not re.fullmatch(r'(?:[0-9a-fA-F]{2})*', digits):
        raise ResourceError(f'{option}: the key must be an even number of hex digits, optionally after 0x (as ip xfrm takes it)')
    return bytes.fromhex(digits)


def canonical_name(kind: str, name: str) -> str:
    """The kernel's name for an algorithm, from its own or an older one; refuses one the kernel does not know."""
    table = TABLES[kind]
    text = str(name).strip()
    text = ALIASES.get(text, text)
    if text not in table:
        raise ResourceError(f"{kind}.name: unknown {kind} algorithm '{name}'; the kernel knows {', '.join(sorted(table))}")
    return text


def check_algorithm(kind: str, spec: dict) -> tuple[str, bytes]:
    """(kernel name, key) of one algorithm option, with its key length checked."""
    name = canonical_name(kind, spec['name'])
    algorithm = TABLES[kind][name]
    key = parse_key(spec['key'], f'{kind}.key')
    if len(key) * 8 not in algorithm.key_bits:
        made_of = f' ({algorithm.what})' if algorithm.what else ''
        raise ResourceError(f'{kind}.key: {name} takes a key of {key_lengths(algorithm.key_bits)}{made_of}; '
                            f'this one has {len(key) * 8} bits ({len(key) * 2} hex digits)')
    if kind == 'aead' and spec.get('icv_len') not in algorithm.lengths:
        raise ResourceError(f"aead.icv_len: {name} takes an ICV of {words(algorithm.lengths)} bits, not {spec.get('icv_len')}")
    if kind == 'auth' and spec.get('trunc_len') is not None:
        trunc, longest = spec['trunc_len'], algorithm.lengths[0]
        if trunc not in range(8 if longest else 0, longest + 1, 8):
            raise ResourceError(f'auth.trunc_len: {name} gives at most {longest} bits, in whole bytes; {trunc} is not possible')
    return name, key


def algorithms_of(msg) -> dict:
    """kind -> the algorithm attribute of a kernel state, for the kinds it has."""
    found = {kind: msg.get_attr(attribute) for kind, attribute in ATTRIBUTES.items()}
    if found['auth'] is None:  # states from before XFRMA_ALG_AUTH_TRUNC (Linux 2.6.33)
        found['auth'] = msg.get_attr('XFRMA_ALG_AUTH')
    return {kind: algo for kind, algo in found.items() if algo is not None}


def algorithm_view(kind: str, algo) -> dict:
    """The public side of an algorithm: never its key."""
    view = {'name': algo['alg_name']}
    if kind == 'aead':
        view['icv_len'] = algo['alg_icv_len']
    elif kind == 'auth':
        view['trunc_len'] = algo.get('alg_trunc_len')
    return view


def state_view(msg, netns: str | None) -> dict:
    """A kernel state in the module's terms (no keys)."""
    algos = algorithms_of(msg)
    return {
        'src': unpacked(msg['saddr'], msg['family']),
        'dst': unpacked(msg['daddr'], msg['family']),
        'proto': PROTOCOL_NAMES.get(msg['proto'], str(msg['proto'])),
        'spi': msg['spi'],
        'mode': MODE_NAMES.get(msg['mode'], str(msg['mode'])),
        'reqid': msg['reqid'],
        'mark': mark_view(*mark_of(msg)),
        'aead': algorithm_view('aead', algos['aead']) if 'aead' in algos else None,
        'auth': algorithm_view('auth', algos['auth']) if 'auth' in algos else None,
        'enc': algorithm_view('enc', algos['enc']) if 'enc' in algos else None,
        'netns': netns,
    }


def flat(view: dict) -> dict:
    """'aead.name': ... and so on: one comparable value per attribute."""
    out = {}
    for key, value in view.items():
        if key in TABLES and value is not None:
            out[key] = True
            out.update({f'{key}.{sub}': subvalue for sub, subvalue in value.items()})
        else:
            out[key] = value
    return out


def differences(current: dict, wanted: dict) -> list[str]:
    """Attributes whose wanted value (None: don't care, except for an algorithm: none) differs."""
    have, want = flat(current), flat(wanted)
    out = [kind for kind in TABLES if bool(current.get(kind)) != bool(wanted.get(kind))]
    out += [key for key, value in want.items()
            if value is not None and key not in TABLES and key.split('.')[0] not in out and have.get(key) != value]
    return out


class StateChange(Change):
    """A change whose diff says "key changed" and shows no key."""

    def diff(self) -> dict:
        out = super().diff()
        after = copy.deepcopy(out['after'])
        for attribute in self.attributes:
            kind, _dot, sub = attribute.partition('.')
            if sub == 'key' and after.get(kind):
                after[kind]['key'] = 'changed'
        out['after'] = after
        return out


class XfrmStateResource(Resource):
    """One security association in one namespace."""

    kind = 'xfrm_state'
    argument_spec = {
        'src': {'type': 'str'},
        'dst': {'type': 'str', 'required': True},
        'proto': {'type': 'str', 'choices': list(PROTOCOLS), 'default': 'esp'},
        'spi': {'type': 'int', 'required': True},
        'mode': {'type': 'str', 'choices': list(MODES), 'default': 'tunnel'},
        'reqid': {'type': 'int'},
        'aead': {'type': 'dict', 'options': {
            'name': {'type': 'str', 'required': True},
            'key': {'type': 'str', 'required': True, 'no_log': True},
            'icv_len': {'type': 'int', 'default': 128},
        }},
        'auth': {'type': 'dict', 'options': {
            'name': {'type': 'str', 'required': True},
            'key': {'type': 'str', 'required': True, 'no_log': True},
            'trunc_len': {'type': 'int'},
        }},
        'enc': {'type': 'dict', 'options': {
            'name': {'type': 'str', 'required': True},
            'key': {'type': 'str', 'required': True, 'no_log': True},
        }},
        'mark': MARK_SPEC,
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    }
    module_kwargs = {
        'mutually_exclusive': [('aead', 'auth'), ('aead', 'enc')],
        'required_if': [('state', 'present', ('src',)), ('state', 'present', ('aead', 'enc'), True)],
    }

    # net_info: what the namespace holds (states without their keys); no topology items, as keys cannot be read back into one.
    in_topology_output = False

    @classmethod
    def gather(cls, gatherer, session, space) -> None:
        space.found[cls.kind] = [state_view(msg, space.netns) for msg in dump_namespace(space.netns, XFRM_MSG_GETSA)]

    @classmethod
    def namespace_facts(cls, gatherer, space) -> dict:
        return {'xfrm_states': space.found[cls.kind]}

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.found = None  # the kernel's message of the state, keys included
        self.src = self.dst = None  # parsed by validate()
        self.keys: dict[str, bytes] = {}
        self.names: dict[str, str] = {}

    def display_name(self) -> str:
        return f"{self.params['dst']} {self.params.get('proto') or 'esp'} spi {self.params['spi']:#010x}"

    def key(self) -> tuple:
        return (self.netns, str(self.dst), self.params.get('proto') or 'esp', self.params['spi'])

    def validate(self) -> None:
        params = self.params
        spi = params['spi']
        if spi == 0:
            raise ResourceError('spi: 0 is not a security parameter index (RFC 4303 reserves it); give 1..0xffffffff, '
                                'usually 0x100 or more (1..255 are reserved too)')
        if not 0 < spi <= 0xffffffff:
            raise ResourceError(f'spi: {spi} is outside 1..0xffffffff')
        self.dst = parse_address(params['dst'], 'dst')
        parse_mark(params.get('mark'))
        if params.get('reqid') is not None and not 0 <= params['reqid'] <= 0xffffffff:
            raise ResourceError(f"reqid: {params['reqid']} is outside 0..0xffffffff")
        if params.get('state', 'present') == 'absent':
            return
        self.src = parse_address(params['src'], 'src')
        check_same_family('src', self.src, 'dst', self.dst)
        for kind in TABLES:
            if params.get(kind):
                self.names[kind], self.keys[kind] = check_algorithm(kind, params[kind])

    # Reading -----------------------------------------------------------------

    def _matches(self, msg) -> bool:
        return (msg['family'] == family_of(self.dst) and msg['spi'] == self.params['spi']
                and msg['proto'] == PROTOCOLS[self.params.get('proto') or 'esp']
                and unpacked(msg['daddr'], msg['family']) == str(self.dst))

    def _find(self):
        """The state, and of states that only their marks tell apart, the one with the mark asked for."""
        with xfrm_session(self.netns, 'could not list the IPsec states') as session:
            found = [msg for msg in dump(session, XFRM_MSG_GETSA) if self._matches(msg)]
        mark = self.params.get('mark')
        return next((msg for msg in found if mark and mark_of(msg) == parse_mark(mark)), found[0] if found else None)

    def read(self) -> dict | None:
        found = self._find()
        return state_view(found, self.netns) if found is not None else None

    # Planning ----------------------------------------------------------------

    def wanted(self) -> dict:
        return self._after(None)

    def _after(self, current: dict | None) -> dict:
        """What the state will be: the options, and where one is left out, what is there (or the default)."""
        params = self.params
        algos: dict = {}
        for kind in TABLES:
            if params.get(kind):
                algos[kind] = {'name': self.names[kind]}
        if 'aead' in algos:
            algos['aead']['icv_len'] = params['aead']['icv_len']
        if 'auth' in algos:
            trunc = params['auth'].get('trunc_len')
            kept = (current or {}).get('auth') or {}
            if trunc is None:
                same = kept.get('name') == algos['auth']['name']
                trunc = kept.get('trunc_len') if same else AUTH[algos['auth']['name']].lengths[1]
            algos['auth']['trunc_len'] = trunc
        reqid = params.get('reqid')
        if reqid is None:
            reqid = (current or {}).get('reqid') or 0
        mark = mark_view(*parse_mark(params['mark'])) if params.get('mark') else (current or {}).get('mark')
        return {
            'src': str(self.src),
            'dst': str(self.dst),
            'proto': params.get('proto') or 'esp',
            'spi': params['spi'],
            'mode': params.get('mode') or 'tunnel',
            'reqid': reqid,
            'mark': mark,
            'aead': algos.get('aead'),
            'auth': algos.get('auth'),
            'enc': algos.get('enc'),
            'netns': self.netns,
        }

    def plan_state(self) -> Change | None:
        self.found = self._find()
        current = state_view(self.found, self.netns) if self.found is not None else None
        if self.params.get('state', 'present') == 'absent':
            return Change(self.kind, self.name, DELETE, current, None) if current else None
        after = self._after(current)
        if current is None:
            return StateChange(self.kind, self.name, CREATE, None, after)
        changed = differences(current, after)
        kernel_keys = {kind: bytes(algo['alg_key']) for kind, algo in algorithms_of(self.found).items()}
        changed += [f'{kind}.key' for kind, key in self.keys.items()
                    if kind not in changed and kernel_keys.get(kind) != key]
        if not changed:
            return None
        return StateChange(self.kind, self.name, REPLACE, current, after, changed,
                           note='the kernel cannot change the algorithms, keys or addresses of a security association '
                                'in place: it is deleted and added again')

    # Writing -----------------------------------------------------------------

    def new_message(self, after: dict):
        """XFRM_MSG_NEWSA for the planned state, as `ip xfrm state add` builds it."""
        msg = xfrm_usersa_info()
        msg.update(UNLIMITED)
        msg.update({
            'daddr': packed(self.dst), 'saddr': packed(self.src), 'spi': self.params['spi'],
            'proto': PROTOCOLS[after['proto']], 'family': family_of(self.dst),
            'mode': MODES[after['mode']], 'reqid': after['reqid'],
        })
        attrs = []
        for kind, attribute in ATTRIBUTES.items():
            if after.get(kind):
                key = self.keys[kind]
                algo = {'alg_name': after[kind]['name'], 'alg_key_len': len(key) * 8, 'alg_key': key}
                if kind == 'aead':
                    algo['alg_icv_len'] = after['aead']['icv_len']
                elif kind == 'auth':
                    algo['alg_trunc_len'] = after['auth']['trunc_len']
                attrs.append((attribute, algo))
        if after['mark']:
            attrs.append(('XFRMA_MARK', {'v': after['mark']['value'], 'm': after['mark']['mask']}))
        msg['attrs'] = attrs
        return msg

    def _id_message(self, mark: tuple[int, int]):
        msg = xfrm_usersa_id()
        msg.update({'daddr': packed(self.dst), 'spi': self.params['spi'], 'family': family_of(self.dst),
                    'proto': PROTOCOLS[self.params.get('proto') or 'esp']})
        if mark != (0, 0):
            msg['attrs'] = [('XFRMA_MARK', {'v': mark[0], 'm': mark[1]})]
        return msg

    def apply(self, change: Change) -> None:
        if change.action == DELETE:
            self.remove()
            return
        if change.action == REPLACE:
            self.remove()
        try:
            with xfrm_session(self.netns, f'could not add IPsec state {self.display_name()}') as session:
                send(session, self.new_message(change.after), XFRM_MSG_NEWSA, create=True)
        except ResourceError as exc:
            if change.action == REPLACE and self.found is not None:
                raise ResourceError(f'{exc}; {self._restore()}') from exc
            raise

    def _restore(self) -> str:
        """Add the state that was replaced back as it was (keys included): what happened, in words."""
        old = xfrm_usersa_info()
        old.update({name: self.found[name] for name, _fmt in xfrm_usersa_info.fields if not name.startswith('__')})
        old['attrs'] = [(name, self.found.get_attr(name)) for name in RESTORED_ATTRIBUTES
                        if self.found.get_attr(name) is not None]
        try:
            with xfrm_session(self.netns, 'could not put the previous IPsec state back') as session:
                send(session, old, XFRM_MSG_NEWSA, create=True)
        except ResourceError as exc:
            return f'the previous state was deleted and could not be put back ({exc})'
        return 'the previous state was put back unchanged'

    def remove(self) -> None:
        """Delete the state found by the plan (topology undo: the one just made, with the mark asked for)."""
        mark = mark_of(self.found) if self.found is not None else parse_mark(self.params.get('mark'))
        with xfrm_session(self.netns, f'could not delete IPsec state {self.display_name()}') as session:
            send(session, self._id_message(mark), XFRM_MSG_DELSA)
