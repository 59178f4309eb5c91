"""``semiyolo demo``: the product's main job from nothing, small enough for a laptop CPU.

A synthetic shapes dataset is generated and split into a few labeled images and many unlabeled ones (their labels
kept aside for auditing). Then the fair protocol of ``semiyolo ablate`` runs with one seed: YOLOv8n trained on the
labeled images to the end of its schedule, then continued for the same number of optimizer steps twice, on the
labeled images alone (``supervised_continued``) and semi-supervised with a mean teacher and the background penalty
(``online_bg1``, the package's default semi settings). The table compares them on test images that chose nothing
(generated from the same seed beside train and val), with the gain's 95 % interval over those images, and says
whether the converged run was flat; the online run folder holds a picture of the teacher's pseudo-labels for each
epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import SynthSpec, split_dataset, write_dataset
from .ablate import Protocol, run_ablation
from .arms import CONTINUED, CONVERGED, FULLY_LABELED, ONLINE

LABELED_REPEAT = 5  # each labeled image appears this many times an epoch, so that an epoch is a few dozen batches


def demo_overrides(imgsz: int, epochs: int, batch: int, seed: int) -> list[str]:
    """Training settings of the demo's converged run; one optimizer step per batch (``nbs`` = ``batch``)."""
    return [
        f"train.epochs={epochs}",
        f"train.imgsz={imgsz}",
        f"train.batch={batch}",
        f"train.nbs={batch}",
        "train.workers=0",
        f"train.seed={seed}",
        "train.deterministic=true",
        f"train.close_mosaic={max(1, epochs // 3)}",
        "train.plots=true",
        f"semi.labeled_repeat={LABELED_REPEAT}",
        "semi.lambda_bg_warmup=1",
    ]


def run_demo(
    out: str | Path = "runs/demo",
    images: int = 400,
    imgsz: int = 128,
    epochs: int = 15,
    steps: int = 60,
    batch: int = 16,
    fraction: float = 0.2,
    seed: int = 0,
    ceiling: bool = False,
    test_images: int = 200,
) -> list[dict[str, Any]]:
    """Generate and split the data, run the protocol (``ceiling``: with the fully labeled run too) under
    ``out/ablation`` and print where its table and pseudo-label pictures are; returns the runs' rows."""
    out = Path(out).resolve()
    data_yaml = write_dataset(out / "data", SynthSpec(images=images, imgsz=imgsz, seed=seed, test_images=test_images))
    config = split_dataset(data_yaml, fraction, seed, out / "split")
    protocol = Protocol(
        steps=steps,
        seeds=1,
        lambdas=(1.0,),
        unpenalized=False,
        offline=False,
        only=(CONTINUED, ONLINE, *((FULLY_LABELED,) if ceiling else ())),
    )
    rows = run_ablation(config, out / "ablation", protocol, demo_overrides(imgsz, epochs, batch, seed))
    pictures = sorted((out / "ablation").glob("seed*/online_*/pseudo_labels_epoch*.jpg"))
    print(
        f"\nsemiyolo demo: {images} synthetic images at {imgsz} px, {fraction:.0%} of the training images labeled; "
        f"YOLOv8n from scratch, continued for {steps} optimizer steps with and without the unlabeled images."
    )
    report = out / "ablation" / "ablation.md"
    print(test_section(report.read_text()))
    print(f"Table: {report}")
    print("Pseudo-label pictures:" + "".join(f"\n  {p}" for p in pictures))
    return rows


def test_section(report: str) -> str:
    """The report's arms on the test split and its convergence line: what the demo prints at its end."""
    lines = report.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("## Arms on the test split")), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    converged = [line for line in lines if line.startswith((f"{CONVERGED}:", "WARNING: supervised_converged"))]
    return "\n".join([*lines[start:end], *converged])
