"""Inquiry API shapes: the inquiry, the list arguments and the response body."""

from __future__ import annotations

import marshmallow as ma

from app.db import BIGINT_MAX
from app.models.inquiry import INQUIRY_STATUSES as STATUSES
from app.models.inquiry import RESPONDED
from app.schemas.common import StrictSchema

_ids = ma.validate.Range(min=1, max=BIGINT_MAX)


class InquiryListArgs(ma.Schema):
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES),
                              metadata={"description": "default `pending`"})
    answerable = ma.fields.Boolean(metadata={
        "description": "only inquiries the caller may answer; default true without `status`, false with it"})
    execution = ma.fields.Integer(validate=_ids, metadata={"description": "the waiting (core.ask) execution's id"})
    root = ma.fields.Integer(validate=_ids, metadata={"description": "the root (workflow) execution's id"})
    sort = ma.fields.String(validate=ma.validate.Length(max=64),
                            metadata={"description": "created_at or id; prefix '-' for descending (default -created_at)"})


class InquiryResponseSchema(StrictSchema):
    response = ma.fields.Dict(keys=ma.fields.String(), required=True,
                              metadata={"description": "the answer; must match the inquiry's `schema`"})


class InquirySchema(ma.Schema):
    class Meta:
        ordered = True

    id = ma.fields.Integer()
    execution = ma.fields.Integer(attribute="execution_id", metadata={"description": "the waiting execution"})
    root_execution = ma.fields.Integer(attribute="root_execution_id", allow_none=True,
                                       metadata={"description": "the root of its workflow (itself when alone)"})
    status = ma.fields.String(metadata={"description": ", ".join(STATUSES)})
    route = ma.fields.String()
    users = ma.fields.List(ma.fields.String(), metadata={"description": "who may answer; empty: anyone allowed"})
    roles = ma.fields.List(ma.fields.String(), metadata={"description": "roles one of which the answerer holds"})
    schema = ma.fields.Dict(metadata={"description": "JSON Schema the response must match"})
    ttl = ma.fields.Method("get_ttl", allow_none=True, metadata={"description": "minutes; null: never expires"})
    expires_at = ma.fields.DateTime(allow_none=True)
    response = ma.fields.Method("get_response", allow_none=True, metadata={
        "description": "the answer once responded (properties marked `secret: true` as ********), else null"})
    responder = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    responded_at = ma.fields.DateTime(allow_none=True)

    def get_ttl(self, inquiry) -> int | None:
        if inquiry.expires_at is None:
            return None
        return round((inquiry.expires_at - inquiry.created_at).total_seconds() / 60)

    def get_response(self, inquiry) -> dict | None:
        return inquiry.shown_response() if inquiry.status == RESPONDED else None
