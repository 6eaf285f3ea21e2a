"""Data-parallel training: the helpers, and proof that N devices take the same steps as one.

The proof runs the real scripts as subprocesses, as a user would: ``torchrun`` with 2 CPU processes (gloo)
against one plain process, and ``MirroredStrategy`` over 2 logical CPU devices against one device. After a
few SGD steps over the same global batches the weights must agree to float tolerance, must have moved well
away from the initial weights (so the agreement is not trivial), and only rank 0 may have written files.
``torchrun --standalone`` picks a free port, so these tests can run in parallel with others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_utils import data
from course_utils.distributed import (
    RunLog,
    accumulation_steps,
    is_rank0,
    per_device_batch_size,
    read_run_log,
    scale_learning_rate,
    shard_indices,
)

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
# A tiny U-Net on 32x32 scenes: seconds per run. 16 images = 4 global batches of 4, so 3 steps stay in epoch 0.
TINY = ["--steps", "3", "--global-batch", "4", "--image-size", "32", "--num-images", "16", "--base-filters", "4",
        "--depth", "2", "--seed", "0"]


# ============================================================================ framework-free helpers
def test_per_device_batch_size_splits_evenly_or_says_how():
    assert per_device_batch_size(32, 4) == 8
    assert per_device_batch_size(8, 1) == 8
    with pytest.raises(ValueError, match=r"does not split evenly over 4 devices: use a multiple of 4 \(e.g. 8 or 12\)"):
        per_device_batch_size(10, 4)
    for bad in (0, -4, True, 2.0):
        with pytest.raises(ValueError, match="global_batch_size must be an integer of 1 or more"):
            per_device_batch_size(bad, 2)


def test_learning_rate_rules_against_hand_computed_values():
    assert scale_learning_rate(0.01, 64, 16) == pytest.approx(0.04)  # linear: 4x batch, 4x rate
    assert scale_learning_rate(0.01, 64, 16, rule="sqrt") == pytest.approx(0.02)
    assert scale_learning_rate(0.01, 64, 16, rule="none") == pytest.approx(0.01)
    assert scale_learning_rate(0.1, 8, 32) == pytest.approx(0.025)  # smaller batch, smaller rate
    with pytest.raises(ValueError, match='rule must be "linear", "sqrt" or "none"'):
        scale_learning_rate(0.01, 64, 16, rule="cubic")
    with pytest.raises(ValueError, match="base_learning_rate must be positive"):
        scale_learning_rate(0.0, 64, 16)


def test_accumulation_steps():
    assert accumulation_steps(32, device_batch_size=8) == 4
    assert accumulation_steps(32, device_batch_size=8, world_size=2) == 2
    with pytest.raises(ValueError, match="choose a device batch that divides 16"):
        accumulation_steps(32, device_batch_size=6, world_size=2)


@pytest.mark.parametrize("n, world_size", [(10, 3), (12, 4), (7, 2), (5, 5)])
def test_shards_partition_the_epoch_and_each_step_is_one_block_of_the_order(n, world_size):
    order = data.epoch_order(n, seed=3, epoch=1)
    shards = [shard_indices(n, r, world_size, seed=3, epoch=1) for r in range(world_size)]
    kept = n - n % world_size
    assert all(len(s) == kept // world_size for s in shards)
    joined = np.concatenate(shards)
    assert len(set(joined.tolist())) == kept  # no sample twice
    # Interleaving the shards gives back the order: step t of all ranks = one contiguous block of it.
    assert np.array_equal(np.stack(shards, axis=1).reshape(-1), order[:kept])
    # drop_last=False repeats samples from the start to fill the last round, like DistributedSampler.
    padded = [shard_indices(n, r, world_size, seed=3, epoch=1, drop_last=False) for r in range(world_size)]
    assert set(np.concatenate(padded).tolist()) == set(range(n))
    assert all(len(p) == -(-n // world_size) for p in padded)


def test_shard_indices_bad_rank():
    with pytest.raises(ValueError, match=r"rank must be an integer in \[0, 1\]"):
        shard_indices(8, 2, 2)
    with pytest.raises(ValueError, match="cannot be split over 4 ranks"):
        shard_indices(3, 0, 4)


def test_run_log_is_written_by_rank0_only(tmp_path):
    log0 = RunLog(tmp_path / "a" / "log.json", rank=0, config={"lr": 0.1})
    log1 = RunLog(tmp_path / "b" / "log.json", rank=1, config={"lr": 0.1})
    for log in (log0, log1):
        log.step(step=0, loss=np.float32(0.5))
        log.step(step=1, loss=np.float64(0.25))
        log.save(images_per_s=np.float64(12.5))
    assert not (tmp_path / "b").exists()
    record = read_run_log(tmp_path / "a" / "log.json")
    assert record["config"] == {"lr": 0.1}
    assert [s["loss"] for s in record["steps"]] == [0.5, 0.25]
    assert record["summary"]["images_per_s"] == 12.5
    assert not list((tmp_path / "a").glob("*.tmp"))
    with pytest.raises(FileNotFoundError, match="did the training script finish"):
        read_run_log(tmp_path / "b" / "log.json")


def test_the_framework_free_module_loads_no_framework():
    code = ("import sys, course_utils.distributed\n"
            "print(','.join(m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip() == ""


def test_is_rank0_reads_torchrun_variable(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert is_rank0()
    monkeypatch.setenv("RANK", "1")
    assert not is_rank0() and is_rank0(0)


# ============================================================================ PyTorch helpers
def test_sharded_sampler_is_a_distributed_sampler_with_the_same_split():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler

    from course_utils.torch.distributed import ShardedSampler

    dataset = list(range(10))
    for drop_last in (True, False):
        for rank in range(3):
            ours = ShardedSampler(dataset, num_replicas=3, rank=rank, shuffle=False, drop_last=drop_last)
            theirs = DistributedSampler(dataset, num_replicas=3, rank=rank, shuffle=False, drop_last=drop_last)
            assert isinstance(ours, DistributedSampler)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
    sampler = ShardedSampler(dataset, num_replicas=2, rank=1, shuffle=True, seed=5)
    sampler.set_epoch(2)
    assert list(sampler) == data.epoch_order(10, 5, 2)[1::2].tolist()
    assert torch.is_tensor(torch.zeros(1))


def test_distributed_loader_ranks_together_take_the_single_process_batch():
    pytest.importorskip("torch")
    from course_utils.torch.distributed import make_distributed_loader

    images, masks = data.make_shapes(16, size=16, seed=1)
    loaders = [make_distributed_loader(images, masks, 8, rank=r, world_size=2, seed=4) for r in range(2)]
    single = make_distributed_loader(images, masks, 8, rank=0, world_size=1, seed=4)
    for epoch in range(2):  # every pass is the next epoch, on every rank
        steps = [list(loader) for loader in loaders]
        whole = list(single)
        assert len(whole) == len(steps[0]) == len(steps[1]) == 2
        order = data.epoch_order(16, 4, epoch)
        for t, (images_t, masks_t) in enumerate(whole):
            assert images_t.shape == (8, 3, 16, 16) and masks_t.shape == (8, 16, 16)
            expected = images[order[8 * t: 8 * (t + 1)]].transpose(0, 3, 1, 2)
            np.testing.assert_array_equal(images_t.numpy(), expected)
            # rank r takes positions r, r + 2, ... of the block: together, the same 8 images
            for rank in range(2):
                rank_images, rank_masks = steps[rank][t]
                assert rank_images.shape == (4, 3, 16, 16)
                np.testing.assert_array_equal(rank_images.numpy(), expected[rank::2])
                np.testing.assert_array_equal(rank_masks.numpy(), masks[order[8 * t: 8 * (t + 1)]][rank::2])
    with pytest.raises(ValueError, match="does not split evenly over 3 devices"):
        make_distributed_loader(images, masks, 8, rank=0, world_size=3)
    with pytest.raises(ValueError, match="fewer than one global batch of 32"):
        make_distributed_loader(images, masks, 32, rank=0, world_size=2)


def test_save_checkpoint_rank0_writes_on_rank0_only(tmp_path):
    torch = pytest.importorskip("torch")
    from course_utils.torch.distributed import save_checkpoint_rank0
    from course_utils.torch.unet import UNet

    model = UNet(3, 2, base_filters=2, depth=1)
    assert save_checkpoint_rank0(model, tmp_path / "r1" / "ckpt.pt", rank=1) is None
    assert not (tmp_path / "r1").exists()
    path = save_checkpoint_rank0(model, tmp_path / "r0" / "ckpt.pt", rank=0)
    state = torch.load(path, weights_only=True)
    assert set(state) == set(model.state_dict())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_wrap_model_single_process_and_syncbn_on_cpu():
    torch = pytest.importorskip("torch")
    from course_utils.torch.distributed import DistContext, all_reduce_mean, unwrap, wrap_model
    from course_utils.torch.unet import UNet

    single = DistContext(0, 0, 1, torch.device("cpu"), "none")
    model = wrap_model(UNet(3, 2, base_filters=2, depth=1), single, sync_batchnorm=True)
    assert unwrap(model) is model  # no process group: no DDP wrapper
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules()) == 6  # 3 blocks x 2
    cpu_pair = DistContext(0, 0, 2, torch.device("cpu"), "gloo")
    with pytest.raises(ValueError, match="SyncBatchNorm runs on GPUs only"):
        wrap_model(UNet(3, 2, base_filters=2, depth=1), cpu_pair, sync_batchnorm=True)
    assert all_reduce_mean(torch.tensor(2.5)) == 2.5


def test_process_info_checks_the_variables(monkeypatch):
    pytest.importorskip("torch")
    from course_utils.torch.distributed import process_info

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert process_info() == (1, 1, 2)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="not in \\[0, WORLD_SIZE=2\\)"):
        process_info()


def test_gradient_accumulation_equals_the_big_batch():
    torch = pytest.importorskip("torch")
    from course_utils.torch.distributed import accumulated_backward
    from course_utils.torch.losses import CrossEntropyLoss
    from course_utils.torch.unet import UNet

    images, masks = data.make_shapes(8, size=16, seed=2)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(masks)
    torch.manual_seed(0)
    model = UNet(3, 4, base_filters=4, depth=2, batch_norm=False)
    loss_fn = CrossEntropyLoss()
    loss = loss_fn(model(x), y)
    loss.backward()
    full = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    accumulated = accumulated_backward(model, loss_fn, x, y, micro_batch_size=2)
    assert accumulated == pytest.approx(float(loss.detach()), rel=1e-5)
    for g_full, p in zip(full, model.parameters()):
        torch.testing.assert_close(p.grad, g_full, rtol=1e-4, atol=1e-6)
    assert max(float(g.abs().max()) for g in full) > 1e-3  # the gradients are not trivially zero
    with pytest.raises(ValueError, match="micro-batches of 3"):
        accumulated_backward(model, loss_fn, x, y, micro_batch_size=3)


# ============================================================================ Keras helpers
class _Resolver:
    def __init__(self, task_type, task_id, jobs):
        self.task_type, self.task_id, self._jobs = task_type, task_id, jobs

    def cluster_spec(self):
        jobs = self._jobs

        class Spec:
            def as_dict(self):
                return jobs

        return Spec()


class _FakeStrategy:
    def __init__(self, replicas=1, resolver=None):
        self.num_replicas_in_sync = replicas
        self.cluster_resolver = resolver


def test_keras_worker_rank_and_chief_only_saving(tmp_path):
    pytest.importorskip("tensorflow")
    from course_utils.keras import distributed as kd
    from course_utils.keras.unet import build_unet

    workers = {"worker": ["a:1", "b:1"]}
    assert kd.worker_rank(None) == 0 and kd.is_chief(None)
    assert kd.worker_rank(_FakeStrategy(resolver=_Resolver("worker", 1, workers))) == 1
    assert kd.worker_rank(_FakeStrategy(resolver=_Resolver("worker", 0, {"chief": ["c:1"], **workers}))) == 1
    assert kd.worker_rank(_FakeStrategy(resolver=_Resolver("chief", 0, {"chief": ["c:1"], **workers}))) == 0

    model = build_unet((16, 16, 3), num_classes=2, base_filters=2, depth=1)
    worker1 = _FakeStrategy(resolver=_Resolver("worker", 1, workers))
    assert kd.save_weights_chief(model, tmp_path / "w1" / "m.weights.h5", worker1) is None
    assert not (tmp_path / "w1").exists()
    path = kd.save_weights_chief(model, tmp_path / "w0" / "m.weights.h5")
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.weights.h5"]
    other = build_unet((16, 16, 3), num_classes=2, base_filters=2, depth=1)
    other.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), other.get_weights()))
    with pytest.raises(ValueError, match="must end in .weights.h5"):
        kd.save_weights_chief(model, tmp_path / "m.h5")


def test_tf_config():
    from course_utils.distributed import tf_config

    value = json.loads(tf_config(["n1:2222", "n2:2222"], 1))
    assert value == {"cluster": {"worker": ["n1:2222", "n2:2222"]}, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="index must be an integer in \\[0, 1\\]"):
        tf_config(["n1:2222", "n2:2222"], 2)
    with pytest.raises(ValueError, match='"host:port"'):
        tf_config(["n1"], 0)


def test_keras_distributed_dataset_matches_the_torch_order_and_has_no_state():
    pytest.importorskip("tensorflow")
    from course_utils.keras.distributed import make_distributed_dataset

    images, masks = data.make_shapes(6, size=16, seed=1)
    dataset = make_distributed_dataset(images, masks, 4, seed=2)  # 6 images, batches of 4: crosses epochs
    first = [(x.numpy(), y.numpy()) for x, y in dataset.take(3)]
    again = [(x.numpy(), y.numpy()) for x, y in dataset.take(3)]
    stream = np.concatenate([data.epoch_order(6, 2, e) for e in range(2)])  # epoch 0 then epoch 1
    for t, (x, y) in enumerate(first):
        assert x.shape == (4, 16, 16, 3) and y.shape == (4, 16, 16) and y.dtype == np.int32
        np.testing.assert_array_equal(x, images[stream[4 * t: 4 * t + 4]])
        np.testing.assert_array_equal(y, masks[stream[4 * t: 4 * t + 4]])
        np.testing.assert_array_equal(x, again[t][0])  # a new iterator starts at step 0 again
    with pytest.raises(ValueError, match="does not split evenly over 2 devices"):
        make_distributed_dataset(images, masks, 5, strategy=_FakeStrategy(replicas=2))


def test_convert_sync_batchnorm_keeps_weights_and_outputs():
    pytest.importorskip("tensorflow")
    import keras

    from course_utils.keras.distributed import convert_sync_batchnorm
    from course_utils.keras.unet import build_unet

    keras.utils.set_random_seed(0)
    model = build_unet((16, 16, 3), num_classes=2, base_filters=2, depth=1)
    synced = convert_sync_batchnorm(model)
    norms = [layer for layer in synced.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 6 and all(layer.synchronized for layer in norms)
    assert not any(layer.synchronized for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    np.testing.assert_allclose(synced.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_run_log_callback_turns_running_means_into_step_losses(tmp_path):
    pytest.importorskip("tensorflow")
    from course_utils.keras.distributed import RunLogCallback

    log = RunLog(tmp_path / "log.json", rank=0)
    callback = RunLogCallback(log, global_batch_size=4)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    for batch, running_mean in enumerate([1.0, 2.0, 2.0]):  # step losses 1, 3, 2
        callback.on_train_batch_end(batch, {"loss": running_mean})
    assert [s["loss"] for s in log.record["steps"]] == pytest.approx([1.0, 3.0, 2.0])
    assert callback.timing()["timed_steps"] == 2


# ============================================================================ the proof: N devices == one
def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen, what: str) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, f"{what} failed:\n{output[-4000:]}"
    return output


def _torchrun(nproc: int, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            str(SCRIPTS / "train_ddp_torch.py"), *TINY, "--out", str(out), *extra]


@pytest.mark.slow
def test_torchrun_two_processes_take_the_same_steps_as_one(tmp_path):
    torch = pytest.importorskip("torch")
    from course_utils.torch.unet import UNet

    runs = {
        "two": _start(_torchrun(2, tmp_path / "two", "--no-batch-norm")),
        "one": _start([sys.executable, str(SCRIPTS / "train_ddp_torch.py"), *TINY, "--no-batch-norm",
                       "--out", str(tmp_path / "one")]),
        # mixed precision is a GPU feature; on the CPU the script autocasts to bfloat16: it must still train
        "two_amp": _start(_torchrun(2, tmp_path / "two_amp", "--no-batch-norm", "--mixed-precision")),
    }
    for name, process in runs.items():
        _finish(process, f"train_ddp_torch.py ({name})")
    logs = {name: read_run_log(tmp_path / name / "log.json") for name in runs}
    assert logs["two"]["config"]["world_size"] == 2 and logs["two"]["config"]["backend"] == "gloo"
    assert logs["two"]["config"]["per_device_batch"] == 2 and logs["one"]["config"]["world_size"] == 1
    for name in runs:  # only rank 0 wrote: one log, one checkpoint, nothing else
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["checkpoint.pt", "log.json"]
        assert logs[name]["summary"]["checkpoint_written_by"] == [0]
    np.testing.assert_allclose([s["loss"] for s in logs["two"]["steps"]],
                               [s["loss"] for s in logs["one"]["steps"]], rtol=1e-5)
    amp = np.array([s["loss"] for s in logs["two_amp"]["steps"]])
    full = np.array([s["loss"] for s in logs["two"]["steps"]])
    assert logs["two_amp"]["config"]["mixed_precision"] and np.isfinite(amp).all()
    np.testing.assert_allclose(amp, full, rtol=0.05)  # bfloat16 rounding: close, not equal

    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    torch.manual_seed(0)  # the scripts' initial weights
    initial = UNet(3, 4, base_filters=4, depth=2, batch_norm=False).state_dict()
    assert set(two) == set(one) == set(initial)  # saved unwrapped: no "module." prefix
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-6)
    moved = max(float((one[k] - initial[k]).abs().max()) for k in one)
    assert moved > 1e-2  # 3 steps changed the weights by far more than the tolerance


def test_ddp_script_frees_the_model_before_it_leaves_the_process_group(tmp_path, monkeypatch):
    """A model still alive when the script exits keeps gloo's process group alive into interpreter shutdown,
    where it aborted 4 of 50 two-process runs here after good training ("terminate called without an active exception"). So the
    script trains in a function and leaves the group only once nothing refers to the model any more."""
    pytest.importorskip("torch")
    import gc
    import importlib.util

    from course_utils.torch import distributed as ddp
    from course_utils.torch.unet import UNet

    spec = importlib.util.spec_from_file_location("train_ddp_torch_under_test", SCRIPTS / "train_ddp_torch.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    alive_at_teardown = []
    monkeypatch.setattr(ddp, "teardown",
                        lambda: alive_at_teardown.append(sum(type(o) is UNet for o in gc.get_objects())))
    monkeypatch.delenv("MASTER_ADDR", raising=False)  # one plain process
    assert script.main([*TINY, "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # it did train
    assert alive_at_teardown == [0]


def _keras(devices: int, out: Path, *extra) -> list[str]:
    return [sys.executable, str(SCRIPTS / "train_mirrored_keras.py"), "--devices", str(devices), *TINY,
            "--out", str(out), *extra]


def _keras_weights(path: Path, batch_norm: bool) -> list[np.ndarray]:
    from course_utils.keras.unet import build_unet

    model = build_unet((32, 32, 3), num_classes=4, base_filters=4, depth=2, batch_norm=batch_norm)
    model.load_weights(path)
    return model.get_weights()  # trainable weights and BatchNorm's moving statistics


def _max_difference(a, b) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


@pytest.mark.slow
def test_mirrored_two_logical_devices_take_the_same_steps_as_one(tmp_path):
    pytest.importorskip("tensorflow")
    import keras

    from course_utils.keras.unet import build_unet

    runs = {
        "one": _start(_keras(1, tmp_path / "one", "--no-batch-norm")),
        "two": _start(_keras(2, tmp_path / "two", "--no-batch-norm")),
        # with BatchNorm: each replica normalises with its own half of the batch unless synchronized
        "one_bn": _start(_keras(1, tmp_path / "one_bn")),
        "two_sync_bn": _start(_keras(2, tmp_path / "two_sync_bn", "--sync-batchnorm")),
        "two_bn": _start(_keras(2, tmp_path / "two_bn")),
        "two_amp": _start(_keras(2, tmp_path / "two_amp", "--no-batch-norm", "--mixed-precision")),  # bfloat16
    }
    for name, process in runs.items():
        _finish(process, f"train_mirrored_keras.py ({name})")
    logs = {name: read_run_log(tmp_path / name / "log.json") for name in runs}
    assert logs["two"]["config"]["world_size"] == 2 and logs["two"]["config"]["strategy"] == "MirroredStrategy"
    assert logs["one"]["config"]["world_size"] == 1
    for name in runs:
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["checkpoint.weights.h5", "log.json"]
        assert logs[name]["summary"]["checkpoint_written_by"] == [0]
    np.testing.assert_allclose([s["loss"] for s in logs["two"]["steps"]],
                               [s["loss"] for s in logs["one"]["steps"]], rtol=1e-5)
    amp = np.array([s["loss"] for s in logs["two_amp"]["steps"]])
    assert logs["two_amp"]["config"]["mixed_precision"] and np.isfinite(amp).all()
    np.testing.assert_allclose(amp, [s["loss"] for s in logs["two"]["steps"]], rtol=0.05)

    one = _keras_weights(tmp_path / "one" / "checkpoint.weights.h5", batch_norm=False)
    two = _keras_weights(tmp_path / "two" / "checkpoint.weights.h5", batch_norm=False)
    keras.utils.set_random_seed(0)  # the scripts' initial weights
    initial = build_unet((32, 32, 3), num_classes=4, base_filters=4, depth=2, batch_norm=False).get_weights()
    assert _max_difference(one, two) < 1e-5
    assert _max_difference(one, initial) > 1e-2

    one_bn = _keras_weights(tmp_path / "one_bn" / "checkpoint.weights.h5", batch_norm=True)
    synced = _keras_weights(tmp_path / "two_sync_bn" / "checkpoint.weights.h5", batch_norm=True)
    unsynced = _keras_weights(tmp_path / "two_bn" / "checkpoint.weights.h5", batch_norm=True)
    assert _max_difference(one_bn, synced) < 1e-5  # synchronized BatchNorm: the same steps
    assert _max_difference(one_bn, unsynced) > 1e-3  # per-replica statistics: different steps


# ============================================================================ the benchmark's table
def test_data_parallel_benchmark_arguments_and_table():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import data_parallel

    args = data_parallel.parse_args(["--quick"])
    assert args.seeds == [0] and args.steps == 3 and args.global_batch == 4
    command = data_parallel.command("torch", 2, args, 0, Path("out"))
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert "--devices" in data_parallel.command("keras", 2, args, 0, Path("out"))
    payload = {"created": "2026-12-01T00:00:00Z", "settings": "tiny", "machine": ["- CPU: test"], "rows": [
        {"framework": "PyTorch DDP (torchrun)", "devices": 2, "total_threads": 2, "per_device_batch": 4,
         "images_per_s_median": 50.0, "images_per_s_min": 40.0, "images_per_s_max": 61.25, "runs": 3},
        {"framework": "Keras MirroredStrategy", "devices": 2, "total_threads": 2, "per_device_batch": 4,
         "images_per_s_median": None, "runs": 0}]}
    lines = data_parallel.markdown(payload).splitlines()
    assert "| PyTorch DDP (torchrun) | 2 | 2 | 4 | 50.0 | 40.0 - 61.2 | 3 |" in lines
    assert "| Keras MirroredStrategy | 2 | 2 | 4 | failed | | 0 |" in lines
    assert any("Indicative only" in line and "no cluster" in line for line in lines)


# ============================================================================ lecture 11's plumbing
def test_script_arguments_and_torchrun_command():
    from course_utils.distributed import script_arguments, torchrun_command

    assert script_arguments(steps=8, global_batch=4, no_batch_norm=True, sync_batchnorm=False, out=None) == [
        "--steps", "8", "--global-batch", "4", "--no-batch-norm"]
    command = torchrun_command(SCRIPTS / "train_ddp_torch.py", 2)
    assert command == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                       str(SCRIPTS / "train_ddp_torch.py")]
    with pytest.raises(ValueError, match="nproc must be an integer of 1 or more"):
        torchrun_command("x.py", 0)


def test_run_scripts_runs_all_at_once_and_reports_a_failure(tmp_path, capsys):
    from course_utils.distributed import child_environment, run_scripts

    env = child_environment(tmp_path, threads=1)
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["OMP_NUM_THREADS"] == "1"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path)
    # the second waits for a file that the first writes 0.3 s later: only works if both run at the same time
    flag = tmp_path / "flag"
    writer = f"import time, pathlib; time.sleep(0.3); pathlib.Path({str(flag)!r}).write_text('x'); print('wrote')"
    waiter = (f"import time, pathlib, sys\nfor _ in range(300):\n    if pathlib.Path({str(flag)!r}).exists(): "
              "print('early'); print('saw it'); sys.exit(0)\n    time.sleep(0.05)\nsys.exit(3)")
    last = run_scripts({"waiter": [sys.executable, "-c", waiter], "writer": [sys.executable, "-c", writer]}, cwd=tmp_path)
    assert last == {"waiter": "saw it", "writer": "wrote"}
    printed = capsys.readouterr().out
    assert printed.count("$ ") == 2 and "the 2 runs took" in printed
    with pytest.raises(RuntimeError, match=r"the run 'bad' failed \(exit 4\):\nboom"):
        run_scripts({"ok": [sys.executable, "-c", "print(1)"],
                     "bad": [sys.executable, "-c", "import sys; print('boom'); sys.exit(4)"]}, cwd=tmp_path, echo=False)


def test_code_lines_shows_numbered_lines_and_refuses_a_missing_one(tmp_path):
    from course_utils.distributed import code_lines

    source = tmp_path / "s.py"
    source.write_text("a = 1\nb = 2\nc = 3\nd = 4\ne = 5\nf = 6\n")
    assert code_lines(source, ["b =", "f ="], root=tmp_path) == "# s.py\n   2  b = 2\n   ...\n   6  f = 6"
    assert code_lines(source, "c =", context=1).splitlines()[1:] == ["   2  b = 2", "   3  c = 3", "   4  d = 4"]
    with pytest.raises(ValueError, match="'z =' is not in .*s.py: the code changed"):
        code_lines(source, ["z ="])


def test_lecture_11_shows_the_real_ddp_calls():
    """The lecture prints the lines of the script and helpers that do the distributed work: they must exist."""
    notebook = json.loads((ROOT / "notebooks" / "11_distributed.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    (cell,) = [c for c in cells if c.startswith("print(code_lines(")]
    printed = []
    from course_utils.distributed import code_lines

    exec(cell, {"code_lines": code_lines, "REPO": ROOT, "SCRIPTS": SCRIPTS,  # noqa: S102 - the lecture's own cell
                "print": lambda *args, **kwargs: printed.append(" ".join(map(str, args)))})
    text = "\n".join(printed)
    for call in ("dist.init_process_group(", "DistributedDataParallel(model", "set_epoch(", "ShardedSampler(",
                 "scale(loss).backward()", "save_checkpoint_rank0(", "ddp.teardown()"):
        assert call in text, call


def test_plot_scaling_labels_do_not_overlap_and_name_the_load():
    import matplotlib

    matplotlib.use("Agg")
    from course_utils.distributed import plot_scaling

    payload = json.loads((ROOT / "benchmarks" / "results" / "data_parallel.json").read_text())
    fig = plot_scaling(payload)
    ax = fig.axes[0]
    assert "load average 17.3" in ax.get_title() and "indicative" in ax.get_title()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in ax.get_yticklabels() if label.get_text()]
    assert len(boxes) == len([r for r in payload["rows"] if r["images_per_s_median"] is not None]) >= 4
    for first, second in zip(boxes, boxes[1:]):
        assert not first.overlaps(second)
    assert all(box.x0 >= 0 for box in boxes)  # inside the figure, not cut off
    with pytest.raises(ValueError, match="no successful rows"):
        plot_scaling({"rows": [], "machine": []})
