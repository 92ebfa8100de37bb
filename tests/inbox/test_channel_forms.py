"""Issue 14.10: the unit page asked officials for raw Apprise URLs. A form per channel type (钉钉 robot, 企业微信
robot, SMTP) builds the URL; it is checked, encrypted and masked like a typed one, and the secrets stay out of the
page and the audit log."""

from __future__ import annotations

import apprise
import pytest
from sqlalchemy import func, select

from chunfeng import channels
from chunfeng.inbox.models import Channel
from chunfeng.org.models import AuditEntry
from tests.conftest import csrf_from, login


def test_each_form_builds_the_url_apprise_reads():
    url = channels.build_url("email", {"host": "smtp.example.gov.cn", "user": "ban@example.gov.cn",
                                       "password": "p@ss:/?#", "to": "a@example.cn, b@example.cn", "mode": "starttls"})
    plugin = apprise.Apprise.instantiate(url)
    assert (plugin.smtp_host, plugin.port, plugin.user, plugin.password, plugin.secure_mode) == \
        ("smtp.example.gov.cn", 587, "ban@example.gov.cn", "p@ss:/?#", "starttls")
    assert [t[1] for t in plugin.targets] == ["a@example.cn", "b@example.cn"]
    pasted = "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef0123"
    ding = apprise.Apprise.instantiate(channels.build_url("dingtalk", {"token": pasted, "secret": "SEC0a1b2c3d4e5f"}))
    assert (ding.token, ding.secret) == ("0123456789abcdef0123", "SEC0a1b2c3d4e5f")
    key = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    assert apprise.Apprise.instantiate(channels.build_url(
        "wecombot", {"key": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}"})).key == key


@pytest.mark.parametrize(("kind", "fields", "words"), [
    ("dingtalk", {"token": "abc"}, "access_token"),
    ("dingtalk", {"token": "0123456789abcdef0123", "secret": "有空格 的"}, "加签密钥"),
    ("wecombot", {"key": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"}, "key"),
    ("email", {"host": "localhost", "user": "u@x.cn", "password": "p", "to": "a@b.cn"}, "SMTP 服务器"),
    ("email", {"host": "smtp.x.cn", "port": "99999", "user": "u@x.cn", "password": "p", "to": "a@b.cn"}, "端口"),
    ("email", {"host": "smtp.x.cn", "user": "u@x.cn", "password": "", "to": "a@b.cn"}, "密码"),
    ("email", {"host": "smtp.x.cn", "user": "u", "password": "p", "to": "a@b.cn"}, "发件地址"),
    ("email", {"host": "smtp.x.cn", "user": "u@x.cn", "password": "p", "to": "nobody"}, "收件地址"),
    ("sms", {}, "未知的通道类型"),
])
def test_a_bad_field_is_named(kind, fields, words):
    with pytest.raises(channels.ChannelRefused, match=words):
        channels.build_url(kind, fields)


def test_the_unit_page_adds_channels_by_form(bureau, server):
    admin = login(server, "nat_admin")
    page = admin.get("/org/units/110101").text
    assert 'id="channel-dingtalk"' in page and 'id="channel-wecombot"' in page and 'id="channel-email"' in page
    secret, token = "SEC0a1b2c3d4e5f6789", "0123456789abcdef0123456789abcdef"
    added = admin.post("/inbox/channels", data={
        "csrf_token": csrf_from(page), "unit": "110101", "kind": "dingtalk", "label": "县局钉钉群",
        "token": f"https://oapi.dingtalk.com/robot/send?access_token={token}", "secret": secret})
    assert added.status_code == 303
    refused = admin.post("/inbox/channels", data={"csrf_token": csrf_from(page), "unit": "110101", "kind": "email",
                                                  "host": "smtp.x.cn", "smtp_user": "u@x.cn", "password": "p",
                                                  "to": "nobody"})
    assert refused.status_code == 400 and "收件地址" in refused.text
    with bureau.read() as s:
        assert s.scalar(select(Channel.url)) == f"dingtalk://{secret}@{token}/"
        assert s.scalar(select(func.count()).select_from(Channel)) == 1
        logged = " ".join(str(e.after) for e in s.scalars(select(AuditEntry).where(
            AuditEntry.action == "inbox.channel.added")))
        assert "dingtalk" in logged and secret not in logged and token not in logged
    shown = admin.get("/org/units/110101").text
    assert "县局钉钉群" in shown and secret not in shown and token not in shown
