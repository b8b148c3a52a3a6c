"""Tenant-admin pages for rollouts: the tenant's rollouts, and one rollout with its steps, the
weights it wants and the ones read back from the model host, and each step's analysis. Reading,
pause, resume, abort and the emergency rollback run the same steps as ``GET`` / ``POST
/v1/rollouts/{id}/…`` (``rollouts.controls``: same scopes, deployment guardrails, state machine,
audit and queued reconcile) inside one console transaction; a read-only tenant cannot act.
Another tenant's rollout is a 404 page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from control_plane.auth.scopes import Principal
from control_plane.db import unit_of_work
from control_plane.errors import DomainError, InvalidInput
from control_plane.rollouts import controls
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.ports import RolloutPorts
from control_plane.rollouts.schemas import ReasonBody
from control_plane.rollouts.states import RolloutState
from control_plane.web.forms import (
    ConsoleForm,
    CsrfField,
    admin_form,
    field_problem,
    require_writable_tenant,
)
from control_plane.web.pages import ConsoleDep, Viewer, admin_viewer, domain_error_page, redirect, render

router = APIRouter(include_in_schema=False)
ReasonField = Annotated[str, Form(max_length=2000)]
Step = Callable[[Session, RolloutPorts, Principal], controls.Controlled]


def _ports(request: Request) -> RolloutPorts:
    ports: RolloutPorts = request.app.state.provided[RolloutPorts]
    return ports


@router.get("/rollouts")
def rollouts_page(request: Request, c: ConsoleDep) -> Response:
    viewer = admin_viewer(request, c)
    if isinstance(viewer, Response):
        return viewer
    with unit_of_work(c.factory) as session:
        rows = [controls.rollout_out(r) for r in rollouts.list_for(session, viewer.tenant_id, 200)]
    return render(request, "rollouts.html", {"viewer": viewer, "section": "rollouts", "rollouts": rows})


def _actions(state: str) -> list[str]:
    s = RolloutState(state)
    shown = ["pause"] if s is RolloutState.PROGRESSING else []
    shown += ["resume"] if s is RolloutState.PAUSED else []
    shown += ["abort"] if s in rollouts.ABORTABLE else []
    shown += ["rollback"] if s in (*rollouts.ABORTABLE, RolloutState.ROLLING_BACK) else []
    return shown


def _rollout_page(
    request: Request, c: ConsoleDep, viewer: Viewer, rollout_id: str, status: int = 200, **extra: Any
) -> Response:
    try:
        with unit_of_work(c.factory) as session:
            # The API's read: the weights read back from the model host now (null when unknown).
            out = controls.read(session, _ports(request), viewer.principal, rollout_id)
    except DomainError as exc:
        return domain_error_page(request, viewer, exc)
    steps = [
        {
            "index": i,
            "weight_bp": w,
            "current": i == out.step_index,
            "analyses": [a for a in out.analyses if a.get("step_index") == i],
        }
        for i, w in enumerate(out.steps)
    ]
    context = {
        "viewer": viewer,
        "section": "rollouts",
        "r": out,
        "steps": steps,
        "actions": _actions(out.state),
        **extra,
    }
    return render(request, "rollout.html", context, status)


@router.get("/rollouts/{rollout_id}")
def rollout_page(rollout_id: str, request: Request, c: ConsoleDep) -> Response:
    viewer = admin_viewer(request, c)
    return viewer if isinstance(viewer, Response) else _rollout_page(request, c, viewer, rollout_id)


def _act(request: Request, c: ConsoleDep, csrf: str, rollout_id: str, step: Step) -> Response:
    def refused(form: ConsoleForm, exc: DomainError) -> Response:
        if exc.status == 404:
            return domain_error_page(request, form.viewer, exc)
        return _rollout_page(request, c, form.viewer, rollout_id, exc.status, problem=field_problem(exc))

    form = admin_form(request, c, csrf, refused)
    if isinstance(form, Response):
        return form
    viewer = form.viewer

    def act(session: Session) -> controls.Controlled:
        require_writable_tenant(session, viewer.tenant_id)
        return step(session, _ports(request), viewer.principal)

    def answer(done: controls.Controlled) -> Response:
        if done.failure is not None:  # recorded and queued; the model host did not take the weights
            problem = f"weights: {done.failure_detail}"
            return _rollout_page(request, c, viewer, rollout_id, 503, problem=problem)
        return redirect(f"/console/rollouts/{rollout_id}")

    return form.act(act, answer)


def _reason(typed: str, default: str | None = None) -> str:
    """The form's reason, held to the API's ``ReasonBody`` (1 to 1000 characters); a blank one is
    ``default``, as a body-less ``POST /v1/rollouts/{id}/…`` is (the emergency rollback has none)."""
    if not typed.strip() and default is not None:
        return default
    try:
        return ReasonBody(reason=typed.strip()).reason
    except ValidationError as exc:
        needs = "an emergency rollback needs a reason" if default is None else "a reason has"
        raise InvalidInput(f"{needs} (1 to 1000 characters)", field="reason") from exc


def _control(
    request: Request,
    c: ConsoleDep,
    csrf: str,
    rollout_id: str,
    target: RolloutState,
    reason: str,
    default: str,
) -> Response:
    """Pause, resume or abort, as ``POST /v1/rollouts/{id}/…`` does."""

    def step(session: Session, ports: RolloutPorts, who: Principal) -> controls.Controlled:
        return controls.control(session, ports, who, rollout_id, target, _reason(reason, default))

    return _act(request, c, csrf, rollout_id, step)


@router.post("/rollouts/{rollout_id}/pause")
def pause(
    rollout_id: str, request: Request, c: ConsoleDep, csrf: CsrfField = "", reason: ReasonField = ""
) -> Response:
    return _control(request, c, csrf, rollout_id, RolloutState.PAUSED, reason, "paused")


@router.post("/rollouts/{rollout_id}/resume")
def resume(rollout_id: str, request: Request, c: ConsoleDep, csrf: CsrfField = "") -> Response:
    return _control(request, c, csrf, rollout_id, RolloutState.PROGRESSING, "", "resumed")


@router.post("/rollouts/{rollout_id}/abort")
def abort(
    rollout_id: str, request: Request, c: ConsoleDep, csrf: CsrfField = "", reason: ReasonField = ""
) -> Response:
    return _control(request, c, csrf, rollout_id, RolloutState.ABORTED, reason, "aborted")


@router.post("/rollouts/{rollout_id}/rollback")
def rollback(
    rollout_id: str, request: Request, c: ConsoleDep, csrf: CsrfField = "", reason: ReasonField = ""
) -> Response:
    def emergency(session: Session, ports: RolloutPorts, who: Principal) -> controls.Controlled:
        return controls.emergency_rollback(session, ports, who, rollout_id, _reason(reason))

    return _act(request, c, csrf, rollout_id, emergency)
