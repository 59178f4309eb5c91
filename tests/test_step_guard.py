"""The guarded optimizer step (semiyolo.integrations.ultralytics.step_guard): its counters and the update size."""

import pytest
import torch

from semiyolo.integrations.ultralytics.step_guard import GuardedSteps, update_norm


def _model_with_grad(grad):
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 1.0]]))
    model.weight.grad = torch.tensor([grad])
    return model


def test_the_update_norm_is_the_length_of_the_step_taken():
    steps = GuardedSteps(max_grad_norm=100.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    model = _model_with_grad([3.0, 4.0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    assert steps.step(model, optimizer, scaler, torch.tensor(1.0))
    # SGD: w - 0.5 * (3, 4) = (-0.5, -1); the update (-1.5, -2) has length 0.5 * 5 = 2.5
    assert torch.allclose(model.weight, torch.tensor([[-0.5, -1.0]]))
    assert steps.update_norm_sum == pytest.approx(2.5) and steps.mean_update_norm == pytest.approx(2.5)
    model.weight.grad = torch.tensor([[0.0, 2.0]])
    steps.step(model, optimizer, scaler, torch.tensor(1.0))  # the update (0, -1): length 1, mean (2.5 + 1) / 2
    assert steps.mean_update_norm == pytest.approx(1.75)
    model.weight.grad = torch.tensor([[float("nan"), 0.0]])
    assert not steps.step(model, optimizer, scaler, torch.tensor(1.0))  # skipped: no update, no change
    assert steps.optimizer_steps == 2 and steps.mean_update_norm == pytest.approx(1.75)


def test_the_update_size_survives_a_resume():
    steps = GuardedSteps()
    steps.optimizer_steps, steps.update_norm_sum = 4, 1.25
    again = GuardedSteps()
    again.load_state_dict(steps.state_dict())
    assert again.update_norm_sum == 1.25 and isinstance(again.optimizer_steps, int)
    again.load_state_dict({"optimizer_steps": 3})  # a state written before the update size was kept
    assert again.update_norm_sum == 0.0


def test_the_norm_covers_every_tensor_together():
    # (3) and (4, 0) moved from zero: sqrt(9 + 16) = 5
    assert float(update_norm([torch.tensor([3.0]), torch.tensor([4.0, 0.0])], [torch.zeros(1), torch.zeros(2)])) == 5.0
    assert float(update_norm([], [])) == 0.0
