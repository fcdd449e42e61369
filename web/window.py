"""The window's pages: search, a subject's public file (and as of a past day), a record's
signed events, the credit report, the verify page, transparency, the language switch."""

from __future__ import annotations

import hashlib
import re
import tempfile
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from flask import (
    Blueprint,
    abort,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from werkzeug.wrappers import Response

from domain import clock
from domain.disclosure import NotWhollyPublic
from domain.identifiers import mask_person_name, mask_resident_id, mask_subject_key
from projections.queries import search_subjects
from web.app import LANGUAGE_COOKIE, LANGUAGES, RESIDENT_ID, door
from web.charts import grade_chart
from web.reports import ReportStore, qr_svg
from workflows.verifier_file import verifier_bytes
from workflows.window import NotShown

window = Blueprint("window", __name__)

GROUPS = ("licensing", "penalty", "other")  # as Credit China groups a file
PAGE = 50  # records shown per group; ?all=1 shows them all
UUID_TEXT = re.compile(r"^[0-9a-fA-F-]{36}$")


@window.get("/")
def home() -> str:
    query = request.args.get("q", "").strip()[:100]
    results: list[dict[str, Any]] = []
    if query:
        with door().window() as win:
            run = door().runner(win)
            results = win.search(query, lambda text, people: search_subjects(
                run.engine, text, people, 50))
    # a person's ID number typed into the box is not shown back (people are not searchable)
    return render_template("home.html", query=mask_resident_ids(query), results=results)


@window.get("/subject/<key>")
def subject(key: str) -> str:
    as_of = _day(request.args.get("as_of"))
    with door().window() as win:
        try:
            state = win.subject(key, as_of)
        except NotShown:
            abort(404)
    everything = request.args.get("all") == "1"
    groups = []
    for code in GROUPS:  # newest first, as Credit China lists them; a page of each group
        found = [r for r in reversed(state["records"]) if _group(r) == code]
        groups.append((code, found if everything else found[:PAGE], len(found)))
    return render_template("subject.html", state=state, groups=groups, as_of=as_of,
                           today=clock.today_in_china(), chart=grade_chart(state["timeline"]),
                           masked=mask_subject_key(state["subject"]))


@window.get("/record/<record_id>")
def record(record_id: str) -> str:
    if not UUID_TEXT.match(record_id):
        abort(404)
    with door().window() as win:
        try:
            shown = win.record(UUID(record_id))
        except (NotShown, ValueError):
            abort(404)
    return render_template("record.html", shown=shown, record=shown["record"])


@window.post("/subject/<key>/report")
def issue_report(key: str) -> Response:
    """Issue the signed report (it is a write: the issue is logged), then show it."""
    with door().window() as win:
        try:
            report = win.issue_report(key)
        except NotShown:
            abort(404)
        except NotWhollyPublic:
            return make_response(render_template("error.html", code=403,
                                                 title=gettext("不能出具公开信用报告"),
                                                 detail=gettext(
                "该主体的签名档案中含有已不公开的记录或申请：签名报告只向主体本人和有权机关出具。")),
                403)
    ReportStore.of(door().settings).keep(report.number, report.file)
    return redirect(url_for("window.report", number=report.number), code=303)


@window.get("/reports/<number>")
def report(number: str) -> str:
    store = ReportStore.of(door().settings)
    file = store.find(number)
    if file is None:
        abort(404)
    payload, sha256 = store.payload(file), store.digest(file)
    verify_url = url_for("window.verify_page", _external=True)
    return render_template("report.html", payload=payload, state=payload["state"],
                           number=number, sha256=sha256,
                           qr=qr_svg(f"信用临安 {number} sha256:{sha256} {verify_url}"),
                           masked=mask_subject_key(payload["subject"]))


@window.get("/reports/<number>.json")
def report_file(number: str) -> Response:
    file = ReportStore.of(door().settings).find(number)
    if file is None:
        abort(404)
    response = make_response(file.read_bytes())
    response.headers["Content-Type"] = "application/credit-extract+json"
    response.headers["Content-Disposition"] = f'attachment; filename="{number}.json"'
    return response


@window.get("/verify")
def verify_page() -> str:
    with door().window() as win:
        trusted = win.trusted_key()
    return render_template("verify.html", trusted=trusted, result=None)


@window.post("/verify")
def verify_upload() -> tuple[str, int]:
    upload = request.files.get("extract")
    if upload is None or not upload.filename:
        abort(400)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "extract.json"
        upload.save(path)
        data = path.read_bytes()
        with door().window() as win:
            trusted = win.trusted_key()
            valid, result = win.verify(path)
    subject = str(result.get("subject") or "")
    name = str(result.get("name") or "")
    return render_template(
        "verify.html", trusted=trusted, result=result, valid=valid,
        sha256=hashlib.sha256(data).hexdigest(), masked=mask_subject_key(subject),
        shown_name=mask_person_name(name) if subject.startswith("rid:") else name,
        reason=mask_resident_ids(str(result.get("reason") or ""))), 200 if valid else 422


@window.get("/transparency")
def transparency() -> str:
    with door().window() as win:
        listing = win.checkpoints()
        trusted = win.trusted_key()
    return render_template("transparency.html", checkpoints=list(reversed(listing)),
                           trusted=trusted, verifier=VerifierFile.get())


@window.get("/transparency/platform.pem")
def platform_key() -> Response:
    with door().window() as win:
        pem = win.trusted_key()["pem"]
    response = make_response(pem)
    response.headers["Content-Type"] = "application/x-pem-file"
    response.headers["Content-Disposition"] = 'attachment; filename="platform.pem"'
    return response


@window.get("/transparency/credit-verify.pyz")
def verifier() -> Response:
    response = make_response(VerifierFile.get()["bytes"])
    response.headers["Content-Type"] = "application/zip"
    response.headers["Content-Disposition"] = 'attachment; filename="credit-verify.pyz"'
    return response


@window.get("/lang/<code>")
def language(code: str) -> Response:
    back = request.args.get("next", "/")
    if not back.startswith("/") or back.startswith("//"):
        back = "/"  # only back into this site
    response = redirect(back)
    if code in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax")
    return response


class VerifierFile:
    """The court's verifier as this checkout builds it (byte-identical to `make verifier`)."""

    _built: dict[str, Any] | None = None

    @classmethod
    def get(cls) -> dict[str, Any]:
        if cls._built is None:
            data = verifier_bytes()
            cls._built = {"bytes": data, "sha256": hashlib.sha256(data).hexdigest(),
                          "size": len(data)}
        return cls._built


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        day = clock.parse_day(text)
    except ValueError:
        abort(400)
    if day > clock.today_in_china():
        abort(400)
    return day


def mask_resident_ids(text: str) -> str:
    """Any resident ID number in a text (a verifier's reason) masked."""
    return RESIDENT_ID.sub(lambda m: mask_resident_id(m.group(0)), text)


def _group(record: dict[str, Any]) -> str:
    return record["category"] if record["category"] in ("licensing", "penalty") else "other"
