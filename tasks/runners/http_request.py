"""http-request: one HTTP call with requests; 2xx/3xx succeed, anything else fails.

The request runs in a thread so the runner can keep polling for cancel and enforce the
whole-call timeout (requests' own timeout bounds each connect/read, not the total).

It reaches public addresses only, unless the operator's HTTP_ALLOWED_NETWORKS or the
action's own immutable ``allowed_networks`` allow a host or a network. Every connection the
session opens (the first, and each redirect's) resolves the host once, checks every address
and connects to a checked address, so a DNS answer that changes between the check and the
connect cannot slip through; Host and TLS SNI still name the host. Proxies and .netrc from
the environment are not used: a proxy would connect on the runner's behalf, unchecked.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from flask import current_app, has_app_context
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

from app.engine.parameters import ALLOWED_NETWORKS, credential_header
from tasks.runners.base import (
    CANCELED,
    FAILED,
    SUCCEEDED,
    TIMEOUT,
    RunContext,
    Runner,
    RunResult,
    register,
)
from tasks.runners.common import describe_stop, effective_timeout
from tasks.runners.process import POLL

BODY_CAP = 10 * 1024 * 1024  # bytes of response body kept
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
MAX_REDIRECTS = 10
ALLOW_HINT = "allow it with HTTP_ALLOWED_NETWORKS or the action's allowed_networks"
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not private to Python
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RefusedDestination(Exception):
    """A connection the allow-list does not permit, raised before anything is sent.

    Not an OSError, so urllib3 and requests let it through unwrapped and untried again.
    """


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, compatible), if any."""
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped form", address.ipv4_mapped
    if address.sixtofour is not None:
        return "a 6to4 form", address.sixtofour
    if address in NAT64_PREFIX or (address in IPV4_COMPATIBLE and int(address) > 1):
        form = "a NAT64 form" if address in NAT64_PREFIX else "an IPv4-compatible form"
        return form, ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: Address) -> str | None:
    """Why ``address`` is internal ("a loopback address", ...); None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            form, inner = embedded
            kind = address_kind(inner)
            return f"{form} of {inner}, {kind}" if kind else None
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (where cloud metadata services answer)"),
        (address.is_multicast, "a multicast address"),
        (address in SHARED_ADDRESS_SPACE, "a shared address (100.64.0.0/10)"),
        (address.is_private, "a private address"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "a site-local address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((kind for internal, kind in checks if internal), None)


def _host_key(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class Destinations:
    """The internal destinations one request may reach (public addresses always may)."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, words: Iterable[str]) -> Destinations:
        """From words that are each a host name, an IP address or a CIDR."""
        names: set[str] = set()
        networks: list[Network] = []
        for word in words:
            key = _host_key(str(word))
            if not key:
                continue
            try:
                networks.append(ipaddress.ip_network(key, strict=False))
            except ValueError:
                names.add(key)
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, address: Address) -> bool:
        if _host_key(host) in self.names:
            return True
        candidates: list[Address] = [address]
        if isinstance(address, ipaddress.IPv6Address) and (embedded := embedded_ipv4(address)) is not None:
            candidates.append(embedded[1])
        return any(a.version == n.version and a in n for a in candidates for n in self.networks)

    def refusal(self, host: str, address: Address) -> str | None:
        """Why a connection to ``address`` (found for ``host``) is refused; None if it is not."""
        kind = address_kind(address)
        if kind is None or self.allows(host, address):
            return None
        try:
            literal = ipaddress.ip_address(_host_key(host)) == address
        except ValueError:
            literal = False
        if literal:
            return f"{address} is {kind}; {ALLOW_HINT}."
        return f"{host} resolves to {address}, {kind}; {ALLOW_HINT}."


class _GuardedConnection(HTTPConnection):
    """A urllib3 connection that resolves its host once, refuses it unless every address is
    allowed, and connects to a checked address (never resolving again)."""

    destinations = Destinations()

    def _new_conn(self) -> socket.socket:
        try:
            found = socket.getaddrinfo(self._dns_host, self.port, connection.allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        addresses: list[str] = []
        for *_, sockaddr in found:
            problem = self.destinations.refusal(self.host, ipaddress.ip_address(sockaddr[0]))
            if problem:
                raise RefusedDestination(problem)
            if sockaddr[0] not in addresses:
                addresses.append(sockaddr[0])
        error: OSError | None = None
        for address in addresses:
            try:
                sock = connection.create_connection((address, self.port), self.timeout, source_address=self.source_address,
                                                    socket_options=self.socket_options)
            except OSError as exc:
                error = exc
                continue
            # The peer is what was checked (a literal is never resolved); checked again all the same.
            problem = self.destinations.refusal(self.host, ipaddress.ip_address(sock.getpeername()[0]))
            if problem:
                sock.close()
                raise RefusedDestination(problem)
            return sock
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})")
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


def _pool_classes(destinations: Destinations) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes whose connections check against ``destinations`` (one set per session)."""
    plain = type("GuardedHTTPConnection", (_GuardedConnection,), {"destinations": destinations})
    tls = type("GuardedHTTPSConnection", (_GuardedHTTPSConnection,), {"destinations": destinations})
    return {"http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": plain}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": tls})}


class GuardedAdapter(HTTPAdapter):
    """requests' adapter over guarded connections; it never goes through a proxy."""

    def __init__(self, destinations: Destinations) -> None:
        self.destinations = destinations  # before super().__init__, which builds the pool manager
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.destinations)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise RefusedDestination("Outbound requests do not go through proxies.")


class GuardedSession(requests.Session):
    """A session that reaches allowed destinations only, on every redirect hop too."""

    def __init__(self, destinations: Destinations) -> None:
        super().__init__()
        self.trust_env = False  # no HTTP(S)_PROXY / ALL_PROXY / .netrc from the worker's environment
        self.max_redirects = MAX_REDIRECTS
        self.redirected_to: str | None = None
        adapter = GuardedAdapter(destinations)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target:
            self.redirected_to = urljoin(resp.url, target)
        return target

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        # requests drops Authorization when a redirect leaves the host; drop every credential header.
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in [name for name in prepared_request.headers if credential_header(name)]:
                del prepared_request.headers[name]


def operator_networks() -> tuple[str, ...]:
    """HTTP_ALLOWED_NETWORKS; the worker runs runners inside its app context (a runner driven
    without one, as in unit tests, has no operator setting)."""
    return tuple(current_app.config.get("HTTP_ALLOWED_NETWORKS") or ()) if has_app_context() else ()


def allowed_destinations(ctx: RunContext) -> Destinations:
    """The operator's allow-list plus the action's declared ``allowed_networks`` default.

    Only an immutable declaration counts, and never ``ctx.parameters``: callers and rules
    set values, and must not widen where the request may go.
    """
    words = list(operator_networks())
    definition = ctx.parameter_schema.get(ALLOWED_NETWORKS)
    if isinstance(definition, dict) and definition.get("immutable") is True and isinstance(definition.get("default"), list):
        words += [word for word in definition["default"] if isinstance(word, str)]
    return Destinations.parse(words)



def request_arguments(params: dict[str, Any], timeout: float) -> dict[str, Any]:
    """requests.request(**arguments) for the action's parameters; ValueError when they are bad."""
    url = params.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https") or not urlsplit(url).netloc:
        raise ValueError("The 'url' parameter must be an absolute http:// or https:// URL.")
    method = str(params.get("method") or "GET").upper()
    if method not in METHODS:
        raise ValueError(f"The method {method!r} is not one of {', '.join(sorted(METHODS))}.")
    for name in ("headers", "params"):
        if params.get(name) is not None and not isinstance(params[name], dict):
            raise ValueError(f"The '{name}' parameter must be an object.")
    arguments: dict[str, Any] = {
        "method": method, "url": url, "timeout": timeout, "stream": True,
        "headers": {str(k): str(v) for k, v in (params.get("headers") or {}).items()},
        "params": params.get("params") or None,
        "verify": params.get("verify_ssl_cert", True) is not False,
    }
    if arguments["verify"]:
        # trust_env=False also skips the CA bundle variables; a deployment's own CA still counts.
        arguments["verify"] = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    body = params.get("body")
    if isinstance(body, (dict, list)):
        arguments["json"] = body
    elif body is not None:
        arguments["data"] = str(body).encode("utf-8")
    if params.get("username") is not None:
        arguments["auth"] = (str(params["username"]), str(params.get("password") or ""))
    return arguments


def read_body(response: requests.Response) -> tuple[Any, bool]:
    """The body, parsed when it is JSON, and whether it was parsed."""
    data = bytearray()
    for chunk in response.iter_content(65536):
        data += chunk
        if len(data) > BODY_CAP:
            del data[BODY_CAP:]
            break
    text = data.decode(response.encoding or "utf-8", errors="replace")
    if "json" in response.headers.get("Content-Type", "").lower():
        try:
            return json.loads(text), True
        except ValueError:
            pass
    return text, False


def call(arguments: dict[str, Any], destinations: Destinations, outcome: dict[str, Any]) -> None:
    session = GuardedSession(destinations)
    try:
        with session, session.request(**arguments) as response:
            body, parsed = read_body(response)
            outcome["result"] = {
                "status_code": response.status_code, "headers": dict(response.headers),
                "body": body, "parsed": parsed,
            }
    except RefusedDestination as exc:
        hop = f"The redirect to {session.redirected_to} was refused: " if session.redirected_to else ""
        outcome["error"] = f"{hop}{exc}"
    except requests.Timeout:
        outcome["timeout"] = True
    except requests.RequestException as exc:
        outcome["error"] = f"The request failed: {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - e.g. a header not encodable as latin-1; the thread must report it
        outcome["error"] = f"The request could not be sent: {type(exc).__name__}: {exc}"


@register
class HttpRequestRunner(Runner):
    name = "http-request"

    def run(self, ctx: RunContext) -> RunResult:
        limit = effective_timeout(ctx)
        try:
            arguments = request_arguments(ctx.parameters, limit)
        except ValueError as exc:
            return RunResult(FAILED, {}, str(exc))
        outcome: dict[str, Any] = {}
        # A daemon thread: a canceled request is abandoned, bounded by requests' own timeout.
        worker = threading.Thread(target=call, args=(arguments, allowed_destinations(ctx), outcome), daemon=True)
        deadline = time.monotonic() + limit
        worker.start()
        while worker.is_alive():
            if ctx.is_canceled():
                return RunResult(CANCELED, {}, describe_stop(CANCELED, ctx))
            if time.monotonic() >= deadline:
                return RunResult(TIMEOUT, {}, describe_stop(TIMEOUT, ctx))
            worker.join(min(POLL, max(0.0, deadline - time.monotonic())))
        if outcome.get("timeout"):
            return RunResult(TIMEOUT, {}, describe_stop(TIMEOUT, ctx))
        if "error" in outcome:
            return RunResult(FAILED, {}, outcome["error"])
        result = outcome["result"]
        if 200 <= result["status_code"] < 400:
            return RunResult(SUCCEEDED, result)
        return RunResult(FAILED, result, f"The server answered {result['status_code']}.")
