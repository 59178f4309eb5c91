"""Per-image statistics from Ultralytics' validator and the paired bootstrap over images."""

import numpy as np
import pytest

from semiyolo.integrations.ultralytics.image_stats import ImageStats, bootstrap_gain


def _one_class(hits: list[bool]) -> ImageStats:
    """One target per image and one detection, a true positive at every IoU threshold where ``hits``; confidence
    0.9 on image 0, 0.8 on image 1."""
    return ImageStats(
        tp=[np.full((1, 10), hit) for hit in hits],
        conf=[np.array([0.9 - 0.1 * i]) for i in range(len(hits))],
        pred_cls=[np.zeros(1) for _ in hits],
        target_cls=[np.zeros(1) for _ in hits],
    )


def test_the_bootstrap_resamples_images_and_keeps_the_runs_paired():
    arm, baseline = _one_class([True, True]), _one_class([True, False])  # the baseline misses image 1's object
    both, twice_0, twice_1 = np.array([0, 1]), np.array([0, 0]), np.array([1, 1])
    # all images: the arm's AP is the perfect one, the baseline's is about half (precision 1 up to recall 0.5)
    assert arm.map50_95(both) > 0.99 and baseline.map50_95(both) == pytest.approx(0.5, abs=0.01)
    gain, low, high = bootstrap_gain([(arm, baseline)], replicates=400, seed=0)
    assert gain == pytest.approx(arm.map50_95() - baseline.map50_95())
    # two images resampled: {0, 0} (both runs equal: gain 0) or {1, 1} (the arm's perfect AP against nothing) are
    # each drawn a quarter of the time, so the 95 % interval runs from the one to the other
    assert arm.map50_95(twice_0) == baseline.map50_95(twice_0) and baseline.map50_95(twice_1) == 0.0
    assert low == 0.0 and high == pytest.approx(arm.map50_95(twice_1))
    # a run against itself gains nothing on any resample
    assert bootstrap_gain([(arm, arm), (baseline, baseline)], replicates=50) == (0.0, 0.0, 0.0)


def test_runs_measured_on_different_images_are_refused():
    with pytest.raises(ValueError, match=r"different numbers of images: \[1, 2\]"):
        bootstrap_gain([(_one_class([True]), _one_class([True, False]))])


def test_the_kept_statistics_are_what_ultralytics_pools(tmp_path):
    from semiyolo.integrations.ultralytics.image_stats import PerImageValidator

    rng = np.random.default_rng(0)
    validator = PerImageValidator(save_dir=tmp_path, args={"plots": False})
    validator.metrics.names = {0: "a", 1: "b", 2: "c"}
    for image in range(6):  # Ultralytics' per-image statistics, as its update_metrics hands them over
        n, m = int(rng.integers(0, 8)), int(rng.integers(0, 4))
        validator.metrics.update_stats(
            {
                "tp": rng.random((n, 10)) < np.linspace(0.9, 0.2, 10),  # stricter IoU thresholds, fewer hits
                "conf": rng.random(n),
                "pred_cls": rng.integers(0, 3, n).astype(float),
                "target_cls": rng.integers(0, 3, m).astype(float),
                "target_img": np.unique(rng.integers(0, 3, m)),
                "im_name": f"{image}.png",
            }
        )
    pooled = validator.get_stats()  # Ultralytics' ap_per_class on every image, then the lists cleared
    kept = validator.metrics.per_image
    assert len(kept) == 6 and 0.1 < pooled["metrics/mAP50-95(B)"] < 0.9
    assert kept.map50_95() == pytest.approx(pooled["metrics/mAP50-95(B)"], abs=1e-12)
    kept.save(tmp_path / "stats.npz")
    again = ImageStats.load(tmp_path / "stats.npz")
    assert again.map50_95(np.array([5, 0, 0])) == kept.map50_95(np.array([5, 0, 0]))


def test_a_split_is_measured_with_its_per_image_statistics(tmp_path, tiny_run, tiny_data):
    from semiyolo.integrations.ultralytics import split_metrics

    path = tmp_path / "val_image_stats.npz"
    metrics = split_metrics(tiny_run / "weights" / "last.pt", tiny_data, "val", imgsz=64, batch=4, image_stats=path)
    stats = ImageStats.load(path)
    assert len(stats) == 2  # tiny_data's validation images (12 at val_fraction 0.2)
    assert stats.map50_95() == pytest.approx(metrics["metrics/mAP50-95(B)"], abs=1e-12)
    assert all(t.shape == (len(c), 10) for t, c in zip(stats.tp, stats.conf, strict=True))


def test_the_protocols_intervals_read_each_runs_test_statistics(tmp_path):
    import math

    from semiyolo.experiments.held_out import TEST_IMAGE_STATS, GainIntervals

    runs = {"seed0/online": [True, True], "seed0/base": [True, False], "seed1/online": [True, True]}
    runs["seed1/base"] = [False, False]
    for run, hits in runs.items():
        (tmp_path / run).mkdir(parents=True)
        _one_class(hits).save(tmp_path / run / TEST_IMAGE_STATS)
    pairs = [("seed0/online", "seed0/base"), ("seed1/online", "seed1/base")]
    found = GainIntervals(tmp_path, replicates=100, seed=3)(pairs)
    in_memory = [(_one_class(runs[a]), _one_class(runs[b])) for a, b in pairs]
    assert found == pytest.approx(bootstrap_gain(in_memory, replicates=100, seed=3))  # the same resamples
    assert all(math.isnan(v) for v in GainIntervals(tmp_path)([("seed0/online", "seed2/base")]))  # not measured
