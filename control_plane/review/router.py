"""Review routes (HTTP only). They act for the caller's tenant; another tenant's item is a 404."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from sqlalchemy.orm import Session

from control_plane.auth.scopes import Principal, Scope
from control_plane.deps import PrincipalDep, get_session
from control_plane.orm_base import utcnow
from control_plane.review import bulk, service
from control_plane.review.orm import ReviewItem
from control_plane.review.schemas import (
    BulkClaimOut,
    BulkClaimRequest,
    BulkVerdictOut,
    BulkVerdictRequest,
    ClaimRequest,
    ReopenRequest,
    ResolveRequest,
    ReviewDetailOut,
    ReviewOut,
    ReviewPage,
    ReviewQuery,
    VerdictRequest,
)
from control_plane.review.views import detail_out, review_out
from control_plane.tenancy import tenant_of

log = logging.getLogger(__name__)

READERS = {Scope.ANALYST, Scope.TENANT_ADMIN}
CLAIMERS = {Scope.ANALYST}
DECIDERS = {Scope.ANALYST, Scope.TENANT_ADMIN}
ADMINS = {Scope.TENANT_ADMIN}

# Committed before the response is sent (FastAPI runs request-scoped yield dependencies after it):
# a client that reads right after a claim or verdict must see it, and a failed commit must not
# have answered 200.
CommittedSessionDep = Annotated[Session, Depends(get_session, scope="function")]


router = APIRouter(prefix="/v1/reviews", tags=["review"])
PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"description": "The key's scope may not do this"},
    404: {"description": "No such review in the caller's tenant"},
}


def _acted(
    session: Session,
    principal: Principal,
    review_id: str,
    scopes: Iterable[Scope],
    use_case: Callable[..., ReviewItem],
    **args: Any,
) -> ReviewOut:
    """Run one use case on the caller's item (404 before the scope check) and answer with the item."""
    now = utcnow()
    return review_out(
        service.act_on_item(session, principal, review_id, scopes, use_case, now=now, **args), now
    )


@router.get("", response_model=ReviewPage, responses=PROBLEMS)
def list_reviews(
    query: Annotated[ReviewQuery, Query()], session: CommittedSessionDep, principal: PrincipalDep
) -> ReviewPage:
    """The queue: filter, sort by score | amount | age, and page with ``next_cursor``."""
    tenant_id = tenant_of(principal, READERS)
    now = utcnow()
    page = service.list_reviews(session, tenant_id, query, now=now)
    summary = service.summary(session, tenant_id, query, now=now)
    return ReviewPage(
        items=[review_out(i, now) for i in page.items],
        next_cursor=page.next_cursor,
        limit=query.limit,
        total=summary.total,
        oldest_open_since=summary.oldest_open_since,
    )


@router.post(
    "/bulk-claim",
    response_model=BulkClaimOut,
    responses={**PROBLEMS, 409: {"description": "Some matched items are blocked; nothing changed"}},
)
def bulk_claim(body: BulkClaimRequest, session: CommittedSessionDep, principal: PrincipalDep) -> BulkClaimOut:
    """Claim every matched item (a filter, or a selection with ``filter.ids``), all or nothing."""
    tenant_id = tenant_of(principal, CLAIMERS)
    now = utcnow()
    items = bulk.bulk_claim(session, tenant_id, body, principal=principal, now=now)
    until = now + timedelta(minutes=body.minutes)
    return BulkClaimOut(count=len(items), ids=[i.id for i in items], claim_expires_at=until)


@router.post(
    "/bulk-verdict",
    response_model=BulkVerdictOut,
    responses={**PROBLEMS, 409: {"description": "Some matched items are blocked; nothing changed"}},
)
def bulk_verdict(
    body: BulkVerdictRequest, session: CommittedSessionDep, principal: PrincipalDep
) -> BulkVerdictOut:
    """One verdict for every matched item, all or nothing."""
    tenant_id = tenant_of(principal, DECIDERS)
    items = bulk.bulk_decide(session, tenant_id, body, principal=principal, now=utcnow())
    return BulkVerdictOut(verdict=body.verdict, count=len(items), ids=[i.id for i in items])


@router.get("/{review_id}", response_model=ReviewDetailOut, responses=PROBLEMS)
def get_review(review_id: str, session: CommittedSessionDep, principal: PrincipalDep) -> ReviewDetailOut:
    """The transaction, score, reasons, features as scored, model version and the card's history."""
    item = service.item_for(session, principal, review_id, READERS)
    return detail_out(item, service.card_history(session, item), utcnow())


@router.post(
    "/{review_id}/claim",
    response_model=ReviewOut,
    responses={**PROBLEMS, 409: {"description": "Claimed by someone else (names the holder) or decided"}},
)
def claim_review(
    review_id: str,
    session: CommittedSessionDep,
    principal: PrincipalDep,
    body: Annotated[ClaimRequest | None, Body()] = None,
) -> ReviewOut:
    """Lease the item (60 minutes unless ``minutes`` says otherwise); the holder may extend it."""
    minutes = (body or ClaimRequest()).minutes
    return _acted(session, principal, review_id, CLAIMERS, service.claim, minutes=minutes)


@router.post(
    "/{review_id}/verdict",
    response_model=ReviewOut,
    responses={**PROBLEMS, 409: {"description": "Already decided, or no live claim of yours"}},
)
def record_verdict(
    review_id: str, body: VerdictRequest, session: CommittedSessionDep, principal: PrincipalDep
) -> ReviewOut:
    """A verdict from the claim's holder or a tenant-admin: fraud / legit are final and become
    labels; escalate sends the item to the escalated queue, where a tenant-admin resolves it."""
    return _acted(
        session, principal, review_id, DECIDERS, service.decide, verdict=body.verdict, note=body.note
    )


@router.post(
    "/{review_id}/resolve",
    response_model=ReviewOut,
    responses={**PROBLEMS, 409: {"description": "The review is not escalated"}},
)
def resolve_review(
    review_id: str, body: ResolveRequest, session: CommittedSessionDep, principal: PrincipalDep
) -> ReviewOut:
    """A tenant-admin's final verdict (fraud | legit) on an escalated item; it becomes a label."""
    return _acted(
        session, principal, review_id, ADMINS, service.resolve, verdict=body.verdict, note=body.note
    )


@router.post(
    "/{review_id}/reopen",
    response_model=ReviewOut,
    responses={**PROBLEMS, 409: {"description": "The review is not decided"}},
)
def reopen_review(
    review_id: str, body: ReopenRequest, session: CommittedSessionDep, principal: PrincipalDep
) -> ReviewOut:
    """Undo a verdict or an escalation (tenant-admin, with a reason): the item is open again."""
    return _acted(session, principal, review_id, ADMINS, service.reopen, reason=body.reason)
