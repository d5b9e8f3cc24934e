"""Pure logic of xfrm_state and xfrm_policy: struct layouts, message encoding and decoding, validation."""

from __future__ import annotations

import struct

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import REPLACE
from ansible_collections.linuxnet.tunnels.plugins.module_utils._xfrm import (
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_NEWSA,
    MarshalXfrm,
    parse_mark,
    xfrm_user_tmpl,
    xfrm_userpolicy_id,
    xfrm_userpolicy_info,
    xfrm_usersa_id,
    xfrm_usersa_info,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._xfrm_policy import (
    XfrmPolicyResource,
    policy_view,
    state_matches,
    template_differs,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._xfrm_state import (
    StateChange,
    XfrmStateResource,
    algorithms_of,
    check_algorithm,
    differences,
    parse_key,
    state_view,
)

HEADER = 16  # struct nlmsghdr
GCM_KEY = '0x' + '11' * 20


def validated(resource_class, **options) -> dict:
    """Options as AnsibleModule hands them over (defaults filled in)."""
    spec = dict(resource_class.argument_spec, netns={'type': 'str'})
    given = {key: value for key, value in options.items() if value is not None}  # None: left out
    result = ArgumentSpecValidator(spec, **resource_class.module_kwargs).validate(given)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def state_resource(**options) -> XfrmStateResource:
    defaults = {'src': '10.0.0.1', 'dst': '10.0.0.2', 'spi': 0x1000, 'aead': {'name': 'rfc4106(gcm(aes))', 'key': GCM_KEY}}
    resource = XfrmStateResource(None, validated(XfrmStateResource, **dict(defaults, **options)))
    resource.validate()
    return resource


def policy_resource(**options) -> XfrmPolicyResource:
    defaults = {'src': '0.0.0.0/0', 'dst': '0.0.0.0/0', 'dir': 'out', 'mark': {'value': 42},
                'template': {'src': '10.0.0.1', 'dst': '10.0.0.2', 'reqid': 1}}
    resource = XfrmPolicyResource(None, validated(XfrmPolicyResource, **dict(defaults, **options)))
    resource.validate()
    return resource


def round_trip(msg, msg_type: int):
    """Encode as a request, parse back as the kernel's answer would be parsed."""
    msg['header']['type'] = msg_type
    msg.encode()
    (parsed,) = list(MarshalXfrm().parse(bytes(msg.data)))
    assert parsed['header']['error'] is None
    return parsed


# ---------------------------------------------------------------------------
# the kernel's struct layouts (include/uapi/linux/xfrm.h, x86-64)

@pytest.mark.parametrize('msg_class, size', [
    (xfrm_usersa_info, 224), (xfrm_usersa_id, 24), (xfrm_userpolicy_info, 168), (xfrm_userpolicy_id, 64),
])
def test_message_sizes(msg_class, size):
    msg = msg_class()
    msg.encode()
    assert len(msg.data) == HEADER + size


def test_usersa_info_offsets():
    msg = xfrm_usersa_info()
    msg.update({'daddr': b'\x0a\x00\x00\x02', 'spi': 0x01020304, 'proto': 50, 'saddr': b'\x0a\x00\x00\x01',
                'lft_soft_byte_limit': 7, 'reqid': 9, 'family': 2, 'mode': 1, 'replay_window': 32, 'flags': 4})
    msg.encode()
    body = bytes(msg.data[HEADER:])
    assert body[56:60] == b'\x0a\x00\x00\x02' and body[72:76] == b'\x01\x02\x03\x04' and body[76] == 50
    assert body[80:84] == b'\x0a\x00\x00\x01'
    assert struct.unpack_from('=Q', body, 96)[0] == 7
    assert struct.unpack_from('=IHBBB', body, 208) == (9, 2, 1, 32, 4)


def test_userpolicy_info_and_template_offsets():
    msg = xfrm_userpolicy_info()
    msg.update({'sel_family': 2, 'sel_prefixlen_d': 24, 'sel_prefixlen_s': 16, 'priority': 5, 'dir': 1})
    msg.encode()
    body = bytes(msg.data[HEADER:])
    assert struct.unpack_from('=HBB', body, 40) == (2, 24, 16)
    assert struct.unpack_from('=IIB', body, 152) == (5, 0, 1)

    template = xfrm_user_tmpl()
    template.update({'daddr': b'\x01\x02\x03\x04', 'spi': 0x1000, 'proto': 50, 'family': 2, 'saddr': b'\x05\x06\x07\x08',
                     'reqid': 3, 'mode': 1, 'aalgos': 0xffffffff, 'calgos': 0xfffffffe})
    template.encode()
    raw = bytes(template.data)
    assert len(raw) == 64
    assert raw[16:20] == b'\x00\x00\x10\x00' and raw[20] == 50 and struct.unpack_from('=H', raw, 24)[0] == 2
    assert raw[28:32] == b'\x05\x06\x07\x08' and struct.unpack_from('=IB', raw, 44) == (3, 1)
    assert struct.unpack_from('=III', raw, 52) == (0xffffffff, 0, 0xfffffffe)


# ---------------------------------------------------------------------------
# messages the resources build, read back

def test_state_message_round_trip_keeps_keys_out_of_the_view():
    resource = state_resource(reqid=4, mark={'value': 42}, mode='transport')
    after = resource.wanted()
    parsed = round_trip(resource.new_message(after), XFRM_MSG_NEWSA)
    view = state_view(parsed, None)
    assert view == after
    assert view['aead'] == {'name': 'rfc4106(gcm(aes))', 'icv_len': 128} and view['mark'] == {'value': 42, 'mask': 0xffffffff}
    assert algorithms_of(parsed)['aead']['alg_key'] == bytes.fromhex('11' * 20)
    assert parsed['lft_hard_packet_limit'] == (1 << 64) - 1  # no limit, as ip xfrm sets it


def test_auth_and_enc_round_trip_with_the_default_truncation():
    resource = state_resource(aead=None, auth={'name': 'sha256', 'key': '22' * 32}, enc={'name': 'aes', 'key': '33' * 16})
    parsed = round_trip(resource.new_message(resource.wanted()), XFRM_MSG_NEWSA)
    view = state_view(parsed, 'ns1')
    assert view['auth'] == {'name': 'hmac(sha256)', 'trunc_len': 96} and view['enc'] == {'name': 'cbc(aes)'}
    assert view['aead'] is None and view['netns'] == 'ns1'
    keys = {kind: algo['alg_key'] for kind, algo in algorithms_of(parsed).items()}
    assert keys == {'auth': bytes.fromhex('22' * 32), 'enc': bytes.fromhex('33' * 16)}


def test_policy_message_round_trip():
    resource = policy_resource(priority=7, src='10.1.0.0/16', dst='192.168.0.5')
    after = {'src': '10.1.0.0/16', 'dst': '192.168.0.5/32', 'dir': 'out', 'action': 'allow', 'priority': 7,
             'mark': {'value': 42, 'mask': 0xffffffff}, 'netns': None,
             'templates': [{'src': '10.0.0.1', 'dst': '10.0.0.2', 'proto': 'esp', 'mode': 'tunnel', 'reqid': 1, 'spi': 0}]}
    assert resource.wanted_templates(None) == after['templates']
    parsed = round_trip(resource.new_message(after), XFRM_MSG_NEWPOLICY)
    assert policy_view(parsed, None) == after
    assert resource._matches(parsed)
    assert not policy_resource(dir='in')._matches(parsed)
    assert not policy_resource(src='10.1.0.0/16', dst='192.168.0.5', mark=None)._matches(parsed)


# ---------------------------------------------------------------------------
# validation

@pytest.mark.parametrize('kind, spec, words', [
    ('aead', {'name': 'rfc4106(gcm(aes))', 'key': '11' * 16, 'icv_len': 128}, ['160, 224 or 288 bits', 'has 128 bits', '4-byte salt']),
    ('aead', {'name': 'gcm(aes)', 'key': '11' * 20, 'icv_len': 128}, ["unknown aead algorithm 'gcm(aes)'", 'rfc4106(gcm(aes))']),
    ('aead', {'name': 'rfc4543(gcm(aes))', 'key': '11' * 20, 'icv_len': 64}, ['aead.icv_len', 'ICV of 128 bits']),
    ('auth', {'name': 'hmac(sha1)', 'key': '11' * 32}, ['auth.key', '160 bits (40 hex digits)', 'has 256 bits']),
    ('auth', {'name': 'hmac(sha256)', 'key': '11' * 32, 'trunc_len': 300}, ['auth.trunc_len', 'at most 256']),
    ('enc', {'name': 'cbc(blowfish)', 'key': '11' * 4}, ['40 to 448 bits in steps of 8']),
    ('enc', {'name': 'twofish', 'key': 'xyz1'}, ['enc.key', 'hex digits']),
])
def test_bad_algorithms(kind, spec, words):
    with pytest.raises(ResourceError) as caught:
        check_algorithm(kind, spec)
    for word in words:
        assert word in str(caught.value)
    assert spec['key'] not in str(caught.value)


@pytest.mark.parametrize('kind, spec, name', [
    ('aead', {'name': 'rfc4106(gcm(aes))', 'key': '0x' + '11' * 36, 'icv_len': 96}, 'rfc4106(gcm(aes))'),
    ('auth', {'name': 'sha1', 'key': '11' * 20, 'trunc_len': 96}, 'hmac(sha1)'),
    ('enc', {'name': 'des3_ede', 'key': '0X' + '11' * 24}, 'cbc(des3_ede)'),
    ('enc', {'name': 'cipher_null', 'key': ''}, 'ecb(cipher_null)'),
])
def test_good_algorithms_get_the_kernel_name(kind, spec, name):
    assert check_algorithm(kind, spec)[0] == name


def test_keys_as_ip_xfrm_takes_them():
    assert parse_key('0x0aFF', 'k') == b'\x0a\xff' and parse_key(' 0aff ', 'k') == b'\x0a\xff'
    for bad in ('0x0', '0xg0', '0x 00'):
        with pytest.raises(ResourceError, match='k: the key must be an even number of hex digits'):
            parse_key(bad, 'k')


@pytest.mark.parametrize('options, words', [
    ({'spi': 0}, ['spi: 0 is not a security parameter index']),
    ({'spi': 1 << 32}, ['spi: 4294967296 is outside']),
    ({'src': '10.0.0.1', 'dst': 'fd00::2'}, ['src and dst: one is IPv4, the other IPv6']),
    ({'dst': '10.0.0.300'}, ["dst: '10.0.0.300' is not an IPv4 or IPv6 address"]),
    ({'mark': {'value': 3, 'mask': 1}}, ['mark.value: 0x3 has bits outside mark.mask 0x1']),
    ({'reqid': -1}, ['reqid: -1 is outside']),
])
def test_bad_state_options(options, words):
    with pytest.raises(ResourceError) as caught:
        state_resource(**options)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize('options, words', [
    ({'src': '10.0.0.1/8'}, ["src: '10.0.0.1/8' is not an address or a network"]),
    ({'template': {'src': '10.0.0.1'}}, ['template.dst: a tunnel-mode template needs both']),
    ({'template': {'src': '10.0.0.1', 'dst': 'fd00::1'}}, ['template.src and template.dst']),
    ({'priority': -1}, ['priority: -1 is outside']),
])
def test_bad_policy_options(options, words):
    with pytest.raises(ResourceError) as caught:
        policy_resource(**options)
    for word in words:
        assert word in str(caught.value)


def test_transport_template_may_leave_the_addresses_out():
    resource = policy_resource(template={'mode': 'transport'})
    assert resource.template['src'] == '0.0.0.0' and resource.template['dst'] == '0.0.0.0'


def test_marks():
    assert parse_mark(None) == (0, 0) and parse_mark({'value': 42}) == (42, 0xffffffff)
    assert parse_mark({'value': 0x10, 'mask': 0xf0}) == (0x10, 0xf0)
    with pytest.raises(ResourceError, match='mark.mask'):
        parse_mark({'value': 0, 'mask': 1 << 32})


# ---------------------------------------------------------------------------
# comparison and diff

def test_differences_leave_out_what_was_not_asked_for():
    current = {'src': 'a', 'reqid': 3, 'aead': None, 'auth': {'name': 'hmac(sha256)', 'trunc_len': 96},
               'enc': {'name': 'cbc(aes)'}}
    assert differences(current, dict(current, reqid=None, auth={'name': 'hmac(sha256)', 'trunc_len': None})) == []
    assert differences(current, dict(current, auth={'name': 'hmac(sha256)', 'trunc_len': 128})) == ['auth.trunc_len']
    assert differences(current, dict(current, auth=None, enc=None, aead={'name': 'x', 'icv_len': 128})) == ['aead', 'auth', 'enc']


def test_a_key_change_shows_in_the_diff_as_changed_only():
    before = {'spi': 1, 'aead': {'name': 'rfc4106(gcm(aes))', 'icv_len': 128}}
    change = StateChange('xfrm_state', 's', REPLACE, before, dict(before), ['aead.key'])
    diff = change.diff()
    assert diff['after']['aead'] == {'name': 'rfc4106(gcm(aes))', 'icv_len': 128, 'key': 'changed'}
    assert diff['before']['aead'] == before['aead'] and 'key' not in change.after['aead']


def test_templates_and_matching_states():
    have = [{'src': 'a', 'dst': 'b', 'proto': 'esp', 'mode': 'tunnel', 'reqid': 1, 'spi': 7}]
    assert not template_differs(have, [dict(have[0], spi=None, reqid=None)])
    assert template_differs(have, [dict(have[0], reqid=2)]) and template_differs(have, [])
    template = {'src': '10.0.0.1', 'dst': '10.0.0.2', 'proto': 'esp', 'mode': 'tunnel', 'reqid': 0, 'spi': 0}
    state = dict(template, reqid=5, spi=0x1000)
    assert state_matches(state, template) and state_matches(state, dict(template, reqid=5))
    assert not state_matches(state, dict(template, reqid=6)) and not state_matches(state, dict(template, dst='10.0.0.3'))
    assert not state_matches(dict(state, mode='transport'), template)
