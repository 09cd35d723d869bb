"""Receiving a webhook: admit the caller, turn the request into an event, log what happened.

Checks run cheapest first (address, rate, size, credentials); every request to a declared
url leaves a ``webhook_requests`` row, a refused one committed on its own. Delivery ids live
in Redis for a day: ``SET NX`` makes two simultaneous deliveries of one id create one event.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from flask import g, request
from sqlalchemy import Select, select

from app.db import db
from app.errors import APIError, BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from app.extensions import redis_client
from app.logging import request_id_var
from app.models import WebhookRequest
from app.security.authenticate import API_KEY_HEADER, authenticate
from app.security.ratelimit import client_address
from app.services import rules_engine, unit_of_work
from app.services.audit import recorded_elsewhere
from app.services.rows import RowInserter
from app.services.webhook_declarations import Webhook, find_webhook, normalize_url, resolve_secret

log = logging.getLogger("patchbay.webhooks")

SIGNATURE_HEADER = "X-Hub-Signature-256"
DELIVERY_HEADER = "X-GitHub-Delivery"
# Never stored with the event: they prove who called, and anyone reading events would inherit that.
CREDENTIAL_HEADERS = frozenset({"authorization", API_KEY_HEADER.lower(), "cookie", "proxy-authorization",
                                SIGNATURE_HEADER.lower(), "x-hub-signature"})
REDIS_PREFIX = "patchbay:webhook"
DELIVERY_TTL = 86_400
CLAIMING = b"claiming"
OUTCOMES = {401: "unauthorized", 403: "forbidden", 409: "in_progress", 413: "too_large", 429: "rate_limited"}


class PayloadTooLarge(APIError):
    code = 413


class TooManyRequests(APIError):
    code = 429
    # Only the first refusal of a window is logged, so a flood cannot grow the log.
    first_in_window = False


class UnsupportedBody(APIError):
    code = 415


@dataclass
class Received:
    event_id: int
    url: str
    replayed: bool


def receive_webhook(url: str) -> Received:
    """Admit a POST to ``url``, record its event and commit; 404 for an undeclared url."""
    url = normalize_url(url)
    hook = find_webhook(url)
    if hook is None:
        raise NotFound(f"No enabled rule declares the webhook {url!r}.")
    delivery = (request.headers.get(DELIVERY_HEADER) or "").strip()[:128] or None
    try:
        _check_address(hook)
        _check_rate(hook)
        raw = _read_body(hook)
        _authenticate(hook, raw)
        return _accept(hook, raw, delivery)
    except APIError as exc:
        if isinstance(exc, TooManyRequests) and not exc.first_in_window:
            raise
        db.session.rollback()
        _log(hook, OUTCOMES.get(exc.code, "invalid"), exc.code, detail=exc.message, delivery=delivery)
        db.session.commit()
        raise


def _accept(hook: Webhook, raw: bytes, delivery: str | None) -> Received:
    key = f"{REDIS_PREFIX}:delivery:{_digest(hook.url)}:{delivery}" if delivery else None
    if key is not None and not redis_client().set(key, CLAIMING, nx=True, ex=DELIVERY_TTL):
        original = redis_client().get(key)
        if original is None or not original.isdigit():
            raise Conflict("This delivery is being processed; retry in a second.", headers={"Retry-After": "1"})
        _log(hook, "replayed", 202, event_id=int(original), delivery=delivery)
        db.session.commit()
        return Received(int(original), hook.url, True)
    try:
        payload = {"headers": _stored_headers(hook), "body": _parse_body(raw)}
        # The rules run here, in this transaction: the answer comes with the executions requested.
        event = rules_engine.receive(hook.trigger, payload, source=f"webhook:{hook.url}", candidates=hook.rules)
        _log(hook, "accepted", 202, event_id=event.id, delivery=delivery)
        db.session.commit()
    except BaseException:
        if key is not None:
            redis_client().delete(key)  # not accepted: a retry of this delivery must be heard
        raise
    if key is not None:
        redis_client().set(key, str(event.id), ex=DELIVERY_TTL)
    return Received(event.id, hook.url, False)


def _check_address(hook: Webhook) -> None:
    cidrs = hook.settings["allowed_cidrs"]
    if not cidrs:
        return
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        raise Forbidden("This webhook does not accept requests from this address.") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if not any(address in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs):
        raise Forbidden("This webhook does not accept requests from this address.")


def _check_rate(hook: Webhook) -> None:
    limit = hook.settings["rate_limit"]
    if not limit:
        return
    # A fixed window per webhook, shared by every web process through Redis.
    now = time.time()
    window = int(now // limit["per_seconds"])
    key = f"{REDIS_PREFIX}:rate:{_digest(hook.url)}:{limit['per_seconds']}:{window}"
    pipe = redis_client().pipeline()
    pipe.incr(key)
    pipe.expire(key, limit["per_seconds"] + 1)
    count, _ = pipe.execute()
    if count > limit["requests"]:
        retry_after = max(math.ceil((window + 1) * limit["per_seconds"] - now), 1)
        refusal = TooManyRequests(f"This webhook accepts {limit['requests']} requests every "
                                  f"{limit['per_seconds']} s; try again in {retry_after} s.",
                                  headers={"Retry-After": str(retry_after)})
        refusal.first_in_window = count == limit["requests"] + 1
        raise refusal


def _read_body(hook: Webhook) -> bytes:
    # Read whole even when too large (the global limit bounds it): a body left unread would
    # break the client's next request on a kept-alive connection.
    raw = request.get_data(cache=True)
    limit = hook.settings["max_body_bytes"]
    if limit is not None and len(raw) > limit:
        raise PayloadTooLarge(f"The body is larger than this webhook accepts ({limit} bytes).")
    return raw


def _authenticate(hook: Webhook, raw: bytes) -> None:
    if hook.auth == "patchbay":
        principal = authenticate()
        if principal is None:
            raise Unauthorized("This webhook needs Patchbay credentials: a bearer token or an X-API-Key header.",
                               headers={"WWW-Authenticate": 'Bearer realm="patchbay"'})
        g.principal = principal
        if not all(principal.can("webhooks:post", pack) for pack in hook.packs):
            raise Forbidden("This needs the webhooks:post permission.", {"permission": "webhooks:post"})
        return
    secret = resolve_secret(hook.secret_pack, hook.settings["secret_key"])
    if secret is None:
        log.error("webhook %r: its secret %r is not set in pack %r's config", hook.url,
                  hook.settings["secret_key"], hook.secret_pack)
    if hook.auth == "signature":
        given = _header_bytes(SIGNATURE_HEADER)
        expected = b"sha256=" + hmac.new((secret or "").encode(), raw, hashlib.sha256).hexdigest().encode()
        if secret is None or not hmac.compare_digest(given.lower(), expected):
            raise Unauthorized(f"The {SIGNATURE_HEADER} signature is missing or does not match the body.")
    else:
        given = _header_bytes(hook.settings["token_header"])
        if secret is None or not hmac.compare_digest(given, secret.encode()):
            raise Unauthorized(f"The {hook.settings['token_header']} header is missing or wrong.")


def _header_bytes(name: str) -> bytes:
    # WSGI header values are latin-1 text; bytes let compare_digest take any of them.
    return (request.headers.get(name) or "").strip().encode("latin-1", "replace")


def _stored_headers(hook: Webhook) -> dict[str, str]:
    stripped = CREDENTIAL_HEADERS | {(hook.settings["token_header"] or "").lower()}
    return {name: value for name, value in request.headers.items() if name.lower() not in stripped}


def _parse_body(raw: bytes) -> Any:
    """JSON, form fields (a list where a field repeats) or UTF-8 text; None for no body."""
    if not raw:
        return None
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest("The body is not valid JSON.") from None
    if mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {name: values[0] if len(values) == 1 else values for name, values in request.form.lists()}
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedBody("Send JSON, a form or UTF-8 text.") from None


_insert_request = RowInserter(WebhookRequest)  # one per request to a declared url


def _log(hook: Webhook, outcome: str, status_code: int, *, event_id: int | None = None,
         detail: str | None = None, delivery: str | None = None) -> None:
    principal = g.get("principal")
    # Once committed, the row records this request: who, from where, how it ended.
    unit_of_work.after_commit(recorded_elsewhere)
    _insert_request(url=hook.url, packs=hook.packs, source_address=client_address(), outcome=outcome,
                    status_code=status_code, detail=detail, event_id=event_id, delivery_id=delivery,
                    principal=principal.name if principal is not None else None, request_id=request_id_var.get())


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def request_log_query(args: dict[str, Any], packs: set[str] | None) -> Select:
    """The request log, newest first, filtered by ``url``, ``outcome``, ``since``, ``until``;
    ``packs`` (None for every pack) limits it to webhooks declared by rules of those packs."""
    query = select(WebhookRequest)
    if args.get("url"):
        query = query.where(WebhookRequest.url == normalize_url(args["url"]))
    if args.get("outcome"):
        query = query.where(WebhookRequest.outcome == args["outcome"])
    if args.get("since"):
        query = query.where(WebhookRequest.created_at >= args["since"])
    if args.get("until"):
        query = query.where(WebhookRequest.created_at < args["until"])
    if packs is not None:
        query = query.where(WebhookRequest.packs.overlap(sorted(packs)))
    return query.order_by(WebhookRequest.created_at.desc(), WebhookRequest.id.desc())
