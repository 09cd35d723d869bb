"""Inquiries: questions to people (``core.ask``) — list, read, answer, cancel."""

from __future__ import annotations

from flask.views import MethodView

from app.api.common import Blueprint, apply_sort, paginate
from app.db import db
from app.models import Inquiry
from app.schemas.inquiry import InquiryListArgs, InquiryResponseSchema, InquirySchema
from app.security import current_principal, requires
from app.services import inquiries as service

blp = Blueprint("inquiries", __name__, url_prefix="/api/v1/inquiries",
                description="Inquiries: questions to people on which executions wait")

# Only columns that lead an index (after the status filter) are sortable.
SORTABLE = {"created_at": Inquiry.created_at, "id": Inquiry.id}


@blp.route("")
class Inquiries(MethodView):
    @requires("inquiries:view", pack_from=None)
    @blp.arguments(InquiryListArgs, location="query")
    @blp.response(200, InquirySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List inquiries: by default the pending ones you may answer

        Filters: `status` (pending, responded, timed_out, canceled), `execution`, `root` (the
        root workflow execution), `answerable`; `sort` by created_at or id (default
        `-created_at`). Only inquiries whose root execution is in a pack you may view.
        """
        query = service.filtered(args, current_principal())
        query = apply_sort(query, args.get("sort"), SORTABLE, "-created_at", Inquiry.id)
        return paginate(query, pagination_parameters)


@blp.route("/<int:inquiry_id>")
class InquiryById(MethodView):
    @requires("inquiries:view", pack_from=None)
    @blp.response(200, InquirySchema)
    @blp.alt_response(404, description="No such inquiry")
    def get(self, inquiry_id):
        """Get an inquiry: its schema, who may answer, status and (once answered) the response"""
        inquiry = service.get_inquiry(inquiry_id)
        service.ensure_visible(current_principal(), inquiry)
        return inquiry


@blp.route("/<int:inquiry_id>/respond")
class InquiryRespond(MethodView):
    @requires("inquiries:respond", pack_from=None)
    @blp.arguments(InquiryResponseSchema)
    @blp.response(200, InquirySchema)
    @blp.alt_response(404, description="No such inquiry")
    @blp.alt_response(409, description="The inquiry was already answered, canceled or timed out")
    def post(self, data, inquiry_id):
        """Answer an inquiry; its execution resumes with the response as its result

        Needs `inquiries:respond` on the pack of the inquiry's root execution and, when the
        inquiry names `users`, being one of them, and when it names `roles`, holding one of
        them. The response must match the inquiry's schema (422 naming the field). Audited
        with the responder; properties the schema marks `secret: true` are masked there.
        """
        principal = current_principal()
        inquiry = service.get_inquiry(inquiry_id)
        service.ensure_may_respond(principal, inquiry)
        service.respond(inquiry, data["response"], principal.name)
        db.session.commit()
        service.audit_response(inquiry)
        return inquiry


@blp.route("/<int:inquiry_id>/cancel")
class InquiryCancel(MethodView):
    @requires("inquiries:respond", pack_from=None)
    @blp.response(200, InquirySchema)
    @blp.alt_response(404, description="No such inquiry")
    @blp.alt_response(409, description="The inquiry is no longer pending")
    def post(self, inquiry_id):
        """Cancel a pending inquiry; its execution ends `canceled`

        Whoever may answer the inquiry may cancel it. To stop an execution regardless of who
        may answer, cancel the execution (`executions:cancel`): its inquiry is canceled too.
        """
        inquiry = service.get_inquiry(inquiry_id)
        service.ensure_may_respond(current_principal(), inquiry)
        service.cancel(inquiry)
        db.session.commit()
        return inquiry
