"""Webhooks: the outside world posts here, and each post becomes an event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.views import MethodView

from app.api.common import Blueprint, paginate
from app.schemas.webhook import (
    WebhookAcceptedSchema,
    WebhookListArgs,
    WebhookRequestListArgs,
    WebhookRequestSchema,
    WebhookSchema,
)
from app.security import current_principal, requires
from app.services.webhook_declarations import Webhook, list_webhooks, normalize_url
from app.services.webhooks import receive_webhook, request_log_query

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks",
                description="Webhooks: requests from the outside world become events")

POST_PERMISSION = "webhooks:post"


def per_webhook_access(func: Callable) -> Callable:
    """Declare the webhook route's access: each webhook chooses it (see docs/webhooks.md).

    A signature or token webhook admits a caller with no Patchbay identity; any other needs
    ``webhooks:post`` on the packs of its rules. The check runs in the service, once the url
    says which webhook is meant.
    """
    func._permission = POST_PERMISSION  # type: ignore[attr-defined]
    func._per_webhook = True  # type: ignore[attr-defined]
    return func


@blp.route("/<path:url>")
class WebhookPost(MethodView):
    @per_webhook_access
    @blp.doc(security=[{"bearerAuth": []}, {"apiKeyAuth": []}, {}], **{"x-permission": POST_PERMISSION})
    @blp.response(202, WebhookAcceptedSchema)
    @blp.alt_response(401, description="Missing or wrong credentials, signature or token")
    @blp.alt_response(403, description="Address not allowed, or no webhooks:post on the webhook's pack")
    @blp.alt_response(413, description="Body over the webhook's limit")
    @blp.alt_response(429, description="Over the webhook's rate limit (see Retry-After)")
    def post(self, url):
        """Post to a webhook

        The body (JSON, a form or text) and the headers (without credentials) become an event
        of `core.webhook`. Depending on the webhook: GitHub's `X-Hub-Signature-256`, a token
        header, or Patchbay credentials with `webhooks:post` on the pack of its rules.
        A repeated `X-GitHub-Delivery` is answered with the original event id.
        """
        received = receive_webhook(url)
        return {"event_id": received.event_id, "url": received.url, "replayed": received.replayed}


def _describe(hook: Webhook, packs: set[str] | None) -> dict[str, Any]:
    return {**hook.settings, "url": hook.url, "packs": hook.packs,
            "rules": [rule.ref for rule in hook.rules if packs is None or rule.pack_name in packs]}


@blp.route("")
class Webhooks(MethodView):
    @requires("webhooks:view")
    @blp.arguments(WebhookListArgs, location="query")
    @blp.response(200, WebhookSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List declared webhooks

        A webhook exists while an enabled rule on `core.webhook` names its url. Filter: `url`
        (starts with).
        """
        packs = current_principal().packs_for("webhooks:view")
        prefix = normalize_url(args["url"]) if args.get("url") else ""
        hooks = [hook for hook in list_webhooks()
                 if hook.url.startswith(prefix) and (packs is None or packs & set(hook.packs))]
        pagination_parameters.item_count = len(hooks)
        start = (pagination_parameters.page - 1) * pagination_parameters.page_size
        return [_describe(hook, packs) for hook in hooks[start:start + pagination_parameters.page_size]]


@blp.route("/requests")
class WebhookRequests(MethodView):
    @requires("webhooks:view")
    @blp.arguments(WebhookRequestListArgs, location="query")
    @blp.response(200, WebhookRequestSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List requests to webhooks, newest first

        Every request to a declared webhook, accepted or refused. Filters: `url`, `outcome`,
        `since`, `until`.
        """
        packs = current_principal().packs_for("webhooks:view")
        return paginate(request_log_query(args, packs), pagination_parameters)
