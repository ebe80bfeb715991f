"""Cost estimates of the Train page's variant table: scaling rules and calibration from runs."""
from __future__ import annotations

import pytest

from engine.training import estimates
from engine.training.config import TrainConfig
from engine.events import EpochEnded, RunStarted
from engine.runs import create_run
from engine.worker import DatabaseEventSink
from engine.workspace import Workspace


def test_cost_grows_with_size_variant_and_batch() -> None:
    speed = estimates.default_throughput()
    b0_small = estimates.estimate_cost("B0", 112, 1000, 1200, 32, speed)
    b0_native = estimates.estimate_cost("B0", None, 1000, 1200, 32, speed)
    b3_native = estimates.estimate_cost("B3", None, 1000, 1200, 32, speed)
    assert b0_native.image_size_px == 224
    assert b0_native.fine_tune_seconds_per_epoch == pytest.approx(
        4 * b0_small.fine_tune_seconds_per_epoch)           # pixel count x4 -> work x4
    assert b3_native.fine_tune_seconds_per_epoch > b0_native.fine_tune_seconds_per_epoch
    assert b3_native.memory_bytes > b0_native.memory_bytes
    bigger_batch = estimates.estimate_cost("B0", None, 1000, 1200, 64, speed)
    assert bigger_batch.memory_bytes > b0_native.memory_bytes
    assert bigger_batch.fine_tune_seconds_per_epoch == b0_native.fine_tune_seconds_per_epoch


def _run_with_epochs(workspace: Workspace, size: int, durations: list[float]) -> str:
    run_id = create_run(workspace, "B0", TrainConfig(weights="none").to_dict()).id
    sink = DatabaseEventSink(workspace, run_id)
    sink(RunStarted(run_id, "B0", size, 100, 10, 10, ("a", "b"), "CPU"))
    for epoch, seconds in enumerate(durations, start=1):
        sink(EpochEnded("fine_tune", epoch, 3, 0.5, 0.5, 0.5, 0.5, 1e-4, 1e-4, "accuracy",
                        seconds, False))
    return run_id


def test_speed_is_learned_from_this_workspaces_fine_tuning_epochs(workspace: Workspace) -> None:
    assert estimates.measured_throughput(workspace) == estimates.default_throughput()
    _run_with_epochs(workspace, 64, [90.0, 10.0, 10.0])      # small images: not used
    assert estimates.measured_throughput(workspace) == estimates.default_throughput()

    run_id = _run_with_epochs(workspace, 224, [300.0, 20.0, 20.0])   # first epoch: graph build
    speed = estimates.measured_throughput(workspace)

    assert run_id in speed.source
    cost = estimates.estimate_cost("B0", 224, 100, 120, 32, speed)
    assert cost.fine_tune_seconds_per_epoch == pytest.approx(20.0)


@pytest.mark.parametrize("variant", list(estimates.VARIANTS))
def test_every_offered_size_is_smaller_and_larger_than_native_and_trainable(variant: str) -> None:
    choices = estimates.size_choices(variant)
    spec = estimates.VARIANTS[variant]
    sizes = [choice.image_size_px for choice in choices]
    assert sizes == sorted(set(sizes))
    assert [choice.image_size_px for choice in choices if choice.is_native] == [spec.native_size_px]
    # Down to 96 px for a 224-px model, the same fraction for the others (on a 16-px grid).
    assert abs(sizes[0] - spec.native_size_px * 96 / 224) <= 8 and sizes[0] < spec.native_size_px
    assert sizes[-1] == max(600, spec.native_size_px)
    for choice in choices:
        # Quadratic in the side: faster below the native size, slower above it.
        expected = (spec.native_size_px / choice.image_size_px) ** 2
        assert choice.relative_speed == pytest.approx(expected)
        config = TrainConfig(variant=variant, weights="none", image_size_px=choice.image_size_px)
        assert config.effective_image_size_px == choice.image_size_px


def test_a_224_px_model_offers_96_px_at_about_five_times_the_speed() -> None:
    smallest = estimates.size_choices("B0")[0]
    assert smallest.image_size_px == 96 and smallest.relative_speed == pytest.approx(5.44, abs=0.01)
