"""The review server: a FastAPI app over one :class:`~.sources.ImageSource` and one :class:`~.store.ReviewStore`.

Routes (JSON unless said otherwise; an image ``name`` is its path relative to the image folder, URL-encoded):

- ``GET /``: the page; ``GET /static/...``: its script and style sheet.
- ``GET /api/info``: the source, the reviewed folder, the class names, the limits.
- ``GET /api/images``: every image with its worth (:mod:`.doubt`), box count and state, the most worth first.
- ``GET /api/labels/{name}``: an image's boxes (reviewed, else proposed), the proposal, dropped candidates, its
  size.
- ``PUT /api/labels/{name}``: ``{"action": "accept" | "no_objects", "boxes": [{"cls", "cx", "cy", "w", "h"}]}``
  writes the reviewed label file and logs it.
- ``GET /api/pixels/{name}``: the image as JPEG, at most ``max_side`` pixels on its longer side.

Errors are ``{"detail": "<one line>"}``: 400 for a malformed name, 404 for a name not served, 422 for a body that
fails validation (nothing is written), 500 when the reviewed folder cannot be written (the old file is kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..errors import DataError
from .doubt import ScoredBox, box_doubts
from .images import DEFAULT_MAX_SIDE, ScaledImages, image_size
from .sources import ImageSource, Proposal, UnsafeName, check_name
from .store import ReviewStore

STATIC = Path(__file__).parent / "static"
MAX_BOXES = 1000  # per image, in a request
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
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

    @model_validator(mode="after")
    def _no_objects_has_no_boxes(self) -> LabelsIn:
        if self.action == "no_objects" and self.boxes:
            raise ValueError(f"action 'no_objects' takes no boxes, got {len(self.boxes)}")
        return self


def box_json(box: ScoredBox, doubt: float | None = None) -> dict[str, Any]:
    """A box for the page; absent facts are ``null``."""
    out = {k: getattr(box, k) for k in ("cls", "score", "entropy", "spread", "dropped_by", "student_agrees")}
    geometry = {k: round(getattr(box, k), 6) for k in ("cx", "cy", "w", "h")}  # a label file's precision
    return {**out, **geometry, "doubt": None if doubt is None else round(doubt, 4)}


def boxes_json(boxes: list[ScoredBox]) -> list[dict[str, Any]]:
    return [box_json(b, d) for b, d in zip(boxes, box_doubts(boxes), strict=True)]


def rows_of(boxes: list[ScoredBox]) -> list[list[float]]:
    return [[b.cls, b.cx, b.cy, b.w, b.h] for b in boxes]


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
        try:
            rows = self.store.read(name, len(self.source.names))
        except DataError as err:
            raise HTTPException(500, f"reviewed label file: {err}") from None
        return None if rows is None else [ScoredBox(int(r[0]), *map(float, r[1:])) for r in rows.tolist()]

    def info(self) -> dict[str, Any]:
        return {
            "kind": self.source.kind,
            "source": str(self.source.root),
            "reviewed": str(self.store.folder),
            "names": [self.source.names[c] for c in range(len(self.source.names))],
            "images": len(self.source.images),
            "refused": self.source.refused,
            "max_boxes": MAX_BOXES,
        }

    def list_images(self) -> dict[str, Any]:
        """Unreviewed images by worth (largest first, then name), then those still being labelled, then the
        reviewed ones by name."""
        items = []
        for name in self.source.images:
            reviewed = self.store.is_reviewed(name)
            proposal = None if reviewed else self.source.ready(name)
            items.append(
                {
                    "name": name,
                    "reviewed": reviewed,
                    "pending": not reviewed and proposal is None,
                    "worth": None if proposal is None else round(proposal.worth or 0.0, 4),
                    "boxes": None if proposal is None else len(proposal.boxes),
                    "error": None if proposal is None else proposal.error,
                }
            )
        items.sort(key=lambda i: (i["reviewed"], i["pending"], -(i["worth"] or 0.0), i["name"]))
        return {"images": items, "pending": self.source.pending()}

    def read_labels(self, name: str) -> dict[str, Any]:
        path = self.resolve(name)
        proposal = self.source.proposal(name) or Proposal(note="still being labelled")
        reviewed = self.reviewed_boxes(name)
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
            "dropped": [box_json(b) for b in proposal.dropped],
            "worth": proposal.worth,
            "error": proposal.error,
            "note": proposal.note,
            "width": width,
            "height": height,
        }

    def save_labels(self, name: str, body: LabelsIn) -> dict[str, Any]:
        path = self.resolve(name)
        nc = len(self.source.names)
        for i, box in enumerate(body.boxes):
            if box.cls >= nc:
                raise HTTPException(422, f"boxes.{i}.cls: class {box.cls} out of range: {nc} classes (0 to {nc - 1})")
        reviewed = self.reviewed_boxes(name)
        before = rows_of(reviewed if reviewed is not None else (self.source.proposal(name) or Proposal()).boxes)
        rows = [[b.cls, b.cx, b.cy, b.w, b.h] for b in body.boxes]
        action = body.action
        if action == "accept" and _rounded(rows) != _rounded(before):
            action = "edit"
        try:
            entry = self.store.save(name, path, rows, action, before)
        except OSError as err:
            raise HTTPException(500, f"could not write {self.store.label_file(name)}: {err}") from None
        return {"name": name, "action": entry["action"], "boxes": len(rows), "label": str(self.store.label_file(name))}

    def pixels(self, name: str) -> Response:
        path = self.resolve(name)
        try:
            scaled = self.scaled.get(path)
        except OSError as err:
            raise HTTPException(422, f"cannot decode image {name!r}: {err}") from None
        return Response(scaled.jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _rounded(rows: list[list[float]]) -> list[list[float]]:
    return [[int(r[0]), *(round(float(v), 6) for v in r[1:])] for r in rows]


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """One line per problem, ``where: what (got value)``, instead of FastAPI's nested list."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if part != "body") or "body"
        value = error.get("input")
        got = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) or value is None else ""
        problems.append(f"{where}: {error['msg']}{got}")
    return JSONResponse({"detail": "; ".join(problems)}, status_code=422)


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
    """The app. ``allowed_hosts`` (the ``Host`` headers accepted; ``None``: any) guards a loopback server from
    pages that rebind a domain name to 127.0.0.1."""
    service = ReviewService(source, store, max_side)
    app = FastAPI(title="semiyolo review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.middleware("http")(_security_headers)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    app.add_api_route("/", lambda: FileResponse(STATIC / "index.html"), methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/api/info", service.info, methods=["GET"])
    app.add_api_route("/api/images", service.list_images, methods=["GET"])
    app.add_api_route("/api/labels/{name:path}", service.read_labels, methods=["GET"])
    app.add_api_route("/api/labels/{name:path}", service.save_labels, methods=["PUT"])
    app.add_api_route("/api/pixels/{name:path}", service.pixels, methods=["GET"])
    return app
