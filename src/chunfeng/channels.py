"""Which notification channel URLs Chunfeng may call: the one check against server-side request forgery.

A channel URL (a unit's inbox channel, a CHUNFENG_PUSH_CHANNELS template) makes the server connect somewhere.
Left open, `json://127.0.0.1:9911`, `jsons://169.254.169.254` (cloud metadata) or `xml://db:5432` let whoever
may save a channel probe and call the internal network. So a URL must use a scheme from
CHUNFENG_CHANNEL_SCHEMES, and the host it connects to must resolve only to public addresses, unless the host
(or one of its addresses' networks) is listed in CHUNFENG_CHANNEL_HOSTS_ALLOWED. It is checked when a channel
is saved and again right before each send (a name may resolve elsewhere by then).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

import apprise

from chunfeng.errors import Invalid
from chunfeng.settings import DEFAULTS, Settings

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
    scheme = scheme_of(url)
    schemes = [s.lower() for s in rules.schemes]
    plugin = apprise.Apprise.instantiate(url) if scheme else None
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


def sender(url: str, *, rules: ChannelRules = ChannelRules()) -> apprise.Apprise:
    """An Apprise sender for a checked `url` that never follows a redirect (a public host answering 302 to
    169.254.169.254 would lead the request where `check` refused to go; `?redirect=yes` in the URL is overridden)."""
    check(url, rules=rules)
    plugin = apprise.Apprise.instantiate(url.strip(), asset=apprise.AppriseAsset(http_redirects=False))
    plugin.redirects = False
    notifier = apprise.Apprise()
    notifier.add(plugin)
    return notifier
