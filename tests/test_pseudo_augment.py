import pytest
import torch
from torchvision.ops import box_iou

from semiyolo.pseudo.augment import StrongAugment


def _mask_box(image: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.nonzero(image[0] > 0.5, as_tuple=True)
    return torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)


@pytest.mark.parametrize("seed", range(6))
def test_boxes_follow_the_pixels(seed):
    images = torch.zeros(1, 3, 64, 96)
    images[:, :, 20:40, 30:50] = 1.0  # one bright box: x 30..50, y 20..40
    box = torch.tensor([[30.0, 20.0, 50.0, 40.0]])
    aug = StrongAugment(brightness=0, contrast=0, saturation=0, noise=0, translate=0.1)
    out, boxes, kept = aug(images, [box], torch.Generator().manual_seed(seed))
    assert out.shape == images.shape
    assert kept[0].tolist() == [0]  # a central box stays inside under any scale in (0.6, 1.4) and shift <= 10 %
    assert box_iou(boxes[0], _mask_box(out[0])).item() > 0.85


def test_flip_only_mirrors_x():
    images = torch.zeros(1, 3, 32, 32)
    aug = StrongAugment(flip=1.0, scale=(1.0, 1.0), translate=0.0, brightness=0, contrast=0, saturation=0, noise=0)
    images[:, :, 4:10, 2:8] = 1.0
    out, boxes, _ = aug(images, [torch.tensor([[2.0, 4.0, 8.0, 10.0]])], torch.Generator().manual_seed(0))
    # x -> 32 - x: [2, 8] becomes [24, 30]
    torch.testing.assert_close(boxes[0], torch.tensor([[24.0, 4.0, 30.0, 10.0]]))
    torch.testing.assert_close(out, images.flip(-1))


def test_boxes_pushed_out_of_the_image_are_dropped_and_empty_lists_pass():
    aug = StrongAugment(flip=0.0, scale=(1.0, 1.0), translate=0.0)
    images = torch.rand(2, 3, 32, 32)
    out, boxes, kept = aug(images, [torch.zeros(0, 4), torch.tensor([[1.0, 1.0, 1.5, 1.5]])])
    assert boxes[0].shape == (0, 4) and kept[1].numel() == 0  # a 0.5 px box is too small to keep
    assert out.min() >= 0 and out.max() <= 1


def test_what_the_view_brings_in_from_outside_is_grey_114():
    aug = StrongAugment(flip=0.0, scale=(0.5, 0.5), translate=0.0, brightness=0, contrast=0, saturation=0)
    out, _, _ = aug(torch.zeros(1, 3, 32, 32), [torch.zeros(0, 4)])
    # halved about the centre: the image fills the middle 16 x 16, the rest is Ultralytics' padding grey
    assert torch.allclose(out[0, :, 0, 0], torch.full((3,), 114 / 255))
    assert torch.allclose(out[0, :, 12:20, 12:20], torch.zeros(3, 8, 8), atol=1e-6)


def test_cutout_and_grayscale_change_pixels_not_boxes():
    photometric = {"flip": 0.0, "scale": (1.0, 1.0), "translate": 0.0, "brightness": 0, "contrast": 0}
    aug = StrongAugment(**photometric, saturation=0, cutout=1, cutout_size=0.5)
    images = torch.ones(4, 3, 20, 20)
    boxes = [torch.tensor([[2.0, 2.0, 10.0, 10.0]])] * 4
    out, moved, kept = aug(images, boxes, torch.Generator().manual_seed(0))
    holes = (out[:, 0] == 114 / 255).sum((1, 2))
    # one rectangle per image, each side at most half of 20 px: between 1 and 10 x 10 = 100 grey pixels
    assert ((holes >= 1) & (holes <= 100)).all() and ((out == 1) | (out == 114 / 255)).all()
    assert (
        all(torch.allclose(m, b) for m, b in zip(moved, boxes, strict=True)) and [k.tolist() for k in kept] == [[0]] * 4
    )
    grey = StrongAugment(**photometric, saturation=0, grayscale=1.0)
    coloured = torch.rand(2, 3, 8, 8)
    out, _, _ = grey(coloured, [torch.zeros(0, 4)] * 2)
    assert torch.allclose(out, coloured.mean(1, keepdim=True).expand_as(coloured))


def test_the_student_view_follows_what_the_teacher_labeled():
    from semiyolo.pseudo.augment import student_view

    assert student_view("letterbox").moves_boxes
    unmirrored = student_view("letterbox", flip=0.0)  # Ultralytics' fliplr 0: the labeled images are never mirrored
    kept = []  # a box in the left half stays there whatever scale (0.6-1.4) and shift the view draws
    for seed in range(20):
        box = [torch.tensor([[1.0, 2.0, 3.0, 6.0]])]
        kept += unmirrored(torch.zeros(1, 3, 8, 8), box, torch.Generator().manual_seed(seed))[1][0].tolist()
    assert kept and all(x1 < 4 for x1, *_ in kept)  # mirrored, x1 would be 8 - x2 > 4
    shared_geometry = student_view("ultralytics")  # Ultralytics' mosaic / affine / flip made the geometry already
    assert not shared_geometry.moves_boxes and shared_geometry.cutout > 0
    with pytest.raises(ValueError, match="teacher_view must be one of"):
        student_view("mosaic")


def test_colour_jitter_is_saturation_then_contrast_then_brightness():
    aug = StrongAugment(flip=0.0, scale=(1.0, 1.0), translate=0.0, saturation=0.4, contrast=0.3, brightness=0.3)
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    out = aug._photometric(images, torch.Generator().manual_seed(7))
    draws = torch.rand(9, generator=torch.Generator().manual_seed(7))  # three factors of 3 images, in that order
    s, c, b = ((1 + (draws[3 * k : 3 * k + 3] * 2 - 1) * st).view(3, 1, 1, 1) for k, st in enumerate((0.4, 0.3, 0.3)))
    grey = images.mean(1, keepdim=True)
    saturated = grey + (images - grey) * s  # the three steps one after another, as their definitions read
    mean = saturated.mean((1, 2, 3), keepdim=True)
    expected = ((mean + (saturated - mean) * c) * b).clamp(0, 1)
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize(
    "placement",
    [
        (48, 32, -8, -4, False),  # shrunk, partly off the top left
        (192, 128, -40, -20, True),  # enlarged, cropped on every side, mirrored
        (96, 64, 30, 20, True),  # same size, pushed past the bottom right, mirrored
    ],
)
def test_a_box_lands_where_its_pixels_land(placement):
    from semiyolo.pseudo.augment import _place, _Placement

    p = _Placement(*placement)
    image = torch.zeros(3, 64, 96)
    image[:, 16:48, 32:64] = 1.0  # x 32..64, y 16..48: on whole pixels, whole pixels after scaling by 0.5 or 2
    moved, kept = StrongAugment(min_area_kept=0.0)._map_boxes(torch.tensor([[32.0, 16.0, 64.0, 48.0]]), p, 96, 64)
    assert kept.tolist() == [True]
    mask = _place(image, p)[0] > 0.5  # bilinear edges cross 0.5 at the box's edge
    ys, xs = torch.nonzero(mask, as_tuple=True)
    assert moved[0].tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_every_image_placed_at_once_is_each_image_placed_alone():
    from semiyolo.pseudo.augment import _place, _Placement, place_all

    images = torch.rand(6, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    placements = [  # as is; shrunk and mirrored; enlarged past every edge; a strip cut at the right; off the canvas
        _Placement(48, 40, 0, 0, False),
        _Placement(30, 25, 5, 7, True),
        _Placement(70, 60, -10, -8, False),
        _Placement(20, 50, 40, -5, True),
        _Placement(48, 40, 60, 0, False),
        _Placement(67, 13, -3, 30, True),
    ]
    alone = torch.stack([_place(image, p) for image, p in zip(images, placements, strict=True)])
    # the same bilinear samples (F.interpolate's, align_corners=False) through one grid_sample: float rounding apart
    assert torch.allclose(place_all(images, placements), alone, atol=1e-5, rtol=0)
