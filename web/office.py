"""The credit office's desk in the window: staff sign in with their office token (a session
cookie, never the token, is kept), see the objections awaiting them and accept, decline, extend
and rule on them. Every form carries its CSRF token (web/csrf.py); the office's key signs what
the desk writes; a refused act (a rule of the domain, a missing reason) is a 422 page and writes
nothing."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from web.app import door
from workflows.tokens import TokenRefused, Tokens

office = Blueprint("office", __name__, url_prefix="/office")
OFFICE_ROLE = "credit_office"


def signed_in() -> str:
    name = session.get("office")
    if not isinstance(name, str):
        abort(401)
    return name


@office.get("/login")
def login_page() -> str:
    return render_template("office_login.html", refused=False)


@office.post("/login")
def login() -> Response | tuple[str, int]:
    token = request.form.get("token", "")
    with door().window() as win:
        try:
            reader = Tokens(win.ledger).authenticate(token)
        except TokenRefused:
            reader = None
    if reader is None or reader.role != OFFICE_ROLE:
        return render_template("office_login.html", refused=True), 401
    session.clear()  # a new session for the signed-in user (no fixation)
    session["office"] = reader.name
    return redirect(url_for("office.desk"))


@office.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("window.home"))


@office.get("")
def desk() -> str | Response:
    if not isinstance(session.get("office"), str):
        return redirect(url_for("office.login_page"))
    with door().window() as win:
        queue = win.objection_queue()
    return render_template("office.html", queue=queue, name=session["office"])


# what the desk rules without changing a record's fields (a correction is made over the API
# or with `credit objection rule`, where the changed fields are given)
DESK_OUTCOMES = ("revoke", "end_disclosure", "remove_from_list", "reject")


def _text(field: str) -> str:
    value = request.form.get(field, "").strip()
    if not value:
        abort(422, f"{field} is required")
    return value


@office.post("/objections/<number>/accept")
def accept(number: str) -> Response:
    actor = signed_in()
    door().write(lambda win: win.services.accept_objection(actor, number))
    return redirect(url_for("office.desk", done=number))


@office.post("/objections/<number>/decline")
def decline(number: str) -> Response:
    actor = signed_in()
    reason = _text("reason")
    door().write(lambda win: win.services.decline_objection(actor, number, reason, None))
    return redirect(url_for("office.desk", done=number))


@office.post("/objections/<number>/extend")
def extend(number: str) -> Response:
    actor = signed_in()
    reason = _text("reason")
    door().write(lambda win: win.services.extend_objection(actor, number, reason, None))
    return redirect(url_for("office.desk", done=number))


@office.post("/objections/<number>/rule")
def rule(number: str) -> Response:
    actor = signed_in()
    outcome = request.form.get("outcome", "")
    if outcome not in DESK_OUTCOMES:
        abort(422, f"the outcome is one of {', '.join(DESK_OUTCOMES)}")
    reasoning = _text("reasoning")
    door().write(lambda win: win.services.rule_objection(
        actor, number, outcome=outcome, reasoning=reasoning, changes=None, ruled_on=None))
    return redirect(url_for("office.desk", done=number))



