"""The Aliyun RPC v1 signer against the vectors of wechat-aliyun.md §4.2, and the client against the fake."""

import logging
from urllib.parse import parse_qsl

import aiohttp
import pytest

from jiandong.integrations.aliyun import (
    AliyunError,
    AliyunRpc,
    canonical_query,
    percent_encode,
    rpc_signature,
    string_to_sign,
)
from tests.fakes.aliyun import FakeDysmsapi, fake_signature

DESCRIBE_REGIONS = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}

SMS_EXAMPLE = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}

OWN_SECRET = "TestAccessKeySecret0000000000"
OWN_SEND_SMS = {
    "AccessKeyId": "LTAI5tTestKeyId0000000",
    "Action": "SendSms",
    "Format": "JSON",
    "PhoneNumbers": "13800138000",
    "RegionId": "cn-hangzhou",
    "SignName": "体育俱乐部",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_123456789",
    "TemplateParam": '{"code":"482913"}',
    "Timestamp": "2024-01-01T04:30:00Z",
    "Version": "2017-05-25",
}


def test_describe_regions_official_example():
    assert string_to_sign(DESCRIBE_REGIONS) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    )
    assert rpc_signature(DESCRIBE_REGIONS, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_describe_regions_old_timestamp_spelling():
    params = dict(DESCRIBE_REGIONS)
    params["TimeStamp"] = params.pop("Timestamp")
    assert rpc_signature(params, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_sms_doc_example():
    assert rpc_signature(SMS_EXAMPLE, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_own_send_sms_get_vector():
    assert canonical_query(OWN_SEND_SMS) == (
        "AccessKeyId=LTAI5tTestKeyId0000000&Action=SendSms&Format=JSON&PhoneNumbers=13800138000"
        "&RegionId=cn-hangzhou&SignName=%E4%BD%93%E8%82%B2%E4%BF%B1%E4%B9%90%E9%83%A8"
        "&SignatureMethod=HMAC-SHA1&SignatureNonce=7c9e6679-7425-40de-944b-e07fc1f90ae7&SignatureVersion=1.0"
        "&TemplateCode=SMS_123456789&TemplateParam=%7B%22code%22%3A%22482913%22%7D"
        "&Timestamp=2024-01-01T04%3A30%3A00Z&Version=2017-05-25"
    )
    assert string_to_sign(OWN_SEND_SMS, "GET") == (
        "GET&%2F&AccessKeyId%3DLTAI5tTestKeyId0000000%26Action%3DSendSms%26Format%3DJSON"
        "%26PhoneNumbers%3D13800138000%26RegionId%3Dcn-hangzhou"
        "%26SignName%3D%25E4%25BD%2593%25E8%2582%25B2%25E4%25BF%25B1%25E4%25B9%2590%25E9%2583%25A8"
        "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D7c9e6679-7425-40de-944b-e07fc1f90ae7"
        "%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_123456789"
        "%26TemplateParam%3D%257B%2522code%2522%253A%2522482913%2522%257D"
        "%26Timestamp%3D2024-01-01T04%253A30%253A00Z%26Version%3D2017-05-25"
    )
    signature = rpc_signature(OWN_SEND_SMS, OWN_SECRET, "GET")
    assert signature == "Bs3OUb/fOCcj2tAwX61yl73Ve8s="
    assert percent_encode(signature) == "Bs3OUb%2FfOCcj2tAwX61yl73Ve8s%3D"


def test_own_send_sms_post_vector():
    assert string_to_sign(OWN_SEND_SMS, "POST").startswith("POST&%2F&AccessKeyId%3D")
    assert rpc_signature(OWN_SEND_SMS, OWN_SECRET, "POST") == "eRsjjHod+/4qFrl0exC/aXbdTjw="


def test_signature_param_is_not_signed():
    signed = {**OWN_SEND_SMS, "Signature": "anything"}
    assert rpc_signature(signed, OWN_SECRET) == "Bs3OUb/fOCcj2tAwX61yl73Ve8s="


def test_fake_signer_agrees():
    # The fake Dysmsapi signs its own way; both must meet the same vectors or the fake proves nothing.
    assert fake_signature(OWN_SEND_SMS, OWN_SECRET, "GET") == "Bs3OUb/fOCcj2tAwX61yl73Ve8s="
    assert fake_signature(SMS_EXAMPLE, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [("a b", "a%20b"), ("*", "%2A"), ("~-_.", "~-_."), ("/=&+", "%2F%3D%26%2B"), ("体", "%E4%BD%93")],
)
def test_percent_encode(raw, encoded):
    assert percent_encode(raw) == encoded


async def call_fake(fake, server, secret=None, **params):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as session:
        rpc = AliyunRpc(session, str(server.make_url("/")), fake.access_key_id, secret or fake.access_key_secret)
        return await rpc.call("SendSms", "2017-05-25", params)


SEND = {
    "PhoneNumbers": "13800138000",
    "SignName": "体育俱乐部",
    "TemplateCode": "SMS_1",
    "TemplateParam": '{"code":"012345"}',
}


async def test_client_call_signs_and_sends_common_params(aiohttp_server):
    fake = FakeDysmsapi()
    server = await aiohttp_server(fake.app())
    answer = await call_fake(fake, server, **SEND)
    assert answer["Code"] == "OK" and answer["RequestId"]
    (params,) = fake.requests
    common = ("Format", "SignatureMethod", "SignatureVersion", "RegionId", "Action", "Version")
    assert {k: params[k] for k in common} == {
        "Format": "JSON",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "RegionId": "cn-hangzhou",
        "Action": "SendSms",
        "Version": "2017-05-25",
    }
    assert params["AccessKeyId"] == fake.access_key_id
    assert len(params["SignatureNonce"]) == 36
    assert fake.sent[0].template_param == {"code": "012345"} and fake.sent[0].sign_name == "体育俱乐部"
    await call_fake(fake, server, **SEND)
    assert len(fake.nonces) == 2


async def test_client_query_is_encoded_as_signed(aiohttp_server):
    fake = FakeDysmsapi()
    server = await aiohttp_server(fake.app())
    async with aiohttp.ClientSession() as session:
        rpc = AliyunRpc(session, str(server.make_url("/")), "id", "secret")
        query = rpc.signed_query("SendSms", "2017-05-25", {"SignName": "a b*~", "TemplateParam": '{"code":"1"}'})
    pairs = dict(parse_qsl(query))
    assert "SignName=a%20b%2A~" in query and "TemplateParam=%7B%22code%22%3A%221%22%7D" in query
    assert rpc_signature(pairs, "secret") == pairs["Signature"]


async def test_client_wrong_secret_is_signature_error(aiohttp_server, caplog):
    fake = FakeDysmsapi()
    server = await aiohttp_server(fake.app())
    with pytest.raises(AliyunError) as info:
        await call_fake(fake, server, secret="not-the-secret", **SEND)
    assert info.value.code == "SignatureDoesNotMatch" and info.value.request_id
    assert fake.sent == []
    assert "SignatureDoesNotMatch" in caplog.text and info.value.request_id in caplog.text
    assert "not-the-secret" not in caplog.text and fake.access_key_secret not in caplog.text


async def test_client_business_error_is_returned_as_answer(aiohttp_server):
    fake = FakeDysmsapi()
    fake.fail_code = "isv.BUSINESS_LIMIT_CONTROL"
    server = await aiohttp_server(fake.app())
    answer = await call_fake(fake, server, **SEND)
    assert answer["Code"] == "isv.BUSINESS_LIMIT_CONTROL"


async def test_client_http_500_without_json(aiohttp_server):
    fake = FakeDysmsapi()
    fake.http_status = 500
    server = await aiohttp_server(fake.app())
    with pytest.raises(AliyunError) as info:
        await call_fake(fake, server, **SEND)
    assert info.value.code == "HTTP500"


async def test_client_timeout(aiohttp_server, caplog):
    caplog.set_level(logging.WARNING)
    fake = FakeDysmsapi()
    fake.delay = 1.0
    server = await aiohttp_server(fake.app())
    with pytest.raises(AliyunError) as info:
        await call_fake(fake, server, **SEND)
    assert info.value.code == "Timeout"
    assert "Code=Timeout" in caplog.text


async def test_client_unreachable(unused_tcp_port):
    async with aiohttp.ClientSession() as session:
        rpc = AliyunRpc(session, f"http://127.0.0.1:{unused_tcp_port}/", "id", "secret")
        with pytest.raises(AliyunError) as info:
            await rpc.call("SendSms", "2017-05-25", SEND)
    assert info.value.code == "NetworkError"


def test_repr_hides_secret():
    rpc = AliyunRpc(None, "https://dysmsapi.aliyuncs.com/", "LTAIid", "topsecret")  # type: ignore[arg-type]
    assert "topsecret" not in repr(rpc)
