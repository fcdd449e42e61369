"""The app factory and what every page shares: the ledger door, the language, errors."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from flask import Flask, Response, current_app, g, render_template, request
from flask_babel import Babel, get_translations, gettext
from jinja2 import pass_context
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from domain.authorities import LINAN_AUTHORITIES
from domain.clock import CHINA_TIME
from projections.runner import ProjectionRunner
from web import csrf
from workflows.session import USER_ERRORS, CreditLedger, Settings, WriterQueue, opened
from workflows.window import Window

T = TypeVar("T")
LANGUAGES = ("zh", "en")
LANGUAGE_COOKIE = "lang"
MAX_UPLOAD = 32 * 1024 * 1024  # an extract of a subject with tens of thousands of events


class Door:
    """The ledger as the window reaches it: opened once per process, used one request at a
    time (the development server is threaded; gunicorn's sync workers are not)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ledger: CreditLedger | None = None
        self._opened: Any = None
        self._lock = threading.RLock()
        self._runner: ProjectionRunner | None = None
        self._writers = WriterQueue(settings.database_url)

    @contextmanager
    def window(self) -> Iterator[Window]:
        with self._lock:
            if self._ledger is None:
                self._opened = opened(self.settings)
                self._ledger = self._opened.__enter__()
            yield Window(self._ledger)

    def runner(self, window: Window) -> ProjectionRunner:
        """The read models, as the writers left them: every command that writes brings them
        up to date (embedded mode), or `credit project --follow` does (worker mode); a page
        view never writes."""
        if self._runner is None:
            self._runner = ProjectionRunner.for_ledger(window.ledger)
        return self._runner

    def write(self, work: Callable[[Window], T], *, read_models: bool = True) -> T:
        """Do ``work`` (a write) and bring the read models up after it (embedded mode): the
        write stands whatever the read models do; a failure there is logged, not raised.
        Writers of the process's workers take turns (``WriterQueue``)."""
        with self.window() as win, self._writers.turn():
            result = work(win)
            if not read_models or self.settings.projections == "worker":
                return result  # worker mode: `credit project --follow` brings them up
            try:
                self.runner(win).catch_up()
            except Exception as exc:
                current_app.logger.warning("read models did not catch up after a write: %s",
                                           type(exc).__name__)
        return result

    def close(self) -> None:
        with self._lock:
            if self._opened is not None:
                self._opened.__exit__(None, None, None)
                self._ledger = self._opened = self._runner = None
            self._writers.close()


def create_app(settings: Settings | None = None) -> Flask:
    """The window over the configured ledger (``CREDIT_*`` variables), or over ``settings``."""
    app = Flask(__name__)
    config = replace(settings or Settings.from_env(), create=False)
    app.config.update(MAX_CONTENT_LENGTH=MAX_UPLOAD, JSON_AS_ASCII=False,
                      BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
                      BABEL_DEFAULT_LOCALE="zh")
    app.extensions["credit_door"] = Door(config)
    Babel(app, locale_selector=chosen_language)
    csrf.install(app, config.keys_dir)

    from web.api import problems, register_api
    from web.window import window

    app.register_blueprint(window)
    from web.office import office

    app.register_blueprint(office)
    from web.tiles import tiles

    app.register_blueprint(tiles)

    @app.context_processor
    def shared() -> dict[str, Any]:
        return {"language": chosen_language(), "languages": LANGUAGES, "here": back_here(),
                "gettext": template_gettext(get_translations()), **TEMPLATE_HELPERS}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        return page_error(exc.code or 500, exc.description or "")

    def refused(exc: Exception) -> Any:
        if problems.is_api():
            return problems.from_refusal(exc) or problems.problem(500, "the request failed")
        app.logger.warning("refused: %s", type(exc).__name__)  # its text may name a person
        return page_error(422, "")

    for error in USER_ERRORS:
        if issubclass(error, Exception):
            app.register_error_handler(error, refused)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; "
                                    "style-src 'self'; frame-ancestors 'none'")
        return response

    register_api(app)
    return app


AUTHORITIES = {a.code: a for a in LINAN_AUTHORITIES}
LIST_NAMES = {"black": ("严重失信主体名单", "Serious dishonesty list"),
              "red": ("守信激励名单", "Red list (trustworthy)")}
EVENT_NAMES = {"Submitted": ("提交", "submitted"), "Corrected": ("更正", "corrected"),
               "Revoked": ("撤销", "revoked"), "DisclosureEnded": ("结束公示", "display ended")}


def authority_name(code: str | None) -> str:
    found = AUTHORITIES.get(code or "")
    if found is None:
        return code or ""
    return found.name_zh if chosen_language() == "zh" else found.name_en


def list_name(name: str) -> str:
    zh, en = LIST_NAMES.get(name, (name, name))
    return zh if chosen_language() == "zh" else en


def event_name(kind: str) -> str:
    zh, en = EVENT_NAMES.get(kind.rsplit(".", 1)[-1], (kind, kind))
    return zh if chosen_language() == "zh" else en


def china_time(moment: datetime) -> str:
    """An instant as China time, to the minute (the platform's calendar)."""
    return moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


def china_time_text(text: str) -> str:
    return china_time(datetime.fromisoformat(text.replace("Z", "+00:00")))


TEMPLATE_HELPERS = {"authority_name": authority_name, "list_name": list_name,
                    "event_name": event_name, "china_time": china_time,
                    "china_time_text": china_time_text}


def door() -> Door:
    from flask import current_app

    found: Door = current_app.extensions["credit_door"]
    return found


RESIDENT_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def back_here() -> str:
    """Where the language switch returns to: this page, unless its address could carry a
    person's ID number (a 404 for one, a search for one): then the home page."""
    if request.url_rule is None or RESIDENT_ID.search(unquote(request.full_path)):
        return "/"
    return request.full_path if request.query_string else request.path


def template_gettext(catalogue: Any) -> Any:
    """The templates' _() for one page: its catalogue looked up once, not once per message
    (Flask-Babel's own looks it up through the request context every time); formats and
    escapes as Jinja's "newstyle" gettext does."""

    @pass_context
    def gettext(context: Any, text: str, **variables: Any) -> str:
        found: str = catalogue.ugettext(text)
        if context.eval_ctx.autoescape:
            found = Markup(found)
        return found % variables if variables else found

    return gettext


def chosen_language() -> str:
    """The language the user chose (a cookie, set by the switch), else Chinese."""
    if "language" not in g:
        chosen = request.cookies.get(LANGUAGE_COOKIE, "zh")
        g.language = chosen if chosen in LANGUAGES else "zh"
    return str(g.language)


def page_error(code: int, detail: str) -> tuple[str, int]:
    titles = {401: gettext("请先登录"), 404: gettext("未找到"), 413: gettext("文件太大"),
              400: gettext("请求有误"), 405: gettext("请求有误"), 422: gettext("请求无法完成")}
    title = titles.get(code, gettext("出错了"))
    explanations = {404: gettext("没有这个主体或记录，或者它不公开（自然人的信息不在公开窗口显示）。"),
                    413: gettext("上传的文件超过了允许的大小。")}
    return render_template("error.html", code=code, title=title,
                           detail=explanations.get(code, "")), code
