"""Which notification channel URLs Chunfeng may call: the one check against server-side request forgery.

A channel URL (a unit's inbox channel, a CHUNFENG_PUSH_CHANNELS template) makes the server connect somewhere.
Left open, `json://127.0.0.1:9911`, `jsons://169.254.169.254` (cloud metadata) or `xml://db:5432` let whoever
may save a channel probe and call the internal network. So a URL must use a scheme from
CHUNFENG_CHANNEL_SCHEMES, and the host it connects to must resolve only to public addresses, unless the host
(or one of its addresses' networks) is listed in CHUNFENG_CHANNEL_HOSTS_ALLOWED. It is checked when a channel
is saved and again right before each send (a name may resolve elsewhere by then).
"""

from __future__ import annotations

import functools
import http.cookiejar
import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import apprise
import requests
import requests.adapters
import requests.api

from chunfeng.errors import Invalid
from chunfeng.settings import DEFAULTS, Settings

_PLUGINS = apprise.plugins.N_MGR  # Apprise's plugins by scheme
# Services whose endpoint Apprise fixes (the URL's "host" is a token): nothing in the URL chooses where to connect.
FIXED_ENDPOINTS = {"dingtalk", "wecombot", "feishu"}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ChannelRefused(Invalid, ValueError):
    """A channel URL Chunfeng will not call; the message says why, in words for people."""


@dataclass(frozen=True)
class ChannelRules:
    """The schemes a channel may use and the inner hosts it may reach (settings channel_schemes and
    channel_hosts_allowed), passed down from the page or command that read the settings. The default is the
    settings' default: the usual schemes, no inner host."""

    schemes: tuple[str, ...] = tuple(DEFAULTS.channel_schemes)
    hosts_allowed: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ChannelRules:
        return cls(tuple(settings.channel_schemes), tuple(settings.channel_hosts_allowed))


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].strip().lower() if "://" in url else ""


def masked(url: str) -> str:
    """What a page shows of a channel URL, which may hold a token or a password: the scheme and the last 4."""
    scheme = scheme_of(url)
    return f"{scheme}://…{url[-4:]}" if scheme else "…"


def _unmapped(address: Address) -> Address:
    """::ffff:127.0.0.1 is 127.0.0.1, wherever it is checked."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def public(address: Address) -> bool:
    address = _unmapped(address)
    return address.is_global and not (address.is_multicast or address.is_unspecified)


def _networks(listed: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in listed:
        try:
            networks.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
        except ValueError:
            continue  # a host name
    return networks


def resolve(host: str) -> list[Address]:
    """Every address `host` resolves to (IPv4 and IPv6); ChannelRefused when it resolves to none."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None)
    except (OSError, UnicodeError):
        raise ChannelRefused(f"通知地址的主机“{host}”无法解析") from None
    return sorted({ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}, key=str)


def check(url: str, *, rules: ChannelRules = ChannelRules(),
          resolver: Callable[[str], list[Address]] = resolve) -> None:
    """Refuse (ChannelRefused) a URL whose scheme is not allowed, which Apprise cannot read, or whose host
    resolves to a loopback, link-local, private or otherwise non-public address that is not allow-listed."""
    url = url.strip()
    _check(url, apprise.Apprise.instantiate(url) if scheme_of(url) else None, rules=rules, resolver=resolver)


def _check(url: str, plugin, *, rules: ChannelRules, resolver: Callable[[str], list[Address]]) -> None:
    """`check` of the plugin Apprise read from `url` (None: it could not)."""
    scheme = scheme_of(url)
    schemes = [s.lower() for s in rules.schemes]
    if plugin is None:
        raise ChannelRefused(f"无法识别的通知地址“{masked(url)}”(应为 Apprise 支持的地址,如 "
                             f"{'、'.join(s + '://' for s in schemes)})")
    if scheme not in schemes:
        raise ChannelRefused(f"不允许的通知地址类型“{scheme}://”,可用:{'、'.join(schemes)}"
                             "(由管理员在 CHUNFENG_CHANNEL_SCHEMES 中设定)")
    if scheme in FIXED_ENDPOINTS:
        return
    host = getattr(plugin, "smtp_host", None) or getattr(plugin, "host", None)
    if not host:
        raise ChannelRefused(f"通知地址“{masked(url)}”没有主机")
    if host.lower().strip("[]") in {e.strip().lower().strip("[]") for e in rules.hosts_allowed}:
        return
    networks = _networks(rules.hosts_allowed)
    # Every address counts: a name that also resolves to 127.0.0.1 would let a connection land there.
    inner = [str(a) for a in map(_unmapped, resolver(host))
             if not public(a) and not any(a in network for network in networks)]
    if inner:
        raise ChannelRefused(f"通知地址的主机“{host}”指向本机或内部网络地址({'、'.join(inner)}),不予调用;"
                             "确需使用请由管理员列入 CHUNFENG_CHANNEL_HOSTS_ALLOWED")


def sender(url: str, *, rules: ChannelRules = ChannelRules(),
           resolver: Callable[[str], list[Address]] = resolve):
    """The Apprise plugin for a checked `url` (its `notify(title=…, body=…)` sends), never following a redirect (a
    public host answering 302 to 169.254.169.254 would lead the request where `check` refused to go; `?redirect=yes`
    in the URL is overridden). It notifies in the calling thread: the outbox runs its own bounded pool, and Apprise's
    pools (one per notify, or its process-wide one of cores + 4 threads when a service timeout is set) cost a thread
    hop per message and capped every sender together at six sends in flight; the plugin's socket timeouts (4 s)
    still bound a send. The URL is read once, for the check and the send (reading it is most of a send's CPU), and
    the plugin is called without an `Apprise` around it: its locale, tag matching, retry loop and log metadata
    (which renders the URL twice more) were a third of a message's CPU, and the outbox keeps the retries itself."""
    url = url.strip()
    asset = apprise.AppriseAsset(http_redirects=False, async_mode=False, service_timeout=0)
    plugin = _instantiate(url, asset) if scheme_of(url) else None
    _check(url, plugin, rules=rules, resolver=resolver)
    plugin.redirects = False
    return plugin


def _instantiate(url: str, asset: apprise.AppriseAsset):
    """`Apprise.instantiate` for a URL with its plugin's scheme, without the two log lines it formats whether or not
    they are logged (the URL masked for secure logging, then the plugin's URL rendered again): a fifth of a send's
    CPU. None where Apprise would give None; a native URL (https://discord.com/…) goes the whole way."""
    scheme = scheme_of(url)
    if scheme not in _PLUGINS:
        return apprise.Apprise.instantiate(url, asset=asset)
    kind = _PLUGINS[scheme]
    found = kind.parse_url(url.replace("/#", "/%23")) if kind.enabled else None
    if not found:
        return None
    try:
        plugin = kind(**{**found, "tag": set(), "asset": asset})
    except Exception:  # noqa: BLE001 (as Apprise: a URL its plugin refuses is no channel)
        return None
    return plugin if plugin.enabled else None


# --- keep-alive: one HTTP session for a sender's messages ---------------------------------------------------------
# Apprise's plugins call requests' module functions (requests.post …), and each such call builds a Session, scans the
# environment for proxies and opens a connection of its own: most of a message's CPU in a campaign's sender (the
# profile of 3,000 sends). Inside `keep_alive` the calls of the bound threads go through one session instead; every
# other thread (a page testing a channel) keeps requests' own behaviour.
_bound = threading.local()
_installed = threading.Lock()
_plain_request = requests.api.request


def _request(method, url, **kwargs):
    session = getattr(_bound, "session", None)
    if session is None:
        return _plain_request(method, url, **kwargs)
    return session.request(method=method, url=url, **kwargs)


def _install() -> None:
    """Route requests' module functions through `_request` (once per process; requests.post and the others call
    `request` by its module's name)."""
    with _installed:
        if requests.api.request is not _request:
            requests.api.request = _request
            requests.request = _request


class _KeepAliveSession(requests.Session):
    """requests' behaviour for one-off calls — the environment's proxies and CA bundle, no session defaults — but
    looked up once per host instead of per message, and no cookie kept (a gateway's cookie must not ride along with
    the next message, nor reach another channel)."""

    def __init__(self, connections: int):
        super().__init__()
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=max(connections, 1))
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self._environment = functools.lru_cache(maxsize=256)(self._looked_up)

    def _looked_up(self, origin: str, no_proxy, stream, verify, cert) -> dict:
        proxies = {"no_proxy": no_proxy} if no_proxy is not None else {}
        return super().merge_environment_settings(origin, proxies, stream, verify, cert)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies and set(proxies) - {"no_proxy"}:  # proxies given by the caller: as requests does it
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        found = self._environment(f"{parts.scheme}://{parts.netloc}/", (proxies or {}).get("no_proxy"), stream,
                                  verify if isinstance(verify, bool | str | None) else repr(verify),
                                  cert if isinstance(cert, str | tuple | None) else repr(cert))
        return {**found, "proxies": dict(found["proxies"] or {})}


@contextmanager
def keep_alive(connections: int = 1) -> Iterator[Callable[[], None]]:
    """Within the block, Apprise's HTTP requests from this thread — and from each thread that calls the yielded
    `bind` (a pool's initializer) — reuse one session: its connections kept alive (up to `connections` per host, as
    many as the sends in flight) and the proxy environment read once per host. Closed at the end."""
    _install()
    session = _KeepAliveSession(connections)

    def bind() -> None:
        _bound.session = session

    previous = getattr(_bound, "session", None)
    bind()
    try:
        yield bind
    finally:
        _bound.session = previous
        session.close()

# The channel types an official sets up with a form instead of writing an Apprise URL; "url" keeps the raw form
# for the rest (飞书, webhooks).
CHANNEL_KINDS = {"dingtalk": "钉钉群机器人", "wecombot": "企业微信群机器人", "email": "电子邮件(SMTP)",
                 "url": "其他(Apprise 地址)"}
_SMTP_MODES = {"ssl": 465, "starttls": 587}


def _pasted(value: str, parameter: str) -> str:
    """A robot's token as typed, or taken from the whole webhook address pasted in (…?access_token=X, …?key=X)."""
    value = value.strip()
    if "://" in value:
        found = parse_qs(urlsplit(value).query).get(parameter)
        return found[0].strip() if found else ""
    return value


def build_url(kind: str, fields: Mapping[str, str]) -> str:
    """The Apprise URL for a channel described field by field (the unit page's forms); ChannelRefused naming the
    field that is missing or malformed. The URL is then checked and stored like a typed one (`check`)."""
    def field(name: str) -> str:
        return (fields.get(name) or "").strip()

    if kind == "dingtalk":
        token, secret = _pasted(field("token"), "access_token"), field("secret")
        if not re.fullmatch(r"[A-Za-z0-9]{16,128}", token):
            raise ChannelRefused("钉钉机器人的 access_token 应为机器人 Webhook 地址中 access_token= 之后的字母和数字")
        if secret and not re.fullmatch(r"[A-Za-z0-9]{8,128}", secret):
            raise ChannelRefused("钉钉机器人的加签密钥应为以 SEC 开头的字母和数字")
        return f"dingtalk://{secret + '@' if secret else ''}{token}/"
    if kind == "wecombot":
        key = _pasted(field("key"), "key")
        if not re.fullmatch(r"[A-Za-z0-9-]{16,64}", key):
            raise ChannelRefused("企业微信机器人的 key 应为机器人 Webhook 地址中 key= 之后的一串字母、数字和连字符")
        return f"wecombot://{key}"
    if kind == "email":
        host, user, password, to, mode = field("host"), field("user"), field("password"), field("to"), field("mode")
        mode = mode if mode in _SMTP_MODES else "ssl"
        port = field("port") or str(_SMTP_MODES[mode])
        if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", host) or "." not in host:
            raise ChannelRefused("SMTP 服务器应为主机名,如 smtp.example.gov.cn")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ChannelRefused(f"SMTP 端口“{port}”应为 1–65535 的数字")
        if not user or not password:
            raise ChannelRefused("请填写发件邮箱的用户名和密码(或授权码)")
        sender_address = field("from") or user
        recipients = [a for a in re.split(r"[,,;;\s]+", to) if a]
        if not recipients or not all(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a) for a in [*recipients, sender_address]):
            raise ChannelRefused("请填写有效的收件地址(多个用逗号分隔),用户名不是邮箱时另填发件地址")
        query = urlencode({"smtp": host, "mode": mode, "from": sender_address, "to": ",".join(recipients)})
        return f"mailtos://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}?{query}"
    if kind == "url":
        return field("url")
    raise ChannelRefused(f"未知的通道类型“{kind}”,可选:{'、'.join(CHANNEL_KINDS.values())}")
