"""The seed's interceptor pattern: record the ``eval_id`` of evaluations a test creates.

``track(session)`` adds a response hook to a ``requests.Session``, an
``httpx.Client`` or an ``httpx.AsyncClient``: every successful (2xx) POST whose
URL path matches the pattern (default: contains ``/eval``) and whose JSON body
has an ``eval_id`` records that id on the tracker of the test running at that
moment (outside a test: on the session's tracker). The plugin then cleans
exactly those evaluations (``evaluation-job-<eval-id>`` and their pods).
"""

from __future__ import annotations

import re
from typing import Any, Callable, List, Optional
from urllib.parse import urlsplit

from .ids import is_label_value

DEFAULT_PATTERN = "/eval"


class Tracker:
    """Evaluation ids recorded during one test (or outside tests, for the session)."""

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

    def observe(self, method: str, url: str, status: int, body: Callable[[], Any]) -> None:
        if not (200 <= status < 300) or not self.matches(method, url):
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


# Trackers of the tests running now (innermost last), and the session's.
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

    try:
        import requests
    except ImportError:  # optional
        requests = None  # type: ignore[assignment]
    if requests is not None and isinstance(session, requests.Session):

        def on_response(resp: Any, *args: Any, **kwargs: Any) -> Any:
            target().observe(resp.request.method or "", resp.url, resp.status_code, resp.json)
            return resp

        session.hooks.setdefault("response", []).append(on_response)
        return session

    try:
        import httpx
    except ImportError:  # optional
        httpx = None  # type: ignore[assignment]
    if httpx is not None and isinstance(session, httpx.Client):

        def on_httpx(resp: Any) -> None:
            resp.read()
            target().observe(resp.request.method, str(resp.request.url), resp.status_code, resp.json)

        hooks = dict(session.event_hooks)
        hooks["response"] = [*hooks.get("response", []), on_httpx]
        session.event_hooks = hooks
        return session
    if httpx is not None and isinstance(session, httpx.AsyncClient):

        async def on_httpx_async(resp: Any) -> None:
            await resp.aread()
            target().observe(resp.request.method, str(resp.request.url), resp.status_code, resp.json)

        hooks = dict(session.event_hooks)
        hooks["response"] = [*hooks.get("response", []), on_httpx_async]
        session.event_hooks = hooks
        return session
    raise TypeError(
        f"crucible_clean.track() takes a requests.Session, httpx.Client or httpx.AsyncClient, "
        f"not {type(session).__name__}"
    )
