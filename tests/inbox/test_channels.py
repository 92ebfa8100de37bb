"""Notification channels cannot reach the server's own network (issue 11: json://127.0.0.1:9911,
jsons://169.254.169.254 and xml://host:22 were accepted and called), and their URLs are kept encrypted."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from chunfeng import channels
from chunfeng.inbox import services as inbox
from chunfeng.inbox.models import Channel
from chunfeng.org.errors import ValidationFailed
from chunfeng.org.services import find_unit
from chunfeng.outbox import Delivery
from chunfeng.settings import Settings
from tests.conftest import csrf_from, login
from tests.inbox.test_delivery import hook  # noqa: F401  (the loopback receiver)

REFUSED = {
    "json://127.0.0.1:9911/x": "内部网络",
    "jsons://169.254.169.254/latest/meta-data": "内部网络",
    "json://0.0.0.0:8000/": "内部网络",
    "json://localhost:8000/": "内部网络",  # resolves to 127.0.0.1 and ::1
    "json://10.1.2.3/hook": "内部网络",
    "json://[::1]:8000/": "内部网络",
    "mailtos://user:pass@example.com?smtp=192.168.1.5": "内部网络",  # the SMTP server it would connect to
    "xml://example.com:22/": "不允许的通知地址类型",
    "form://example.com/": "不允许的通知地址类型",
    "json://no-such-host.invalid/": "无法解析",
    "nonsense": "无法识别",
}


def allow(*hosts: str) -> channels.ChannelRules:
    """The rules CHUNFENG_CHANNEL_HOSTS_ALLOWED=[hosts] gives, as the page or command passes them down."""
    return channels.ChannelRules(hosts_allowed=hosts)


@pytest.mark.parametrize("address, public", [
    ("127.0.0.1", False), ("::1", False), ("::ffff:127.0.0.1", False), ("0.0.0.0", False), ("::", False),
    ("169.254.169.254", False), ("fe80::1", False), ("10.0.0.1", False), ("172.16.5.4", False),
    ("192.168.1.1", False), ("fd00::1", False), ("100.64.0.1", False), ("224.0.0.1", False),
    ("::ffff:10.0.0.1", False), ("8.8.8.8", True), ("2001:4860:4860::8888", True), ("::ffff:8.8.8.8", True),
])
def test_which_addresses_are_public(address, public):
    assert channels.public(ipaddress.ip_address(address)) is public


def test_internal_hosts_and_other_schemes_are_refused_when_saved(bureau, system):
    for url, reason in REFUSED.items():
        with pytest.raises(ValidationFailed, match=reason):
            with bureau.write() as s:
                inbox.add_channel(session=s, actor=system, unit_code="110101", url=url, channel_rules=allow())
    with bureau.read() as s:
        assert s.scalar(select(func.count()).select_from(Channel)) == 0
    for url in ("dingtalk://token123", "wecombot://botkey", "feishu://token"):  # their endpoints are fixed
        channels.check(url)


def test_the_allow_list_admits_a_listed_host_or_network():
    rules = allow("127.0.0.1")
    channels.check("json://127.0.0.1:9911/x", rules=rules)
    channels.check("json://localhost:9911/x", rules=rules)  # a name whose every address is listed
    with pytest.raises(channels.ChannelRefused, match="10.0.0.1"):  # every address it resolves to counts
        channels.check("json://mixed.example/", rules=rules, resolver=lambda host: [ipaddress.ip_address("8.8.8.8"),
                                                                                    ipaddress.ip_address("127.0.0.1"),
                                                                                    ipaddress.ip_address("10.0.0.1")])
    with pytest.raises(channels.ChannelRefused, match=r"\(169\.254\.169\.254\)"):
        channels.check("json://mapped.example/", rules=rules,
                       resolver=lambda host: [ipaddress.ip_address("::ffff:169.254.169.254")])
    channels.check("json://public.example/", rules=rules, resolver=lambda host: [ipaddress.ip_address("8.8.8.8")])
    channels.check("json://mixed.example/", rules=allow("10.0.0.0/8", "127.0.0.1", "::1/128"),
                   resolver=lambda host: [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.1")])
    rules = allow("gateway.internal")
    channels.check("json://gateway.internal/sms", rules=rules)  # a listed name is not resolved
    with pytest.raises(channels.ChannelRefused, match="169.254.169.254"):
        channels.check("jsons://169.254.169.254/", rules=rules)


def test_checked_again_before_sending(bureau, system, hook):  # noqa: F811
    with bureau.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110101", url=hook.url, label="值班群",
                          channel_rules=allow("127.0.0.1"))
        inbox.post(s, unit=find_unit(session=s, code="110101"), kind="reminder", title="催办")
    # the allow-list changed since the channel was saved
    assert inbox.deliver_pending(bureau, settings=Settings(channel_hosts_allowed=[])).failed == 1 and hook.received == []
    with bureau.read() as s:
        assert "内部网络" in s.scalars(select(Delivery)).one().last_error
    later = datetime.utcnow() + timedelta(hours=1)  # past the back-off
    assert inbox.deliver_pending(bureau, settings=hook.settings, now=later).sent == 1
    assert [m["title"] for m in hook.received] == ["催办"]


def test_urls_are_encrypted_at_rest_and_masked_on_the_page(bureau, system, server):
    token = "dingtalk://0123456789abcdef0123456789abcdefSECRET9"
    with bureau.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110101", url=token, label="县局钉钉群")
    with bureau.read() as s:
        raw = s.execute(text("SELECT url FROM inbox_channel")).scalar()
        assert raw.startswith("sm4gcm:") and "SECRET" not in raw and s.scalar(select(Channel.url)) == token
    admin = login(server, "nat_admin")
    page = admin.get("/org/units/110101").text
    assert "县局钉钉群" in page and "dingtalk://…RET9" in page and "0123456789abcdef" not in page
    for url in ("json://127.0.0.1:9911/x", "jsons://169.254.169.254/", "xml://example.com:22/"):
        refused = admin.post("/inbox/channels", data={"csrf_token": csrf_from(page), "unit": "110101", "url": url})
        assert refused.status_code == 400 and ("内部网络" in refused.text or "不允许" in refused.text)
    with bureau.read() as s:
        assert s.scalar(select(func.count()).select_from(Channel)) == 1


def test_a_redirect_is_not_followed():
    """A host that passes the check answers 302 to an internal address: the request stops there."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    hits: list[str] = []

    class Inner(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args):
            pass

    inner = HTTPServer(("127.0.0.1", 0), Inner)

    class Redirecting(Inner):
        def do_POST(self):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{inner.server_port}/latest/meta-data")
            self.end_headers()

    outer = HTTPServer(("127.0.0.1", 0), Redirecting)
    for srv in (inner, outer):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        for url in (f"json://127.0.0.1:{outer.server_port}/hook", f"json://127.0.0.1:{outer.server_port}/hook?redirect=yes"):
            # 127.0.0.1 stands for a public host here
            assert not channels.sender(url, rules=allow("127.0.0.1")).notify(title="t", body="b")
        assert hits == []
    finally:
        inner.shutdown()
        outer.shutdown()
