"""The review server: a FastAPI app over one :class:`~.sources.ImageSource` and one :class:`~.store.ReviewStore`.

Routes (JSON unless said otherwise; an image ``name`` is its path relative to the image folder, URL-encoded):

- ``GET /``: the page; ``GET /static/...``: its script and style sheet.
- ``GET /api/info``: the source, the reviewed folder, the class names, how the list is ordered, the limits.
- ``GET /api/images``: every image with its worth (:mod:`.doubt`), box count and state, the most worth first; how
  many are still being labelled and the order's rule (``order``, as in ``/api/info``).
- ``GET /api/labels/{name}``: an image's boxes (reviewed, else proposed), the proposal, dropped candidates, its
  size; each box with its doubt and ``likely_error`` (:mod:`.doubt`; a dropped candidate's is ``missed`` or null).
- ``PUT /api/labels/{name}``: ``{"action": "accept" | "no_objects", "boxes": [{"cls", "cx", "cy", "w", "h"}],
  "version": "..."}`` writes the reviewed label file and logs it; ``version`` (optional) is the one the labels were
  read with: a save made from another version is a 409 that writes nothing.
- ``GET /api/pixels/{name}``: the image as JPEG, at most ``max_side`` pixels on its longer side.
- ``GET /api/stats``: how many of the images served are reviewed, and of those how many were last saved as
  proposed (``accepted``), after changes (``edited``), or as having no objects.

Errors are ``{"detail": "<one line>"}``: 400 for a malformed name or a ``Host`` the server does not answer to, 404
for a name not served, 409 for a stale save (with ``version``, ``sent`` and the ``boxes`` on disk), 413 for a body
over :data:`MAX_BODY_BYTES`, 422 for a body that fails validation (nothing is written), 500 when the reviewed
folder cannot be written (the old label file and the log are kept as they were).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import DataError
from .doubt import MISSED, ScoredBox, box_doubts, box_errors, missed_candidates
from .images import DEFAULT_MAX_SIDE, ScaledImages, image_size
from .sources import WORTH_DECIMALS, ImageSource, Proposal, UnsafeName, check_name, page_rank
from .store import ReviewStore, SaveConflict

STATIC = Path(__file__).parent / "static"
MAX_BOXES = 1000  # per image, in a request
MAX_BODY_BYTES = 1 << 20  # 1000 boxes take about 80 kB
LABEL_PRECISION = 1e-6  # a label file's six decimals
SHOWN_CHARS = 60  # of a refused value, in an error
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",  # no other site may embed the images
}


class BoxIn(BaseModel):
    """A box from the page: class id and YOLO box normalised to the image."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    cls: int = Field(ge=0, strict=True)
    cx: float = Field(ge=0, le=1)
    cy: float = Field(ge=0, le=1)
    w: float = Field(gt=0, le=1)
    h: float = Field(gt=0, le=1)


class LabelsIn(BaseModel):
    """A review: ``accept`` the boxes given (as proposed, or edited), or ``no_objects`` (no boxes)."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["accept", "no_objects"]
    boxes: list[BoxIn] = Field(default_factory=list, max_length=MAX_BOXES)
    version: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _no_objects_has_no_boxes(self) -> LabelsIn:
        if self.action == "no_objects" and self.boxes:
            raise ValueError(f"action 'no_objects' takes no boxes, got {len(self.boxes)}")
        return self


def box_json(box: ScoredBox, doubt: float | None = None, likely_error: str | None = None) -> dict[str, Any]:
    """A box for the page; absent facts are ``null``; ``likely_error`` one of :data:`~.doubt.LIKELY_ERRORS`."""
    out = {k: getattr(box, k) for k in ("cls", "score", "entropy", "spread", "dropped_by", "student_agrees")}
    geometry = {k: round(getattr(box, k), 6) for k in ("cx", "cy", "w", "h")}  # a label file's precision
    return {**out, **geometry, "doubt": None if doubt is None else round(doubt, 4), "likely_error": likely_error}


def boxes_json(boxes: list[ScoredBox]) -> list[dict[str, Any]]:
    """Kept boxes, each with its doubt and likely error (:mod:`.doubt`)."""
    return [box_json(*facts) for facts in zip(boxes, box_doubts(boxes), box_errors(boxes), strict=True)]


def dropped_json(kept: list[ScoredBox], dropped: list[ScoredBox]) -> list[dict[str, Any]]:
    """Dropped candidates, those no kept box overlaps marked ``missed`` (:func:`~.doubt.missed_candidates`)."""
    missed = missed_candidates(kept, dropped)
    return [box_json(b, likely_error=MISSED if m else None) for b, m in zip(dropped, missed, strict=True)]


def rows_of(boxes: list[ScoredBox]) -> list[list[float]]:
    return [[b.cls, b.cx, b.cy, b.w, b.h] for b in boxes]


def scored(rows: list[list[float]]) -> list[ScoredBox]:
    return [ScoredBox(int(r[0]), *map(float, r[1:])) for r in rows]


def clip_span(centre: float, size: float) -> tuple[float, float, bool]:
    """``(centre, size, clipped)``: a span clipped to [0, 1] when it reaches beyond by more than the label file's
    precision (a box written at six decimals and read back is left as it is)."""
    low, high = centre - size / 2, centre + size / 2
    if low >= -LABEL_PRECISION and high <= 1 + LABEL_PRECISION:
        return centre, size, False
    low, high = max(low, 0.0), min(high, 1.0)
    return (low + high) / 2, high - low, True


def fit_to_image(boxes: list[BoxIn]) -> tuple[list[list[float]], int]:
    """``(rows, boxes clipped)``: the label rows of ``boxes``, each clipped to the image (:func:`clip_span`).

    Raises:
        HTTPException: 422 naming a box whose width or height is 0 at the label file's six decimals.
    """
    rows, clipped = [], 0
    for i, box in enumerate(boxes):
        cx, w, clipped_x = clip_span(box.cx, box.w)
        cy, h, clipped_y = clip_span(box.cy, box.h)
        for key, value in (("w", w), ("h", h)):
            if float(f"{value:.6f}") == 0:
                raise HTTPException(
                    422,
                    f"boxes.{i}.{key}: {value:g} is 0 at the label file's six decimals; draw the box larger or "
                    "delete it",
                )
        rows.append([box.cls, cx, cy, w, h])
        clipped += clipped_x or clipped_y
    return rows, clipped


class ReviewService:
    """The handlers, bound to one source, one store and one image cache."""

    def __init__(self, source: ImageSource, store: ReviewStore, max_side: int = DEFAULT_MAX_SIDE) -> None:
        self.source, self.store, self.scaled = source, store, ScaledImages(max_side)

    def resolve(self, name: str) -> Path:
        """The file of a served image; 400 for a malformed name, 404 for one that is not served."""
        try:
            check_name(name)
        except UnsafeName as err:
            raise HTTPException(400, str(err)) from None
        if name not in self.source.images:
            raise HTTPException(404, f"no image {name!r} is served from {self.source.root}")
        return self.source.images[name]

    def reviewed_boxes(self, name: str) -> list[ScoredBox] | None:
        """The reviewed boxes of ``name``, ``None`` when not reviewed; a malformed file is a 500 naming it."""
        return self.reviewed_versioned(name)[0]

    def reviewed_versioned(self, name: str) -> tuple[list[ScoredBox] | None, str]:
        """:meth:`reviewed_boxes` and the label file's version, read together."""
        try:
            rows, version = self.store.read_versioned(name, len(self.source.names))
        except DataError as err:
            raise HTTPException(500, f"reviewed label file: {err}") from None
        return (None if rows is None else scored(rows.tolist())), version

    def info(self) -> dict[str, Any]:
        return {
            "kind": self.source.kind,
            "source": str(self.source.root),
            "reviewed": str(self.store.folder),
            "names": [self.source.names[c] for c in range(len(self.source.names))],
            "images": len(self.source.images),
            "refused": self.source.refused,
            "order": self.source.order_note(),
            "max_boxes": MAX_BOXES,
        }

    def list_images(self) -> dict[str, Any]:
        """Unreviewed images by worth (largest first, then name), then those still being labelled, then the
        reviewed ones by name; how many are still being labelled, and the order's rule (it changes once a run's
        calibration ends)."""
        items = []
        for name in self.source.images:
            reviewed = self.store.is_reviewed(name)
            proposal = None if reviewed else self.source.ready(name)
            items.append(
                {
                    "name": name,
                    "reviewed": reviewed,
                    "pending": not reviewed and proposal is None,
                    "worth": None if proposal is None else round(proposal.worth or 0.0, WORTH_DECIMALS),
                    "boxes": None if proposal is None else len(proposal.boxes),
                    "error": None if proposal is None else proposal.error,
                }
            )
        items.sort(key=lambda i: page_rank(i["reviewed"], i["pending"], i["worth"], i["name"]))
        return {"images": items, "pending": self.source.pending(), "order": self.source.order_note()}

    def stats(self) -> dict[str, int]:
        """Counts over the images served: ``reviewed`` (a label file written) and, by the last action the log gives
        each reviewed image, ``accepted`` (as proposed), ``edited``, ``no_objects``, ``unlogged`` (no log line: a
        label file written by another program)."""
        last = self.store.last_actions()
        reviewed = [name for name in self.source.images if self.store.is_reviewed(name)]
        actions = Counter(last.get(name, "unlogged") for name in reviewed)
        return {
            "images": len(self.source.images),
            "reviewed": len(reviewed),
            "accepted": actions["accept"],
            "edited": actions["edit"],
            "no_objects": actions["no_objects"],
            "unlogged": actions["unlogged"],
        }

    def read_labels(self, name: str) -> dict[str, Any]:
        path = self.resolve(name)
        proposal = self.source.proposal(name) or Proposal(note="still being labelled")
        reviewed, version = self.reviewed_versioned(name)
        try:
            width, height = image_size(path)
        except OSError as err:
            width = height = None
            error = f"cannot decode image {name!r}: {err}"
            proposal = Proposal(proposal.boxes, proposal.dropped, error, proposal.note, proposal.worth)
        return {
            "name": name,
            "reviewed": reviewed is not None,
            "boxes": boxes_json(proposal.boxes if reviewed is None else reviewed),
            "proposal": boxes_json(proposal.boxes),
            "dropped": dropped_json(proposal.boxes, proposal.dropped),
            "worth": proposal.worth,
            "error": proposal.error,
            "note": proposal.note,
            "width": width,
            "height": height,
            "version": version,
        }

    def save_labels(self, name: str, body: LabelsIn) -> dict[str, Any]:
        path = self.resolve(name)
        nc = len(self.source.names)
        for i, box in enumerate(body.boxes):
            if box.cls >= nc:
                raise HTTPException(422, f"boxes.{i}.cls: class {box.cls} out of range: {nc} classes (0 to {nc - 1})")
        rows, clipped = fit_to_image(body.boxes)
        proposed = rows_of((self.source.proposal(name) or Proposal()).boxes)
        try:
            entry = self.store.save(name, path, rows, body.action, proposed, body.version, nc)
        except DataError as err:
            raise HTTPException(500, f"reviewed label file: {err}") from None
        except OSError as err:
            raise HTTPException(
                500,
                f"could not write {self.store.label_file(name)} and its line in {self.store.log_path}: "
                f"{err.strerror or err}; both are as they were",
            ) from None
        label = str(self.store.label_file(name))
        return {
            "name": name,
            "action": entry["action"],
            "boxes": len(rows),
            "clipped": clipped,
            "label": label,
            "version": entry["version"],
        }

    def pixels(self, name: str) -> Response:
        path = self.resolve(name)
        try:
            scaled = self.scaled.get(path)
        except OSError as err:
            raise HTTPException(422, f"cannot decode image {name!r}: {err}") from None
        return Response(scaled.jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def shortened(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text``, cut to ``limit`` characters (saying how long it was): a refused value is not sent back whole."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _problem(error: dict[str, Any]) -> str:
    """One validation problem as ``where: what (got value)``; a body that is not JSON as where it stops being."""
    if error["type"] == "json_invalid":
        position = error["loc"][-1]
        return f"body: not valid JSON: {error.get('ctx', {}).get('error', 'cannot parse')} at character {position}"
    where = ".".join(shortened(str(part)) for part in error["loc"] if part != "body") or "body"
    value = error.get("input")
    got = f" (got {shortened(repr(value))})" if isinstance(value, (str, int, float, bool)) or value is None else ""
    return f"{where}: {error['msg']}{got}"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """One line per problem instead of FastAPI's nested list."""
    return JSONResponse({"detail": "; ".join(_problem(error) for error in exc.errors())}, status_code=422)


async def _conflict(request: Request, exc: SaveConflict) -> JSONResponse:
    """409: the version on disk, the one sent, and the boxes on disk (``reviewed`` false: the file is gone)."""
    rows = None if exc.rows is None else exc.rows.tolist()
    body = {
        "detail": str(exc),
        "version": exc.on_disk,
        "sent": exc.sent,
        "reviewed": rows is not None,
        "boxes": boxes_json(scored(rows or [])),
    }
    return JSONResponse(body, status_code=409)


class BodyLimit:
    """Refuses (413) a request whose body is over ``limit`` bytes: by its ``Content-Length`` before reading it, or
    as it arrives; a body within the limit is passed on whole."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            await self.refuse(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self.refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return message

        await self.app(scope, replay, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body over {self.limit} bytes: refused unread (a review of {MAX_BOXES} boxes is ~80 kB)"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def host_of(header: str) -> str:
    """The host of a ``Host`` header: lower case, without its port, an IPv6 address without its brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_guard(allowed: list[str]):
    """Middleware answering 400 to a request whose ``Host`` is neither an IP address nor one of ``allowed``: a page
    of another site whose name was rebound to this machine (DNS rebinding) sends its own name, never an address."""
    names = {host_of(name) for name in allowed}

    async def check_host(request: Request, call_next):
        host = host_of(request.headers.get("host", ""))
        if host in names or is_address(host):
            return await call_next(request)
        detail = (
            f"Host {shortened(host)!r} is not a name this server answers to ({', '.join(sorted(names))}): refused, as "
            f"a page of another site rebinding its name to this machine would be; open it by one of those names or "
            f"an address, or start it with --allow-host {shortened(host)}"
        )
        return JSONResponse({"detail": detail}, status_code=400)

    return check_host


async def _security_headers(request: Request, call_next):
    response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    return response


def create_app(
    source: ImageSource,
    store: ReviewStore,
    max_side: int = DEFAULT_MAX_SIDE,
    allowed_hosts: list[str] | None = None,
) -> FastAPI:
    """The app. ``allowed_hosts`` (the names a ``Host`` header may give besides IP addresses; ``None``: any, see
    :func:`~.server.allowed_hosts`) guards the server from pages that rebind their domain name to this machine."""
    service = ReviewService(source, store, max_side)
    app = FastAPI(title="semiyolo review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(SaveConflict, _conflict)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if allowed_hosts is not None:
        app.middleware("http")(host_guard(allowed_hosts))
    app.middleware("http")(_security_headers)  # the outermost: every answer carries the headers
    app.add_api_route("/", lambda: FileResponse(STATIC / "index.html"), methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/api/info", service.info, methods=["GET"])
    app.add_api_route("/api/images", service.list_images, methods=["GET"])
    app.add_api_route("/api/labels/{name:path}", service.read_labels, methods=["GET"])
    app.add_api_route("/api/labels/{name:path}", service.save_labels, methods=["PUT"])
    app.add_api_route("/api/pixels/{name:path}", service.pixels, methods=["GET"])
    app.add_api_route("/api/stats", service.stats, methods=["GET"])
    return app
