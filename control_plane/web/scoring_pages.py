"""Tenant-admin page for the scoring configuration: review / suspicious thresholds, allow / block
lists of cards and terminals, and the rules-only fallback. Reading and saving go through the same
service as ``GET`` / ``PUT /v1/scoring-config`` (same schema, same validation, audited with the
signed-in admin as actor, serving reloaded through the outbox); a read-only tenant cannot save."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from control_plane.db import unit_of_work
from control_plane.deps import TemplatesDep
from control_plane.errors import DomainError
from control_plane.scoring import config as scoring_config
from control_plane.scoring.schemas import ScoringConfigIn, ScoringConfigOut
from control_plane.web.forms import (
    ConsoleForm,
    CsrfField,
    admin_form,
    field_problem,
    require_writable_tenant,
)
from control_plane.web.pages import ConsoleDep, Viewer, admin_viewer, render

router = APIRouter(include_in_schema=False)
LISTS = (
    ("allow_cards", "Allowed cards"),
    ("block_cards", "Blocked cards"),
    ("allow_terminals", "Allowed terminals"),
    ("block_terminals", "Blocked terminals"),
)
ListField = Annotated[str, Form(max_length=400_000)]


def _shown(config: ScoringConfigOut | dict[str, Any]) -> dict[str, Any]:
    """What the form shows: the stored values, or what the admin typed when it was refused."""
    if isinstance(config, dict):
        return config
    values = config.model_dump(mode="json")
    for name, _ in LISTS:
        values[name] = "\n".join(values[name])
    return values


def _page(
    request: Request,
    c: ConsoleDep,
    viewer: Viewer,
    templates: Any,
    status: int = 200,
    typed: dict[str, Any] | None = None,
    **extra: Any,
) -> Response:
    with unit_of_work(c.factory) as session:
        stored = scoring_config.read(session, viewer.tenant_id, templates)
    context = {
        "viewer": viewer,
        "section": "scoring",
        "config": _shown(typed if typed is not None else stored),
        "updated_by": stored.updated_by,
        "updated_at": stored.updated_at,
        "lists": LISTS,
        **extra,
    }
    return render(request, "scoring.html", context, status)


@router.get("/scoring")
def scoring_page(request: Request, c: ConsoleDep, templates: TemplatesDep) -> Response:
    viewer = admin_viewer(request, c)
    return viewer if isinstance(viewer, Response) else _page(request, c, viewer, templates)


def _entries(text: str) -> list[str]:
    """One card or terminal id a line (commas also separate); blank lines dropped, order kept."""
    seen: dict[str, None] = {}
    for line in text.replace(",", "\n").splitlines():
        if line.strip():
            seen.setdefault(line.strip(), None)
    return list(seen)


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "input"
    return f"{field}: {first['msg']}"


@router.post("/scoring")
def save_scoring(
    request: Request,
    c: ConsoleDep,
    templates: TemplatesDep,
    csrf: CsrfField = "",
    review_threshold: Annotated[str, Form(max_length=20)] = "",
    suspicious_threshold: Annotated[str, Form(max_length=20)] = "",
    fallback: Annotated[str, Form(max_length=20)] = "none",
    allow_cards: ListField = "",
    block_cards: ListField = "",
    allow_terminals: ListField = "",
    block_terminals: ListField = "",
) -> Response:
    typed = {
        "review_threshold": review_threshold.strip(),
        "suspicious_threshold": suspicious_threshold.strip(),
        "fallback": fallback,
        "allow_cards": allow_cards,
        "block_cards": block_cards,
        "allow_terminals": allow_terminals,
        "block_terminals": block_terminals,
    }

    def refused(form: ConsoleForm, exc: DomainError) -> Response:
        return _page(request, c, form.viewer, templates, exc.status, typed, problem=field_problem(exc))

    form = admin_form(request, c, csrf, refused)
    if isinstance(form, Response):
        return form
    viewer = form.viewer
    try:
        body = ScoringConfigIn.model_validate({**typed, **{name: _entries(typed[name]) for name, _ in LISTS}})
    except ValidationError as exc:
        return _page(request, c, viewer, templates, 422, typed, problem=_problem(exc))

    def save(session: Session) -> ScoringConfigOut:
        require_writable_tenant(session, viewer.tenant_id)
        return scoring_config.write(session, viewer.tenant_id, body, actor=viewer.principal.actor)

    return form.act(save, lambda _: _page(request, c, viewer, templates, 200, saved=True))
