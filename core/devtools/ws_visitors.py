"""Visitors of a served app without browsers: Streamlit's own websocket protocol, one coroutine per visitor.

A headless Chromium tab costs the 2-core box more CPU than the prediction it waits for, so twenty of them cannot
measure twenty visitors. Each visitor here is what the browser's page does on the wire, built on Streamlit's
message classes (``streamlit.proto``: ``BackMsg`` out, ``ForwardMsg`` in), so the server runs exactly the code a
browser visitor runs (a session, the page script, the upload manager, the line for the models):

1. ``GET /`` (the page) and ``GET /_stcore/health``, which sets the ``_streamlit_xsrf`` cookie, as the page's
   JavaScript does before it connects;
2. a websocket to ``/_stcore/stream`` with the subprotocols ``["streamlit", xsrf]``, the cookie and a same-origin
   ``Origin`` (and ``Authorization`` when the app is behind ``m2t serve --auth``'s proxy);
3. ``rerun_script`` for the default page; the ``ForwardMsg`` deltas of that run give the ids of the Tweet
   prediction form's widgets (found by their keys: ``tweet.company``, ``tweet.username``, ``tweet.upload``) and of
   its submit button;
4. the poster: ``file_urls_request`` -> ``file_urls_response`` -> ``PUT`` of the file (multipart, with the
   ``X-Xsrftoken`` header) -> its file id in the uploader's widget state;
5. once every visitor's form is ready, all submit together: ``rerun_script`` with the widget states and the
   button's trigger; each visitor then records the place texts its status box shows ("2 ahead of you, about 6 s",
   "You are next, …"), the label "Tweet ready in X s after Y s in line", the tweet, and every text its page got.

:func:`run_visitors` returns one :class:`VisitorResult` per visitor. Each visitor has a company of its own and,
by default, a poster of its own that names it, so "none sees another's" is checked on what each page received.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORM_KEYS = {"company": "tweet.company", "username": "tweet.username", "upload": "tweet.upload"}
SUBMIT_LABEL = "Predict tweet"
READY = re.compile(r"Tweet ready in ([0-9.]+) s(?: after ([0-9.]+) s in line)?")
FAILED_LABEL = "Prediction failed"
PLACE_PREFIX = ":material/groups: "  # app.predict.show_place; the same icon on "Waited 4.2 s in line (…)"
STAGE_DONE = ":material/check_circle:"
XSRF_COOKIE = "_streamlit_xsrf"
DEFAULT_TIMEOUT_S = 1800.0  # the last of 20 visitors on a busy 2-core box
POSTER_TEXT = "GRAND OPENING this Saturday 10am free coffee at {company}"
COMPANIES = ("Bean Town", "Maple Bakery", "Lantern Books", "Pine Cycles", "Lumen Lamps", "Cobalt Tea",
             "Orchid Florist", "Granite Gym", "Velvet Cinema", "Saffron Kitchen", "Atlas Travel", "Juniper Yoga",
             "Copper Kettle", "Nimbus Cloud", "Falcon Tires", "Willow Pets", "Quartz Watches", "Ember Pizza",
             "Tidal Surf", "Meadow Dairy")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def companies(n: int) -> list[str]:
    """``n`` company names, none a substring of another (so a page naming one never names another by accident)."""
    if n <= len(COMPANIES):
        return list(COMPANIES[:n])
    return [f"{COMPANIES[i % len(COMPANIES)]} No{i // len(COMPANIES) + 1}x" for i in range(n)]


def username(company: str) -> str:
    return re.sub(r"[^a-z0-9]", "", company.lower())[:15] or "visitor"


@dataclass
class VisitorResult:
    """What one visitor did and saw. Seconds are on this process's clock: ``total_s`` from its submit to the label
    "Tweet ready" (what a person waits), ``pipeline_s`` and ``line_s`` as that label states them (the models' time
    and the wait in line, measured on the server)."""

    index: int
    company: str
    username: str
    poster: str
    total_s: float = float("nan")
    pipeline_s: float | None = None
    line_s: float = 0.0
    place_texts: list[str] = field(default_factory=list)
    status_labels: list[str] = field(default_factory=list)  # the status box's labels, in order
    stage_lines: list[str] = field(default_factory=list)  # "Captioning (0.3 s)", …
    tweet: str = ""
    ocr: str = ""
    own_company_seen: bool = False
    others_seen: list[str] = field(default_factory=list)  # other visitors' companies found on this page
    error: str | None = None
    form_ready_s: float = float("nan")  # connect, first run and upload, before the click

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.tweet)

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- HTTP (stdlib, run in threads)


def _auth_header(auth: tuple[str, str] | None) -> dict[str, str]:
    if auth is None:
        return {}
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _http(method: str, url: str, headers: dict[str, str], body: bytes | None = None,
          timeout: float = 60.0) -> tuple[int, dict[str, list[str]], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with _NO_PROXY.open(request, timeout=timeout) as resp:
            heads: dict[str, list[str]] = {}
            for name, value in resp.headers.items():
                heads.setdefault(name.lower(), []).append(value)
            return resp.status, heads, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {}, exc.read()


def _cookie(headers: dict[str, list[str]], name: str) -> str | None:
    for line in headers.get("set-cookie", []):
        key, _, rest = line.partition("=")
        if key.strip() == name:
            return rest.split(";", 1)[0].strip().strip('"')
    return None


def _multipart(filename: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = f"----m2t{uuid.uuid4().hex}"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# --------------------------------------------------------------------------- one visitor


def _texts(message: Any) -> list[str]:
    """Every non-empty string field of a proto message, one level deep (labels, bodies, code)."""
    out = []
    for _desc, value in message.ListFields():
        if isinstance(value, str) and value:
            out.append(value)
    return out


class Visitor:
    """One browser tab's worth of protocol: a websocket session on the Tweet prediction page."""

    def __init__(self, base_url: str, index: int, company: str, poster: Path, auth: tuple[str, str] | None,
                 timeout: float) -> None:
        self.base = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.result = VisitorResult(index, company, username(company), str(poster))
        self.poster = poster
        self.ws: Any = None
        self.session_id = ""
        self.page_hash = ""
        self.xsrf = ""
        self.widgets: dict[str, Any] = {}  # key -> element sub-proto (text_input, file_uploader, button)
        self.texts: list[str] = []  # every text this page received, in order
        self.run_finished = asyncio.Event()
        self.ready = asyncio.Event()  # "Tweet ready" or "Prediction failed" seen
        self.ready_at: float | None = None
        self.file_urls: dict[str, asyncio.Future] = {}
        self.reader: asyncio.Task | None = None
        self.clicked_at: float | None = None
        self.after_click: list[Any] = []  # (kind, proto) received after the click, in order
        self.gone = False  # the reader stopped: the connection closed (or a message could not be read)

    # -- connection

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        headers = _auth_header(self.auth)
        status, _, page = await asyncio.to_thread(_http, "GET", f"{self.base}/", headers)
        if status != 200 or b'id="root"' not in page:
            raise RuntimeError(f"GET / answered {status}")
        status, heads, _ = await asyncio.to_thread(_http, "GET", f"{self.base}/_stcore/health", headers)
        if status != 200:
            raise RuntimeError(f"GET /_stcore/health answered {status}")
        self.xsrf = _cookie(heads, XSRF_COOKIE) or ""
        ws_url = "ws" + self.base[len("http"):] + "/_stcore/stream"
        ws_headers = dict(headers)
        if self.xsrf:
            ws_headers["Cookie"] = f"{XSRF_COOKIE}={self.xsrf}"
        protocols = ["streamlit", self.xsrf] if self.xsrf else ["streamlit"]
        self.ws = await connect(ws_url, subprotocols=protocols, additional_headers=ws_headers, origin=self.base,
                                max_size=None, ping_interval=None, open_timeout=60)
        self.reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            try:
                await self.reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the reader's own end is not the result
                pass

    async def _send(self, back: Any) -> None:
        await self.ws.send(back.SerializeToString())

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        try:
            async for data in self.ws:
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg)
        finally:  # a closed connection or a bug here must not leave the visitor waiting for its full timeout
            self.gone = True
            for event in (self.run_finished, self.ready):
                event.set()

    def _handle(self, msg: Any) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.session_id = msg.new_session.initialize.session_id or self.session_id
            self.page_hash = msg.new_session.page_script_hash or self.page_hash
        elif kind == "script_finished":
            self.run_finished.set()
        elif kind == "file_urls_response":
            future = self.file_urls.pop(msg.file_urls_response.response_id, None)
            if future is not None and not future.done():
                future.set_result(msg.file_urls_response)
        elif kind == "delta":
            self._delta(msg.delta)

    def _delta(self, delta: Any) -> None:
        which = delta.WhichOneof("type")
        if which == "new_element":
            element = delta.new_element
            el_kind = element.WhichOneof("type")
            if el_kind is None:
                return
            sub = getattr(element, el_kind)
            self._widget(el_kind, sub)
            self.texts.extend(_texts(sub))
            if self.clicked_at is None:
                return
            self.after_click.append((el_kind, sub))
            if el_kind == "markdown":
                self._status_line(sub.body)
        elif which == "add_block" and delta.add_block.WhichOneof("type") == "expandable":
            box = delta.add_block.expandable
            if box.label:
                self.texts.append(box.label)
            if self.clicked_at is None or not box.state:  # only st.status boxes have a state
                return
            labels = self.result.status_labels
            if not labels or labels[-1] != box.label:
                labels.append(box.label)
            if (READY.search(box.label) or box.label == FAILED_LABEL) and not self.ready.is_set():
                self.ready_at = time.perf_counter()
                self.ready.set()

    def _status_line(self, body: str) -> None:
        """The place line (``app.predict.show_place``: ":material/groups: 2 ahead of you, about 6 s") and the
        stage lines of the status box."""
        r = self.result
        if body.startswith(PLACE_PREFIX) and not body.startswith(f"{PLACE_PREFIX}Waited"):
            text = body[len(PLACE_PREFIX):]
            if not r.place_texts or r.place_texts[-1] != text:
                r.place_texts.append(text)
        elif body.startswith(STAGE_DONE):
            r.stage_lines.append(body[len(STAGE_DONE):].strip())

    def _widget(self, kind: str, sub: Any) -> None:
        ident = getattr(sub, "id", "")
        for name, key in FORM_KEYS.items():
            if ident.endswith(f"-{key}"):
                self.widgets[name] = sub
        if kind == "button" and sub.is_form_submitter and sub.label == SUBMIT_LABEL:
            self.widgets["submit"] = sub

    async def _wait(self, event: asyncio.Event, what: str, timeout: float | None = None) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout or self.timeout)
        except TimeoutError:
            raise RuntimeError(f"no {what} within {timeout or self.timeout:.0f} s") from None
        if self.gone:
            reason = self.reader.exception() if self.reader is not None and self.reader.done() else None
            raise RuntimeError(f"the connection ended before the {what}" + (f": {reason!r}" if reason else ""))

    # -- the form

    async def open_form(self) -> None:
        """Connect, run the default page (Tweet prediction) and upload the poster: ready to click."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo

        start = time.perf_counter()
        await self.connect()
        back = BackMsg(rerun_script=ClientState(query_string="", page_script_hash="",
                                                context_info=ContextInfo(timezone="UTC", timezone_offset=0,
                                                                         locale="en-US", url=f"{self.base}/")))
        await self._send(back)
        await self._wait(self.run_finished, "first run of the page", 300)
        missing = [name for name in (*FORM_KEYS, "submit") if name not in self.widgets]
        if missing:
            raise RuntimeError(f"the page has no {', '.join(missing)} widget (got {sorted(self.widgets)})")
        self.upload_info = await self._upload()
        self.result.form_ready_s = time.perf_counter() - start

    async def _upload(self) -> Any:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.Common_pb2 import FileURLsRequest, UploadedFileInfo

        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.file_urls[request_id] = future
        await self._send(BackMsg(file_urls_request=FileURLsRequest(
            request_id=request_id, file_names=[self.poster.name], session_id=self.session_id)))
        response = await asyncio.wait_for(future, 120)
        if response.error_msg or not response.file_urls:
            raise RuntimeError(f"no upload URL: {response.error_msg or 'empty answer'}")
        urls = response.file_urls[0]
        data = self.poster.read_bytes()
        body, content_type = _multipart(self.poster.name, data, "image/png")
        headers = {**_auth_header(self.auth), "Content-Type": content_type}
        if self.xsrf:
            headers |= {"X-Xsrftoken": self.xsrf, "Cookie": f"{XSRF_COOKIE}={self.xsrf}"}
        target = urls.upload_url if urls.upload_url.startswith("http") else f"{self.base}{urls.upload_url}"
        status, _, answer = await asyncio.to_thread(_http, "PUT", target, headers, body)
        if status not in (200, 204):
            raise RuntimeError(f"upload PUT answered {status}: {answer[:200]!r}")
        return UploadedFileInfo(file_id=urls.file_id, name=self.poster.name, size=len(data), file_urls=urls)

    async def click(self) -> None:
        """Submit the form as the browser does: the form's values and the button's trigger in one rerun."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ClientState_pb2 import ClientState
        from streamlit.proto.Common_pb2 import FileUploaderState
        from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

        states = WidgetStates(widgets=[
            WidgetState(id=self.widgets["company"].id, string_value=self.result.company),
            WidgetState(id=self.widgets["username"].id, string_value=self.result.username),
            WidgetState(id=self.widgets["upload"].id,
                        file_uploader_state_value=FileUploaderState(uploaded_file_info=[self.upload_info])),
            WidgetState(id=self.widgets["submit"].id, trigger_value=True),
        ])
        self.run_finished.clear()
        self.clicked_at = time.perf_counter()
        await self._send(BackMsg(rerun_script=ClientState(query_string="", page_script_hash=self.page_hash,
                                                          widget_states=states)))

    async def until_ready(self) -> None:
        """Wait for "Tweet ready" and the end of that run; read the label, the tweet and the OCR text."""
        await self._wait(self.ready, '"Tweet ready"')
        await self._wait(self.run_finished, "end of the prediction's run", 120)
        r = self.result
        assert self.clicked_at is not None and self.ready_at is not None
        r.total_s = self.ready_at - self.clicked_at
        final = next((label for label in reversed(r.status_labels) if READY.search(label) or label == FAILED_LABEL), "")
        found = READY.search(final)
        if found is None:
            details = [text for kind, sub in self.after_click if kind == "alert" for text in _texts(sub)]
            raise RuntimeError(f"{FAILED_LABEL}: {' / '.join(details)[:300]}")
        r.pipeline_s = float(found.group(1))
        r.line_s = float(found.group(2)) if found.group(2) else 0.0
        r.tweet, r.ocr = _tweet_and_ocr(self.after_click)


def _tweet_and_ocr(elements: Sequence[tuple[str, Any]]) -> tuple[str, str]:
    """The first tweet card (the first ``st.code`` after the "Tweet"/"Tweet candidates" heading) and the OCR box
    (the first ``st.code`` after the "Text in the media (OCR)" heading), as the last run drew them."""
    tweet = ocr = ""
    after: str | None = None
    for kind, sub in elements:
        if kind == "heading":
            after = "tweet" if sub.body in ("Tweet", "Tweet candidates") else None
        elif kind == "markdown" and "Text in the media (OCR)" in sub.body:
            after = "ocr"
        elif kind == "code" and after == "tweet":
            tweet, after = sub.code_text, None
        elif kind == "code" and after == "ocr":
            ocr, after = sub.code_text, None
    return tweet, ocr


# --------------------------------------------------------------------------- many visitors


def render_posters(folder: Path, names: Sequence[str], text: str = POSTER_TEXT) -> list[Path]:
    """One 800×450 poster per company, naming it (``core.devtools.synthetic.render_text_image``)."""
    from core.devtools.synthetic import render_text_image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / f"poster_{i:02d}_{username(name)}.png"
        if not path.exists():
            render_text_image(text.format(company=name), size=(800, 450)).save(path)
        paths.append(path)
    return paths


async def visit_all(url: str, n: int, *, auth: tuple[str, str] | None = None,
                    poster: Path | Callable[[int, str], Path] | None = None, names: Sequence[str] | None = None,
                    timeout: float = DEFAULT_TIMEOUT_S, before_click: Callable[[], None] | None = None,
                    folder: Path | None = None) -> list[VisitorResult]:
    """The coroutine behind :func:`run_visitors` (for callers that already run an event loop)."""
    import tempfile

    names = list(names or companies(n))[:n]
    with tempfile.TemporaryDirectory() as tmp:
        if poster is None:
            posters = render_posters(folder or Path(tmp), names)
        elif callable(poster):
            posters = [poster(i, name) for i, name in enumerate(names)]
        else:
            posters = [Path(poster)] * n
        visitors = [Visitor(url, i, name, posters[i], auth, timeout) for i, name in enumerate(names)]
        try:
            opened = await asyncio.gather(*(v.open_form() for v in visitors), return_exceptions=True)
            for v, outcome in zip(visitors, opened, strict=True):
                if isinstance(outcome, BaseException):
                    v.result.error = f"form: {type(outcome).__name__}: {outcome}"
            ready = [v for v in visitors if v.result.error is None]
            if before_click is not None:
                before_click()
            await asyncio.gather(*(v.click() for v in ready))  # all at once, as in the Chromium bench
            done = await asyncio.gather(*(v.until_ready() for v in ready), return_exceptions=True)
            for v, outcome in zip(ready, done, strict=True):
                if isinstance(outcome, BaseException):
                    v.result.error = f"{type(outcome).__name__}: {outcome}"
        finally:
            await asyncio.gather(*(v.close() for v in visitors), return_exceptions=True)
    for v in visitors:
        _check_own(v, names)
    return [v.result for v in visitors]


def _check_own(visitor: Visitor, names: Sequence[str]) -> None:
    """Did this page name its own company, and any other visitor's? (Everything the page received counts: the
    form, the status box, the tweet, the OCR text of the poster, the prompt.)"""
    seen = "\n".join(visitor.texts)
    r = visitor.result
    r.own_company_seen = r.company in seen and r.company in "\n".join(
        text for kind, sub in visitor.after_click for text in _texts(sub))
    r.others_seen = [name for name in names if name != r.company and name in seen]


def run_visitors(url: str, n: int, auth: tuple[str, str] | None = None,
                 poster: Path | Callable[[int, str], Path] | None = None, *, names: Sequence[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, before_click: Callable[[], None] | None = None
                 ) -> list[VisitorResult]:
    """``n`` visitors of the app served at ``url`` (``m2t serve``'s local URL, or its ``--auth`` proxy with
    ``auth=(user, password)``), each in a session of its own, who fill the Tweet prediction form with a company of
    their own (:func:`companies`) and its username, upload ``poster`` (a path for all, ``poster(i, company)`` per
    visitor, or by default a poster per visitor naming its company), then click *Predict tweet* at the same moment
    (``before_click()`` runs just before). A visitor that fails has ``error`` set; the others still run."""
    return asyncio.run(visit_all(url, n, auth=auth, poster=poster, names=names, timeout=timeout,
                                 before_click=before_click))


def summary(results: Sequence[VisitorResult], one_warm_s: float | None = None) -> dict:
    """The numbers of one round of visitors at once: tweets per minute, waits, the slowest against taking turns
    (``n`` × ``one_warm_s``), and the checks (each got a tweet, its own, and a waiting page showed its place)."""
    import statistics

    n = len(results)
    good = [r for r in results if r.ok]
    totals = [r.total_s for r in good]
    slowest = max(totals) if totals else float("nan")
    out: dict = {
        "visitors": n,
        "tweets": len(good),
        "errors": [r.error for r in results if r.error],
        "median_s": statistics.median(totals) if totals else float("nan"),
        "max_s": slowest,
        "tweets_per_min": 60 * len(good) / slowest if totals else 0.0,
        "waits_s": [round(r.total_s, 2) for r in results],
        "line_s": [r.line_s for r in results],
        "pipeline_s": [r.pipeline_s for r in results],
        "every_one_own_tweet": len(good) == n and all(r.own_company_seen and not r.others_seen for r in results),
        "none_sees_another": all(not r.others_seen for r in results),
        "waiting_saw_place": all(r.place_texts for r in good if r.line_s > 0),
        "waited": sum(1 for r in good if r.line_s > 0),
        # The poster names its company; a tweet that keeps it kept its own poster's main fact (a model's choice,
        # so counted, not required).
        "tweets_naming_own_company": sum(1 for r in good if r.company.lower() in r.tweet.lower()),
        "place_texts": {r.company: r.place_texts for r in results},
        "tweets_by_company": {r.company: r.tweet for r in results},
    }
    if one_warm_s:
        out["turns_s"] = n * one_warm_s
        out["slowest_vs_turns"] = slowest / (n * one_warm_s)
    return out
