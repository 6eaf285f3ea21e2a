"""course_utils.timing: counted with fake pipelines and a fake clock (no real timings)."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import timing


class FakeClock:
    """Each call returns the next whole second: elapsed time = number of clock reads in between."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


class FakeLoader:
    """An iterable like a DataLoader: every iteration is a new epoch of ``sizes`` batches."""

    def __init__(self, sizes):
        self.sizes = sizes
        self.drawn = 0
        self.epochs = 0

    def __iter__(self):
        self.epochs += 1
        for size in self.sizes:
            self.drawn += 1
            yield np.zeros((size, 4, 4, 3), np.float32), np.zeros((size, 4, 4), np.int64)


def test_pipeline_counts_images_after_warmup_only():
    loader = FakeLoader([8, 8, 8, 8, 8])
    rate = timing.measure_input_pipeline(loader, num_batches=3, warmup=2, clock=FakeClock())
    assert rate == 24.0  # 3 timed batches of 8 images in one (fake) second
    assert loader.drawn == 5 and loader.epochs == 1


def test_pipeline_moves_on_to_the_next_epoch_and_counts_the_smaller_last_batch():
    loader = FakeLoader([4, 4, 2])  # 10 images, last batch smaller
    rate = timing.measure_input_pipeline(loader, num_batches=4, warmup=1, clock=FakeClock())
    assert rate == 4 + 2 + 4 + 4  # batches 2, 3 of epoch 1, then 1, 2 of epoch 2
    assert loader.epochs == 2 and loader.drawn == 5


def test_pipeline_accepts_other_batch_forms():
    batches = [{"image": np.zeros((3, 2, 2, 1))}, [np.zeros((5, 2))], np.zeros((7, 1))]
    assert [timing.batch_size_of(b) for b in batches] == [3, 5, 7]
    assert timing.measure_input_pipeline(batches, 3, warmup=0, clock=FakeClock()) == 15.0
    with pytest.raises(TypeError, match="how many images"):
        timing.batch_size_of((object(),))


def test_one_shot_iterator_that_runs_dry_is_a_clear_error():
    loader = iter([(np.zeros((2, 1)), np.zeros((2, 1)))] * 3)
    with pytest.raises(ValueError, match="ran out of batches"):
        timing.measure_input_pipeline(loader, num_batches=5, warmup=0)


def test_train_step_counts_steps_and_syncs_around_the_timed_part():
    calls, syncs = [], []
    batch = (np.zeros((16, 8, 8, 3)), np.zeros((16, 8, 8)))
    rate = timing.measure_train_step(
        lambda b: calls.append(len(b[0])), batch, num_steps=5, warmup=3,
        sync=lambda: syncs.append(len(calls)), clock=FakeClock(),
    )
    assert rate == 16 * 5  # 5 steps of 16 images in one fake second
    assert len(calls) == 8  # 3 warm-up + 5 timed
    assert syncs == [3, 8]  # after the warm-up, after the timed steps
    with pytest.raises(ValueError, match="num_steps"):
        timing.measure_train_step(lambda b: None, batch, num_steps=0)


def test_report_says_whether_the_accelerator_waits():
    slow = timing.pipeline_report(100.0, 400.0, name="DataLoader")
    assert slow.accelerator_waits and slow.wait_fraction == pytest.approx(0.75)
    assert str(slow).startswith("DataLoader: the input pipeline delivers 100 images/s")
    assert "wait for data about 75%" in str(slow) and "num_workers" in str(slow)
    fast = timing.pipeline_report(900, 300)
    assert not fast.accelerator_waits and fast.ratio == pytest.approx(3.0)
    assert "does not wait" in str(fast) and "only just" not in str(fast)
    assert "only just" in str(timing.pipeline_report(110, 100))
    with pytest.raises(ValueError, match="positive"):
        timing.pipeline_report(0, 100)


def test_real_clock_gives_a_positive_rate():
    assert timing.measure_input_pipeline(FakeLoader([2, 2]), 2, warmup=0) > 0
