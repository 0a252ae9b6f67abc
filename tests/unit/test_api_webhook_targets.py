"""Webhook targets: which addresses are internal, and how a delivery is pinned to the
address checked (so a second DNS lookup cannot swap in an internal one)."""

from __future__ import annotations

import ipaddress

import pytest

from services.api.webhooks.targets import (
    RefusedTarget,
    check_subscription,
    is_internal,
    pin_delivery,
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "10.0.0.1",  # private
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # link-local: cloud metadata
        "100.100.100.200",  # shared address space: some clouds' metadata
        "0.0.0.0",  # unspecified
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "2002:a00:1::",  # 6to4 of 10.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_not_internal(address: str) -> None:
    assert not is_internal(ipaddress.ip_address(address))


async def test_a_name_resolving_to_loopback_is_refused_at_subscription_and_delivery() -> None:
    with pytest.raises(RefusedTarget, match="localhost") as refused:
        await check_subscription("http://localhost:8080/hook", 5.0)
    assert "127.0.0.1" not in str(refused.value)  # the subscriber learns no resolved address
    assert refused.value.address is not None and is_internal(refused.value.address)
    with pytest.raises(RefusedTarget):
        await pin_delivery("http://localhost:8080/hook", 5.0)


async def test_literal_addresses_are_checked_without_dns() -> None:
    with pytest.raises(RefusedTarget):
        await check_subscription("http://[::1]/hook", 5.0)
    await check_subscription("https://93.184.215.14/hook", 5.0)
    pinned = await pin_delivery("https://93.184.215.14/hook", 5.0)
    assert str(pinned.url) == "https://93.184.215.14/hook"
    assert (pinned.headers, pinned.extensions) == ({}, {})


async def test_a_name_that_does_not_resolve_waits_for_delivery() -> None:
    await check_subscription("https://hooks.invalid/x", 5.0)  # RFC 6761: never resolves
    with pytest.raises(RefusedTarget, match="does not resolve"):
        await pin_delivery("https://hooks.invalid/x", 5.0)


async def test_a_delivery_goes_to_the_address_checked_under_its_own_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.api.webhooks import targets

    async def public(host: str, timeout_s: float) -> list[targets.Address]:
        assert host == "hooks.example.com"
        return [ipaddress.ip_address("93.184.215.14")]

    monkeypatch.setattr(targets, "resolve", public)
    pinned = await pin_delivery("https://hooks.example.com:8443/in?x=1", 5.0)
    assert str(pinned.url) == "https://93.184.215.14:8443/in?x=1"
    assert pinned.headers == {"Host": "hooks.example.com:8443"}
    assert pinned.extensions == {"sni_hostname": "hooks.example.com"}  # TLS checks the name
