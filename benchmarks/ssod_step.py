"""One online semi-supervised step against one supervised step pushing as many images through the student.

Supervised: forward + backward + SGD step of YOLOv8n on ``2B`` labeled images. Online: the trainer's own units,
``MeanTeacher.extend`` (the teacher's no-grad forward on ``B`` unlabeled weak views, NMS + the filter chain
(score, DFL entropy, NMS spread, cap), the strong view, the batch extended) then the student's step on ``B``
labeled + ``B`` pseudo-labeled images, then ``MeanTeacher.update`` (the EMA). Interleaved rounds, medians. ``extend``
is broken down by its own stages as it runs them (``MeanTeacher.stage_clock``: the teacher's forward, candidates and
NMS, filters and tiers, the strong view, the targets and the batch's assembly, mosaic and mixup), so the parts add up
to the step; the sum of the parts' medians is printed beside the step's. The teacher is untrained, so its scores
say nothing: its 100 best anchors per image go to NMS (what a trained teacher's candidates above 0.1 amount to on
such images) and the cap keeps 4 pseudo-labels per image, the labeled images' density, so that both steps assign and
regress as many boxes.

On a GPU (``--device cuda``) the steps are timed with the device synchronised, and ``--amp`` runs the student
under autocast (float16, with a gradient scaler) and the teacher's forward under autocast too, as the trainer
does with ``train.amp``. The teacher runs as the trainer runs it, through a copy with its BatchNorms folded
(``--no-fold``: the teacher itself, as before); ``--mixup`` blends the pseudo-labeled images (``semi.pseudo_mixup``);
``--teacher-flip`` averages the teacher's outputs with those on the mirrored images (``semi.teacher_flip``);
``--teacher-scale S`` has the teacher label the images resized by ``S`` (``semi.teacher_scale``);
``--teacher-agreement`` sets the tiers by the flip ensemble's views (``semi.teacher_agreement``; with
``--teacher-flip --targets tiered``), and each round also times ``extend`` without it, paired.
``--teacher-fusion boxes`` fuses the views as detections, with ``--teacher-scales`` more scales
(``semi.teacher_fusion``, ``semi.teacher_scales``); ``--relabel-every N`` keeps the teacher's detections of the
round's B images between rounds (``semi.relabel_every``: each round is a visit of the same B keys).
Each round also times the teacher's forward unfolded, beside the folded one, for a paired comparison (not part of
the step).

    python benchmarks/ssod_step.py [--batch 8] [--imgsz 256] [--rounds 5] [--targets hard|tiered]
                                   [--device cpu|cuda] [--amp] [--no-fold] [--mixup P]
                                   [--teacher-flip] [--teacher-scale S] [--teacher-agreement]
                                   [--teacher-fusion anchor|boxes] [--teacher-scales S ...] [--relabel-every N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

from semiyolo.integrations.ultralytics import BackgroundPenaltyDetectionLoss, SemiSupervisedLoss
from semiyolo.pseudo import build_filters
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler

FILTERS = [
    {"name": "score", "params": {"threshold": 0.0}},
    {"name": "dfl_entropy", "params": {"threshold": 1.0}},
    {"name": "nms_unc", "params": {"threshold": 10.0}},
    {"name": "cap", "params": {"max_per_image": 4}},
]


def labeled_batch(n: int, imgsz: int, gen: torch.Generator, device: torch.device) -> dict:
    per = 4
    xy = torch.rand(n * per, 2, generator=gen) * 0.6 + 0.2
    wh = torch.rand(n * per, 2, generator=gen) * 0.2 + 0.05
    batch = {
        "img": torch.rand(n, 3, imgsz, imgsz, generator=gen),
        "batch_idx": torch.arange(n).repeat_interleave(per).float(),
        "cls": torch.randint(0, 3, (n * per, 1), generator=gen).float(),
        "bboxes": torch.cat((xy, wh), 1),
    }
    return {k: v.to(device) for k, v in batch.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="B: labeled (and unlabeled) images per online step")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--targets", choices=("hard", "tiered"), default="hard", help="semi.pseudo_targets")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--amp", action="store_true", help="float16 autocast for the student and the teacher (GPU)")
    parser.add_argument("--no-fold", action="store_true", help="the teacher runs itself, BatchNorms not folded")
    parser.add_argument("--mixup", type=float, default=0.0, help="semi.pseudo_mixup (with pseudo partners)")
    parser.add_argument("--teacher-flip", action="store_true", help="semi.teacher_flip: the flip ensemble")
    parser.add_argument("--teacher-scale", type=float, default=1.0, help="semi.teacher_scale (default 1)")
    parser.add_argument("--teacher-fusion", choices=("anchor", "boxes"), default="anchor", help="semi.teacher_fusion")
    parser.add_argument("--teacher-scales", type=float, nargs="*", default=[], help="semi.teacher_scales (boxes)")
    parser.add_argument(
        "--relabel-every", type=int, default=1, help="semi.relabel_every: the same B image keys every round"
    )
    parser.add_argument(
        "--teacher-agreement",
        action="store_true",
        help="semi.teacher_agreement (with --teacher-flip --targets tiered); extend without it is timed beside",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    student = DetectionModel("yolov8n.yaml", nc=3, verbose=False).to(device).train()
    student.args = get_cfg()
    criterion = SemiSupervisedLoss(BackgroundPenaltyDetectionLoss(student), lambda_unsup=1.0)
    optimizer = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp)
    labeler = TeacherPseudoLabeler(
        build_filters(FILTERS, num_classes=3, has_dfl=True),
        min_score=0.0,
        max_candidates=100,
        amp_dtype=torch.float16 if args.amp else None,
        fold=not args.no_fold,
        mirror=args.teacher_flip,
        scale=args.teacher_scale,
        fusion=args.teacher_fusion,
        more_scales=tuple(args.teacher_scales),
    )
    unfolded = TeacherPseudoLabeler(
        labeler.filters,
        min_score=0.0,
        amp_dtype=labeler.amp_dtype,
        fold=False,
        mirror=args.teacher_flip,
        scale=args.teacher_scale,
    )
    teacher = MeanTeacher(
        student,
        labeler,
        StrongAugment(),
        decay=0.999,
        tau=100,
        pseudo_targets=args.targets,
        mixup=args.mixup,
        agreement=args.teacher_agreement,
        relabel_every=args.relabel_every,
    )
    keys = [f"image{i}" for i in range(args.batch)] if args.relabel_every > 1 else None

    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    def student_step(batch: dict) -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=args.amp):
            loss, _ = criterion(student(batch["img"]), batch)
        optimizer.zero_grad()
        scaler.scale(loss.sum()).backward()
        scaler.step(optimizer)
        scaler.update()

    def supervised() -> dict[str, float]:
        batch = labeled_batch(2 * args.batch, args.imgsz, gen, device)
        start = now()
        student_step(batch)
        return {"total": now() - start}

    stages: list[tuple[str, float]] = []
    teacher.stage_clock = lambda stage: stages.append((stage, now()))

    def online() -> dict[str, float]:
        batch = labeled_batch(args.batch, args.imgsz, gen, device)
        weak = torch.rand(args.batch, 3, args.imgsz, args.imgsz, generator=gen).to(device)
        stages.clear()
        t = [now()]
        batch, _ = teacher.extend(batch, weak, keys=keys)
        t.append(now())
        student_step(batch)
        t.append(now())
        teacher.update(student)
        t.append(now())
        # extend's own stages, as it ran them (MeanTeacher.stage_clock): they sum to extend
        parts, last = {}, t[0]
        for stage, at in stages:
            parts[f"  {stage}"], last = at - last, at
        parts["  (rest of extend)"] = t[1] - last
        unfolded.forward(teacher.model, weak)  # the same forward by the teacher itself, paired in each round
        apart = {"(teacher forward unfolded)": now() - t[3]}
        if args.teacher_agreement:  # the same extend without the views' agreement, paired in each round
            start = now()
            teacher.agreement = False
            teacher.extend(labeled_batch(args.batch, args.imgsz, gen, device), weak)
            teacher.agreement = True
            apart["(extend without agreement)"] = now() - start
        return {
            "total": t[3] - t[0],
            "pseudo-labelling (extend)": t[1] - t[0],
            **parts,
            "student step": t[2] - t[1],
            "teacher EMA": t[3] - t[2],
            **apart,
        }

    supervised(), online()  # warm-up
    sup, onl = [], []
    for _ in range(args.rounds):
        sup.append(supervised())
        onl.append(online())
    med = {k: statistics.median(r.get(k, 0.0) for r in onl) for k in onl[0]}
    base = statistics.median(r["total"] for r in sup)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(
        f"torch {torch.__version__}, {where}{', AMP' if args.amp else ''}; YOLOv8n, {args.imgsz} px, "
        f"supervised {2 * args.batch} labeled vs online {args.batch} labeled + {args.batch} unlabeled, "
        f"{args.rounds} rounds, {args.targets} pseudo-targets, teacher {'unfolded' if args.no_fold else 'folded'}"
        f"{f', pseudo-mixup {args.mixup}' if args.mixup else ''}"
        f"{', teacher flip ensemble' if args.teacher_flip else ''}"
        f"{f', teacher scale {args.teacher_scale:g}' if args.teacher_scale != 1 else ''}"
        f"{', teacher agreement' if args.teacher_agreement else ''}"
        f"{f', views fused as boxes, more scales {args.teacher_scales}' if args.teacher_fusion == 'boxes' else ''}"
        f"{f', relabel every {args.relabel_every} visits' if args.relabel_every > 1 else ''}"
    )
    print(f"{'supervised step':<26}{base * 1e3:>10.0f} ms")
    print(f"{'online step':<26}{med['total'] * 1e3:>10.0f} ms   ratio {med['total'] / base:.3f}")
    for k, v in med.items():
        if k != "total":
            print(f"  {k:<30}{v * 1e3:>10.1f} ms   {100 * v / med['total']:5.1f} % of the online step")
    # the parts: extend's stages, the student's step and the EMA (medians each, so their sum is near, not equal)
    parts = sum(v for k, v in med.items() if k.startswith("  ") or k in ("student step", "teacher EMA"))
    print(f"{'sum of the parts':<26}{parts * 1e3:>10.0f} ms   {100 * parts / med['total']:5.1f} % of the online step")
    if args.teacher_agreement:  # paired in each round: a loaded machine moves both alike
        extend = [
            (o["pseudo-labelling (extend)"], o["(extend without agreement)"], s["total"])
            for o, s in zip(onl, sup, strict=True)
        ]
        ratio = statistics.median(with_ / without for with_, without, _ in extend)
        extra = statistics.median((with_ - without) / step for with_, without, step in extend)
        print(f"agreement, paired per round: extend x {ratio:.3f}, {extra:+.3f} supervised steps")


if __name__ == "__main__":
    main()
