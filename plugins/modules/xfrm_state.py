#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: xfrm_state
short_description: Manage IPsec security associations (XFRM states)
version_added: 0.1.0
description:
  - Adds, replaces or deletes one static IPsec security association, the kind C(ip xfrm state add) makes, through XFRM
    netlink.
  - A state is identified as the kernel looks it up, by O(dst), O(spi) and O(proto) (and O(mark), among states that
    share those). States made by C(ip xfrm state add) are adopted as they are when they match.
  - Keys are compared with the ones the kernel holds, so a changed key is noticed; keys are never returned, logged or
    shown in a diff (where the key would be, the diff says V(changed)).
  - The kernel cannot change the algorithms, keys or addresses of a state in place, so any difference deletes the state
    and adds it again (action V(replace)); packets sent in between are dropped. If the kernel refuses the new state,
    the previous one is put back.
  - Algorithms are the ones the kernel's XFRM layer knows, by their kernel names (V(rfc4106(gcm(aes\)\)), V(hmac(sha256\)),
    V(cbc(aes\)), ...) or the older short names C(ip xfrm) also takes (V(sha256), V(aes), ...). Key lengths are checked
    before the kernel is asked.
  - O(mark) left out keeps the current mark (none for a new state).
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  src:
    description:
      - Source address of the security association (for O(mode=tunnel), the local tunnel endpoint on the sending side).
      - Required with O(state=present).
    type: str
  dst:
    description:
      - Destination address; IPv4 or IPv6, of the family of O(src).
    type: str
    required: true
  proto:
    description:
      - The IPsec protocol.
    type: str
    choices: [esp]
    default: esp
  spi:
    description:
      - Security parameter index, V(1) to V(0xffffffff); the peer must use the same one for the same direction.
      - V(0) is refused; V(1) to V(255) are reserved by RFC 4303, so use V(256) (V(0x100)) or more.
    type: int
    required: true
  mode:
    description:
      - V(tunnel) wraps whole IP packets (what a V(vti) tunnel needs); V(transport) protects the payload only.
    type: str
    choices: [transport, tunnel]
    default: tunnel
  reqid:
    description:
      - Request id that ties the state to a policy template with the same O(linuxnet.tunnels.xfrm_policy#module:template.reqid).
      - Left out, the current one is kept (V(0) for a new state).
    type: int
  aead:
    description:
      - Authenticated encryption (one algorithm for both). Mutually exclusive with O(auth) and O(enc).
    type: dict
    suboptions:
      name:
        description:
          - V(rfc4106(gcm(aes\)\)), V(rfc4309(ccm(aes\)\)), V(rfc4543(gcm(aes\)\)) or V(rfc7539esp(chacha20,poly1305\)).
        type: str
        required: true
      key:
        description:
          - The key in hex digits, with or without V(0x), as C(ip xfrm) takes it; it includes the salt (for
            V(rfc4106(gcm(aes\)\)) an AES key of 16, 24 or 32 bytes and 4 bytes of salt, so 40, 56 or 72 hex digits).
        type: str
        required: true
      icv_len:
        description:
          - Length of the integrity check value in bits (V(64), V(96) or V(128) for GCM and CCM, V(128) for the others).
        type: int
        default: 128
  auth:
    description:
      - Authentication algorithm, for use with O(enc).
    type: dict
    suboptions:
      name:
        description:
          - V(hmac(sha256\)), V(hmac(sha1\)), V(hmac(sha384\)), V(hmac(sha512\)), V(hmac(md5\)), V(hmac(rmd160\)), V(hmac(sm3\)),
            V(xcbc(aes\)), V(cmac(aes\)) or V(digest_null).
        type: str
        required: true
      key:
        description:
          - The key in hex digits, with or without V(0x); as long as the digest (RFC 2404, RFC 4868), for example
            64 hex digits for V(hmac(sha256\)).
        type: str
        required: true
      trunc_len:
        description:
          - Length of the truncated integrity check value in bits (RFC 4868 says V(128) for V(hmac(sha256\))).
          - Left out, the current one is kept; a new state gets the kernel's default for the algorithm, as with
            C(ip xfrm state add ... auth) (V(96) for V(hmac(sha256\))).
        type: int
  enc:
    description:
      - Encryption algorithm. With O(state=present), O(aead) or O(enc) is required.
    type: dict
    suboptions:
      name:
        description:
          - V(cbc(aes\)), V(rfc3686(ctr(aes\)\)), V(cbc(des3_ede\)), V(cbc(serpent\)), V(cbc(camellia\)), V(cbc(twofish\)),
            V(cbc(cast5\)), V(cbc(blowfish\)), V(cbc(des\)), V(cbc(sm4\)) or V(ecb(cipher_null\)).
        type: str
        required: true
      key:
        description:
          - The key in hex digits, with or without V(0x) (32, 48 or 64 hex digits for V(cbc(aes\))).
        type: str
        required: true
  state:
    description:
      - V(present) adds or replaces the state; V(absent) deletes it (only O(dst), O(spi), O(proto) and O(mark) matter
        then).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - linuxnet.tunnels.common
  - linuxnet.tunnels.common.attributes
  - linuxnet.tunnels.xfrm
notes:
  - Needs the kernel's C(xfrm_user) and C(esp4)/C(esp6) support and the crypto of the algorithm; the kernel loads them
    when it can.
  - The keys of static security associations should come from a vault or another secret store.
seealso:
  - module: linuxnet.tunnels.xfrm_policy
  - module: linuxnet.tunnels.tunnel
    description: V(vti) tunnels, whose key is the mark of the policies that feed them.
'''

EXAMPLES = r'''
- name: The outbound security association of a vti tunnel (AES-GCM)
  linuxnet.tunnels.xfrm_state:
    netns: ns1
    src: 10.10.10.2
    dst: 10.10.20.2
    spi: 0x1000
    reqid: 1
    aead:
      name: rfc4106(gcm(aes))
      key: "{{ vault_esp_key_out }}"
      icv_len: 128

- name: Encryption and authentication as two algorithms
  linuxnet.tunnels.xfrm_state:
    src: 192.0.2.1
    dst: 192.0.2.2
    spi: 0x2000
    mode: transport
    enc:
      name: cbc(aes)
      key: "{{ vault_enc_key }}"
    auth:
      name: hmac(sha256)
      key: "{{ vault_auth_key }}"
      trunc_len: 128

- name: Remove it
  linuxnet.tunnels.xfrm_state:
    dst: 192.0.2.2
    spi: 0x2000
    state: absent
'''

RETURN = r'''
xfrm_state:
  description: The security association after the task (as predicted, in check mode); null when absent. Never a key.
  returned: success
  type: dict
  contains:
    src:
      description: Source address.
      type: str
      sample: 10.10.10.2
    dst:
      description: Destination address.
      type: str
      sample: 10.10.20.2
    proto:
      description: The IPsec protocol.
      type: str
      sample: esp
    spi:
      description: The security parameter index.
      type: int
      sample: 4096
    mode:
      description: V(tunnel) or V(transport) (or the kernel's name of another mode, for an adopted state).
      type: str
      sample: tunnel
    reqid:
      description: The request id.
      type: int
      sample: 1
    mark:
      description: The mark (C(value), C(mask)); null when the state has none.
      type: dict
      sample: {value: 42, mask: 4294967295}
    aead:
      description: The AEAD algorithm (C(name), C(icv_len)); null when there is none.
      type: dict
      sample: {name: rfc4106(gcm(aes)), icv_len: 128}
    auth:
      description: The authentication algorithm (C(name), C(trunc_len)); null when there is none.
      type: dict
      sample: {name: hmac(sha256), trunc_len: 128}
    enc:
      description: The encryption algorithm (C(name)); null when there is none.
      type: dict
      sample: {name: cbc(aes)}
    netns:
      description: The namespace; null for the namespace Ansible runs in.
      type: str
      sample: ns1
action:
  description: What the task did (or would do in check mode), V(create), V(replace), V(delete) or V(none).
  returned: always
  type: str
  sample: create
attributes:
  description: What differed, a key as C(<algorithm>.key) (for example V(aead.key)).
  returned: changed
  type: list
  elements: str
  sample: [aead.key]
note:
  description: Why a state is replaced rather than changed.
  returned: when the state is replaced
  type: str
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._xfrm_state import XfrmStateResource


def main() -> None:
    run_resource_module(XfrmStateResource)


if __name__ == '__main__':
    main()
