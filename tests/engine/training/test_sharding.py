"""Full batches for several devices and one shard per host (engine.training.sharding).

Plain numpy: the batches a process feeds, their sample weights and how predictions come back
in order. The real runs on two JAX devices and two processes are in test_distribution.py.
"""
from __future__ import annotations

import numpy as np

from engine.training.sharding import BatchPlan, PaddedBatches, fill, pad_to_devices, predict_rows


def onehot(labels: list[int]) -> np.ndarray:
    return np.eye(2, dtype=np.float32)[labels]


def weighted_rows(batches: PaddedBatches) -> list[int]:
    """The rows a pass feeds with a weight above 0 (what the loss and the metrics count)."""
    rows = []
    for index in range(len(batches)):
        x, _, weights = batches[index]
        rows += [int(row) for row, weight in zip(x[:, 0], weights) if weight > 0]
    return rows


def test_every_batch_is_full_and_each_row_counts_once_per_epoch():
    count = 17
    data = np.arange(count, dtype=np.float32)[:, None]
    batches = PaddedBatches(lambda rows: data[rows], onehot([0] * count), BatchPlan(8, pads=True),
                            shuffle=True, seed=3)
    assert len(batches) == 3
    for epoch in range(2):
        shapes = {batches[index][0].shape for index in range(len(batches))}
        assert shapes == {(8, 1)}                       # no batch of 1 for JAX to refuse
        x, _, weights = batches[2]
        assert weights.tolist() == [1.0] * 1 + [0.0] * 7  # 17 = 8 + 8 + 1: seven pad rows
        assert sorted(weighted_rows(batches)) == list(range(count))
        first_epoch = weighted_rows(batches) if epoch == 0 else first_epoch
        batches.on_epoch_end()
    assert weighted_rows(batches) != first_epoch     # a new order every epoch


def test_two_hosts_feed_disjoint_shards_that_cover_every_row_in_the_same_steps():
    count = 17
    data = np.arange(count, dtype=np.float32)[:, None]
    hosts = [PaddedBatches(lambda rows: data[rows], onehot([0] * count),
                           BatchPlan(4, num_processes=2, process_index=index, pads=True),
                           shuffle=True, seed=0) for index in range(2)]
    assert len(hosts[0]) == len(hosts[1]) == 3        # ceil(ceil(17 / 2) / 4): in step
    shards = [weighted_rows(host) for host in hosts]
    assert len(shards[0]) == 9 and len(shards[1]) == 8
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(count))


def test_class_weights_weigh_the_real_rows_and_padding_weighs_nothing():
    labels = onehot([0, 0, 0, 1, 1])
    data = np.arange(5, dtype=np.float32)[:, None]
    batches = PaddedBatches(lambda rows: data[rows], labels, BatchPlan(4, pads=True),
                            class_weight={0: 0.5, 1: 2.0})
    _, y, weights = batches[1]                       # row 4 and three pad rows
    assert y[0].argmax() == 1 and weights.tolist() == [2.0, 0.0, 0.0, 0.0]
    assert batches[0][2].tolist() == [0.5, 0.5, 0.5, 2.0]


def test_predictions_come_back_in_row_order_without_the_padding():
    data = np.arange(7, dtype=np.float32)[:, None] * 10
    seen = []

    def predict(batch):
        seen.append(len(batch))
        return batch + 1

    result = predict_rows(predict, lambda rows: data[rows], 7, BatchPlan(4, pads=True))
    assert result[:, 0].tolist() == [1, 11, 21, 31, 41, 51, 61]
    assert seen == [4, 4]                            # the last batch of 3 was filled up


def test_fill_and_device_padding():
    assert fill(np.array([5, 6]), 5, np.array([0])).tolist() == [5, 6, 5, 6, 5]
    assert fill(np.array([], dtype=np.int64), 3, np.array([9, 8])).tolist() == [9, 8, 9]
    one = np.zeros((1, 2, 2, 3))
    assert len(pad_to_devices(one, BatchPlan(8, pads=True, num_local_devices=2))) == 2
    assert len(pad_to_devices(one, BatchPlan(8))) == 1   # one device: the image alone
