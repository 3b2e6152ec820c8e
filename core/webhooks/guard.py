"""The SSRF guard: where a webhook may be delivered.

A delivery goes only to public (globally routable) addresses. The host is
resolved on every attempt and every address it resolves to is checked, then
the connection is made to the checked address itself (see
``core.webhooks.transport``), so a name that later resolves elsewhere (DNS
rebinding) cannot slip past. Loopback, private (10/8, 172.16/12, 192.168/16,
fc00::/7), link-local (169.254/16 with the cloud metadata address, fe80::/10),
shared (100.64/10), multicast, reserved and unspecified addresses are refused,
including IPv4 addresses written inside IPv6. Hosts named in the allowlist
(``TONEHUB_WEBHOOK_ALLOW_HOSTS``) skip the check: tests and local demos.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection

from core.errors import WebhookUrlForbidden

Resolver = Callable[[str, int], list[str]]
"""Host and port to the addresses to try."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for a TCP connection."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    """Whether an address is globally routable (and not multicast)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        if ip in _NAT64:  # a translated IPv4 address: that address counts
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        mapped = ip.ipv4_mapped or ip.sixtofour if ip.version == 6 else None
        if mapped is not None:
            ip = mapped
    return ip.is_global and not ip.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
"""The well-known NAT64 prefix (RFC 6052): the IPv4 address inside counts."""
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
"""The local-use NAT64 prefix (RFC 8215): never public."""


def allowed(host: str, allow_hosts: Collection[str]) -> bool:
    """Whether the host is on the allowlist (case-insensitive, exact)."""
    return host.lower().strip("[]") in {h.lower().strip("[]") for h in allow_hosts}


def check_literal(host: str, allow_hosts: Collection[str]) -> None:
    """Refuse a URL whose host is a non-public IP literal (when saving it).

    Raises:
        WebhookUrlForbidden: The host is such a literal and not allowed.
    """
    if allowed(host, allow_hosts):
        return
    try:
        public = is_public(host.strip("[]"))
    except ValueError:
        return  # a name: checked after resolution on every attempt
    if not public:
        raise WebhookUrlForbidden(
            f"Webhooks cannot be delivered to {host}: only public addresses "
            "are allowed.",
            field="url",
        )


def resolve_public(
    host: str,
    port: int,
    *,
    allow_hosts: Collection[str],
    resolver: Resolver = system_resolver,
) -> list[str]:
    """Resolve a host and check every address it gives.

    Returns:
        The addresses to connect to (all checked).

    Raises:
        WebhookUrlForbidden: Any address is not public (and the host is not
            allowed), or the name does not resolve.
    """
    try:
        addresses = resolver(host.strip("[]"), port)
    except (OSError, UnicodeError) as exc:
        raise WebhookUrlForbidden(f"The host {host} does not resolve.") from exc
    if not addresses:
        raise WebhookUrlForbidden(f"The host {host} does not resolve.")
    if allowed(host, allow_hosts):
        return addresses
    bad = [a for a in addresses if not is_public(a)]
    if bad:
        raise WebhookUrlForbidden(
            f"The host {host} resolves to {bad[0]}, which is not a public "
            "address; webhooks are never delivered there."
        )
    return addresses
