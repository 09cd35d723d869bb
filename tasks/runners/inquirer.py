"""``inquirer`` (``core.ask``): ask a person and wait, holding no worker, for the answer.

The execution is ``pending`` while the inquiry is open; the answer (app/services/inquiries.py)
wakes it, and the response becomes its result, as in StackStorm (``{"response": {...}}``).
"""

from __future__ import annotations

from tasks.runners.base import (
    CANCELED,
    FAILED,
    ON_PERSON,
    SUCCEEDED,
    RunContext,
    Runner,
    RunResult,
    register,
)


@register
class InquirerRunner(Runner):
    name = "inquirer"

    def run(self, ctx: RunContext) -> RunResult:
        if ctx.people is None:
            return RunResult(FAILED, error="This worker cannot open inquiries.")
        p = ctx.parameters
        inquiry_id = ctx.people.ask(schema=p.get("schema") or {}, route=p.get("route") or "",
                                    users=list(p.get("users") or []), roles=list(p.get("roles") or []),
                                    ttl_minutes=p.get("ttl"))
        ctx.emit("system", f"inquiry {inquiry_id} opened; waiting for an answer")
        return RunResult.wait(ON_PERSON, {"inquiry_id": inquiry_id})

    def resume(self, ctx: RunContext) -> RunResult:
        inquiry_id = ctx.state.get("inquiry_id")
        status, response = ctx.people.answer(inquiry_id) if ctx.people and inquiry_id else ("canceled", None)
        shown = {"inquiry_id": inquiry_id, "schema": ctx.parameters.get("schema") or {},
                 "route": ctx.parameters.get("route") or "", "users": ctx.parameters.get("users") or [],
                 "roles": ctx.parameters.get("roles") or [], "ttl": ctx.parameters.get("ttl")}
        if status == "responded":
            return RunResult(SUCCEEDED, {**shown, "response": response})
        if status == "timed_out":
            return RunResult(FAILED, shown, f"Inquiry {inquiry_id} timed out unanswered.")
        if status == "canceled":
            return RunResult(CANCELED, shown, f"Inquiry {inquiry_id} was canceled.")
        return RunResult.wait(ON_PERSON, ctx.state)  # woken, but still unanswered
