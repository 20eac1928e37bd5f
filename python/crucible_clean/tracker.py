"""The seed's interceptor pattern: record the ``eval_id`` of evaluations a test creates.

``track(session)`` adds a response hook to a ``requests.Session``, an
``httpx.Client`` or an ``httpx.AsyncClient``: every successful (2xx) JSON answer to a
POST whose URL path matches the pattern (default: contains ``/eval``) and whose body
has an ``eval_id`` records that id on the tracker of the test running at that moment
(while a fixture wider than a test is set up: on that fixture's; outside both: on the
session's). A POST answered by a redirect (303 to the new evaluation) counts for the
answer at the end of the redirects. Other answers are never read, so streamed
responses reach the caller untouched. The plugin then cleans exactly those
evaluations (``evaluation-job-<eval-id>`` and their pods).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Callable, List, Optional
from urllib.parse import unquote, urljoin, urlsplit

from .ids import is_label_value

DEFAULT_PATTERN = "/eval"
REDIRECTS = (301, 302, 303, 307, 308)


def _is_json(content_type: Optional[str]) -> bool:
    """``application/json``, ``application/problem+json``…; a missing type may be JSON."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class Tracker:
    """Evaluation ids recorded during one test (or one fixture, or the session)."""

    def __init__(self, pattern: str = DEFAULT_PATTERN) -> None:
        self.pattern = re.compile(pattern)
        self.eval_ids: List[str] = []
        self.ignored: List[str] = []

    def add(self, eval_id: Any) -> None:
        """Track an evaluation by id (what a matching POST does)."""
        value = str(eval_id)
        if not is_label_value(value) or not value:
            self.ignored.append(value)
            return
        if value not in self.eval_ids:
            self.eval_ids.append(value)

    def matches(self, method: str, url: str) -> bool:
        return method.upper() == "POST" and bool(self.pattern.search(urlsplit(url).path))

    def wants(self, method: str, url: str, status: int, content_type: Optional[str]) -> bool:
        """Whether an answer's body is worth reading: decided on its head alone."""
        return 200 <= status < 300 and self.matches(method, url) and _is_json(content_type)

    def observe(self, method: str, url: str, status: int, body: Callable[[], Any],
                content_type: Optional[str] = None) -> None:
        if not self.wants(method, url, status, content_type):
            return
        try:
            data = body()
        except Exception:  # not JSON: nothing to record
            return
        if isinstance(data, dict) and data.get("eval_id") not in (None, ""):
            self.add(data["eval_id"])

    def track(self, session: Any) -> Any:
        """Wraps ``session`` so its matching POSTs record on this tracker; returns it."""
        return track(session, tracker=self)


class _Redirects:
    """The redirects a tracked client is following from a POST: the URL each leads to,
    and the POST it started from. Bounded, for redirects nobody follows."""

    LIMIT = 32

    def __init__(self) -> None:
        self.pending: "OrderedDict[str, str]" = OrderedDict()

    @staticmethod
    def _key(url: str) -> str:
        u = urlsplit(url)
        return f"{u.netloc}{unquote(u.path)}"

    def origin(self, method: str, url: str, status: int, location: Optional[str],
               matches: Callable[[str, str], bool]) -> tuple:
        """The (method, url) an answer counts for: a redirect's target counts as the
        POST that led to it."""
        start = self.pending.pop(self._key(url), None)
        method, url_for = ("POST", start) if start is not None else (method, url)
        if status in REDIRECTS and location and (start is not None or matches(method, url)):
            self.pending[self._key(urljoin(url, location))] = url_for
            while len(self.pending) > self.LIMIT:
                self.pending.popitem(last=False)
        return method, url_for


# Trackers of the tests and wider fixtures running now (innermost last), and the session's.
_stack: List[Tracker] = []
_session = Tracker()


def current() -> Tracker:
    return _stack[-1] if _stack else _session


def push(t: Tracker) -> None:
    _stack.append(t)


def pop(t: Tracker) -> None:
    if t in _stack:
        _stack.remove(t)


def session_tracker() -> Tracker:
    return _session


def reset_session(pattern: str) -> Tracker:
    global _session
    _session = Tracker(pattern)
    return _session


def track(session: Any, tracker: Optional[Tracker] = None) -> Any:
    """Records the ``eval_id`` of POSTs to evaluation URLs made through ``session``.

    ``session``: a ``requests.Session``, ``httpx.Client`` or ``httpx.AsyncClient``.
    Without ``tracker``, ids go to the test running when the response arrives.
    Returns ``session`` itself.
    """

    def target() -> Tracker:
        return tracker if tracker is not None else current()

    redirects = _Redirects()

    def seen(method: str, url: str, status: int, headers: Any) -> tuple:
        return redirects.origin(method, url, status, headers.get("location"), target().matches)

    try:
        import requests
    except ImportError:  # optional
        requests = None  # type: ignore[assignment]
    if requests is not None and isinstance(session, requests.Session):

        def on_response(resp: Any, *args: Any, **kwargs: Any) -> Any:
            method, url = seen(resp.request.method or "", resp.url, resp.status_code, resp.headers)
            target().observe(method, url, resp.status_code, resp.json,
                             resp.headers.get("content-type"))
            return resp

        session.hooks.setdefault("response", []).append(on_response)
        return session

    try:
        import httpx
    except ImportError:  # optional
        httpx = None  # type: ignore[assignment]
    if httpx is not None and isinstance(session, httpx.Client):

        def on_httpx(resp: Any) -> None:
            method, url = seen(resp.request.method, str(resp.request.url), resp.status_code,
                               resp.headers)
            t = target()
            if t.wants(method, url, resp.status_code, resp.headers.get("content-type")):
                resp.read()  # only now: a matching JSON answer
                t.observe(method, url, resp.status_code, resp.json, resp.headers.get("content-type"))

        hooks = dict(session.event_hooks)
        hooks["response"] = [*hooks.get("response", []), on_httpx]
        session.event_hooks = hooks
        return session
    if httpx is not None and isinstance(session, httpx.AsyncClient):

        async def on_httpx_async(resp: Any) -> None:
            method, url = seen(resp.request.method, str(resp.request.url), resp.status_code,
                               resp.headers)
            t = target()
            if t.wants(method, url, resp.status_code, resp.headers.get("content-type")):
                await resp.aread()
                t.observe(method, url, resp.status_code, resp.json, resp.headers.get("content-type"))

        hooks = dict(session.event_hooks)
        hooks["response"] = [*hooks.get("response", []), on_httpx_async]
        session.event_hooks = hooks
        return session
    raise TypeError(
        f"crucible_clean.track() takes a requests.Session, httpx.Client or httpx.AsyncClient, "
        f"not {type(session).__name__}"
    )
