"""The console's review pages: the queue (with bulk actions) and one item (claim, verdict, resolve).

Each action is one transaction, committed before the redirect is sent. A refused action is said
inline on the page it came from (status 409 / 422), never on a bare error page; only another
tenant's or an unknown id is a 404 page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from control_plane.auth.scopes import Scope
from control_plane.db import unit_of_work
from control_plane.errors import DomainError
from control_plane.orm_base import utcnow
from control_plane.review import bulk, service
from control_plane.review.orm import ReviewItem
from control_plane.review.repository import CLAIMED, OPEN
from control_plane.review.schemas import (
    DEFAULT_CLAIM_MINUTES,
    BulkClaimRequest,
    BulkVerdictRequest,
    ResolveRequest,
    ReviewFilter,
    VerdictRequest,
)
from control_plane.review.views import detail_out, review_out
from control_plane.tenancy import tenant_of
from control_plane.web import tenant_admin_pages
from control_plane.web.card_history import card_history, readable
from control_plane.web.chart import daily_chart
from control_plane.web.forms import ConsoleForm, CsrfField, console_form
from control_plane.web.pages import (
    CONSOLE_SCOPES,
    ConsoleDep,
    Viewer,
    domain_error_page,
    redirect,
    render,
    viewer_of,
)
from control_plane.web.queue_form import QUEUE_FIELDS, queue_form
from fraud_model.features import READABLE_NAMES

CHART_DAYS = 14
BULK_ACTIONS = ("claim", "fraud", "legit", "escalate")
# Included by the console's router (web.router), which adds the /console prefix.
router = APIRouter(include_in_schema=False)

NoteField = Annotated[str, Form(max_length=2000)]


def waited(now: datetime, since: datetime | None) -> str | None:
    """How long an item has waited, as a person says it (``3 h 12 min``)."""
    if since is None:
        return None
    minutes = max(int((now - since).total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def _queue(
    request: Request,
    c: ConsoleDep,
    viewer: Viewer,
    params: Mapping[str, str],
    *,
    notice: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    form = queue_form(params)
    now = utcnow()
    items: list[Any] = []
    next_cursor = total = None
    with unit_of_work(c.factory) as session:
        if form.query is not None:
            try:
                page = service.list_reviews(session, viewer.tenant_id, form.query, now=now)
                items, next_cursor = [review_out(i, now) for i in page.items], page.next_cursor
                total = service.summary(session, viewer.tenant_id, form.query, now=now).total
            except DomainError as exc:
                form.errors.append(f"{exc.field or 'query'}: {exc.detail}")
        oldest = service.summary(session, viewer.tenant_id, ReviewFilter(status="open"), now=now)
        escalated = service.summary(session, viewer.tenant_id, ReviewFilter(status="escalated"), now=now)
        chart = daily_chart(service.daily_activity(session, viewer.tenant_id, days=CHART_DAYS, now=now))
    context = {
        "viewer": viewer,
        "form": form,
        "items": items,
        "total": total,
        "open_total": oldest.total,
        "escalated_total": escalated.total,
        "oldest_waited": waited(now, oldest.oldest_open_since),
        "next_url": form.link(cursor=next_cursor) if next_cursor else None,
        "first_url": form.link() if params.get("cursor") else None,
        "back": urlencode({k: v for k, v in form.values.items() if v}),
        "chart": chart,
        "notice": notice,
        "problem": problem,
        "section": "escalated" if form.values.get("status") == "escalated" else "queue",
    }
    if form.errors and status == 200:
        status = 422
    return render(request, "queue.html", context, status_code=status)


@router.get("/queue")
def queue_page(request: Request, c: ConsoleDep) -> Response:
    viewer = viewer_of(request, c)
    if viewer is None:
        return redirect("/console/sign-in")
    notice = None
    bulk_done = request.query_params.get("bulk", "")
    action, _, count = bulk_done.partition(":")
    if action in BULK_ACTIONS and count.isdigit():
        verb = "Claimed" if action == "claim" else f"Recorded {action} for"
        notice = f"{verb} {count} selected item{'s' if count != '1' else ''}."
    decided_id = request.query_params.get("decided")
    if decided_id:
        with unit_of_work(c.factory) as session:
            try:
                decided = service.get(session, viewer.tenant_id, decided_id)
                notice = f"Recorded {decided.verdict} for {decided.txn_id}."
            except DomainError:
                notice = None
    return _queue(request, c, viewer, request.query_params, notice=notice)


@router.post("/queue/bulk")
def bulk_from_console(
    request: Request,
    c: ConsoleDep,
    csrf: CsrfField = "",
    action: Annotated[str, Form(max_length=20)] = "",
    ids: Annotated[list[str], Form(max_length=1000)] = [],  # noqa: B006 - FastAPI copies defaults
    note: NoteField = "",
    back: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Claim or decide the selected rows through the API's all-or-nothing bulk use cases."""
    params = {k: v for k, v in parse_qsl(back) if k in QUEUE_FIELDS}

    def refused(form: ConsoleForm, exc: DomainError) -> Response:
        problem = f"Nothing was changed: {exc.detail}"
        blockers = exc.extra.get("blockers") if isinstance(exc.extra, dict) else None
        if blockers:
            problem += " Blocked: " + ", ".join(f"{b['id']} ({b['status']})" for b in blockers[:10])
        return _queue(request, c, form.viewer, params, problem=problem, status=exc.status)

    form = console_form(request, c, csrf, refused)
    if isinstance(form, Response):
        return form
    viewer = form.viewer
    selected = list(dict.fromkeys(i for i in ids if i))
    if action not in BULK_ACTIONS:
        return _queue(request, c, viewer, params, problem="Choose an action for the selection.", status=422)
    if not selected:
        return _queue(request, c, viewer, params, problem="Select at least one item first.", status=422)
    now = utcnow()

    def apply(session: Session) -> int:
        criteria = {"filter": {"ids": selected}, "expected_count": len(selected)}
        if action == "claim":
            tenant_of(viewer.principal, {Scope.ANALYST})
            claim = BulkClaimRequest.model_validate(criteria)
            return len(bulk.bulk_claim(session, viewer.tenant_id, claim, principal=viewer.principal, now=now))
        tenant_of(viewer.principal, CONSOLE_SCOPES)
        body = {**criteria, "verdict": action, "note": note.strip() or None}
        verdict = BulkVerdictRequest.model_validate(body)
        return len(bulk.bulk_decide(session, viewer.tenant_id, verdict, principal=viewer.principal, now=now))

    def applied(count: int) -> Response:
        return redirect("/console/queue?" + urlencode({**params, "bulk": f"{action}:{count}"}))

    try:
        return form.act(apply, applied)
    except ValidationError as exc:  # the selection as the bulk request validates it
        first = exc.errors()[0]
        problem = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return _queue(request, c, viewer, params, problem=problem, status=422)


# -- one item --


def _detail(
    request: Request,
    c: ConsoleDep,
    viewer: Viewer,
    review_id: str,
    *,
    notice: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    now = utcnow()
    try:
        with unit_of_work(c.factory) as session:
            item = service.get(session, viewer.tenant_id, review_id)
            prev_id, next_id = service.neighbours(session, item, now=now)
            detail = detail_out(item, [], now)
            history = card_history(session, item)
    except DomainError as exc:
        return domain_error_page(request, viewer, exc)
    mine = detail.status == CLAIMED and detail.claimed_by == viewer.key_id
    takeable = detail.status == OPEN or mine
    context = {
        "viewer": viewer,
        "item": detail,
        "prev_id": prev_id,
        "next_id": next_id,
        "mine": mine,
        "can_claim": viewer.is_analyst and takeable,
        # An analyst may decide an open item: the console claims it first, in the same transaction.
        "can_decide": (viewer.is_admin and detail.status in (OPEN, CLAIMED)) or takeable,
        "can_resolve": viewer.is_admin and detail.status == "escalated",
        "features": readable(detail.features),
        "readable_names": READABLE_NAMES,
        "section": "escalated" if detail.status == "escalated" else "queue",
        "history": history,
        "notice": notice,
        "problem": problem,
    }
    return render(request, "detail.html", context, status_code=status)


@router.get("/reviews/{review_id}")
def review_page(review_id: str, request: Request, c: ConsoleDep) -> Response:
    viewer = viewer_of(request, c)
    if viewer is None:
        return redirect("/console/sign-in")
    notice = None
    decided_id = request.query_params.get("decided")
    if decided_id:
        with unit_of_work(c.factory) as session:
            try:
                decided = service.get(session, viewer.tenant_id, decided_id)
                notice = f"Recorded {decided.verdict} for {decided.txn_id}. This is the next open item."
            except DomainError:
                notice = None
    return _detail(request, c, viewer, review_id, notice=notice)


def _next_open(session: Session, viewer: Viewer, review_id: str) -> str | None:
    """The open item after this one in the queue's order (or before it, at the end of the queue)."""
    item = service.get(session, viewer.tenant_id, review_id)
    before, after = service.neighbours(session, item, now=utcnow())
    return after or before


def _item_form(request: Request, c: ConsoleDep, csrf: str, review_id: str) -> ConsoleForm | Response:
    """A form posted from an item's page: a refusal is said on that page (an unknown id or another
    tenant's is the 404 page)."""

    def refused(form: ConsoleForm, exc: DomainError) -> Response:
        if exc.status == 404:
            return domain_error_page(request, form.viewer, exc)
        return _detail(request, c, form.viewer, review_id, problem=exc.detail, status=exc.status)

    return console_form(request, c, csrf, refused)


def _on_item(
    viewer: Viewer, review_id: str, scopes: set[Scope], use_case: Callable[..., ReviewItem], **args: Any
) -> Callable[[Session], ReviewItem]:
    """A form's action that runs one review use case on the item, as the API's route does."""
    return lambda session: service.act_on_item(
        session, viewer.principal, review_id, scopes, use_case, now=utcnow(), **args
    )


@router.post("/reviews/{review_id}/claim")
def claim_from_console(review_id: str, request: Request, c: ConsoleDep, csrf: CsrfField = "") -> Response:
    form = _item_form(request, c, csrf, review_id)
    if isinstance(form, Response):
        return form
    viewer = form.viewer

    claim = _on_item(viewer, review_id, {Scope.ANALYST}, service.claim, minutes=DEFAULT_CLAIM_MINUTES)
    return form.act(claim, lambda _: redirect(f"/console/reviews/{review_id}"))


def _after_verdict(c: ConsoleDep, viewer: Viewer, review_id: str) -> Response:
    with unit_of_work(c.factory) as session:
        following = _next_open(session, viewer, review_id)
    if following is None:
        return redirect("/console/queue?" + urlencode({"decided": review_id}))
    return redirect(f"/console/reviews/{following}?" + urlencode({"decided": review_id}))


@router.post("/reviews/{review_id}/verdict")
def verdict_from_console(
    review_id: str,
    request: Request,
    c: ConsoleDep,
    csrf: CsrfField = "",
    verdict: Annotated[str, Form(max_length=20)] = "",
    note: NoteField = "",
) -> Response:
    """Record a verdict; an analyst without a claim on an open item claims it first (one
    transaction, both audited). Then the next open item opens."""
    form = _item_form(request, c, csrf, review_id)
    if isinstance(form, Response):
        return form
    viewer = form.viewer
    try:
        body = VerdictRequest(verdict=verdict, note=note.strip() or None)  # type: ignore[arg-type]
    except ValidationError:
        problem = "Choose a verdict: fraud, legit or escalate."
        return _detail(request, c, viewer, review_id, problem=problem, status=422)
    now = utcnow()

    def decide(session: Session) -> None:
        item = service.item_for(session, viewer.principal, review_id, CONSOLE_SCOPES)
        if viewer.is_analyst and not service.holds_claim(item, viewer.key_id, now):
            service.claim(
                session,
                viewer.tenant_id,
                review_id,
                principal=viewer.principal,
                minutes=DEFAULT_CLAIM_MINUTES,
                now=now,
            )
        service.decide(
            session,
            viewer.tenant_id,
            review_id,
            principal=viewer.principal,
            verdict=body.verdict,
            note=body.note,
            now=now,
        )

    return form.act(decide, lambda _: _after_verdict(c, viewer, review_id))


@router.post("/reviews/{review_id}/resolve")
def resolve_from_console(
    review_id: str,
    request: Request,
    c: ConsoleDep,
    csrf: CsrfField = "",
    verdict: Annotated[str, Form(max_length=20)] = "",
    note: NoteField = "",
) -> Response:
    """A tenant-admin's final verdict on an escalated item."""
    form = _item_form(request, c, csrf, review_id)
    if isinstance(form, Response):
        return form
    viewer = form.viewer
    try:
        body = ResolveRequest(verdict=verdict, note=note.strip() or None)  # type: ignore[arg-type]
    except ValidationError:
        return _detail(request, c, viewer, review_id, problem="Resolve as fraud or legit.", status=422)

    resolve = _on_item(
        viewer, review_id, {Scope.TENANT_ADMIN}, service.resolve, verdict=body.verdict, note=body.note
    )
    after = "/console/queue?" + urlencode({"status": "escalated", "decided": review_id})
    return form.act(resolve, lambda _: redirect(after))


router.include_router(tenant_admin_pages.router)  # tenant admins: models
