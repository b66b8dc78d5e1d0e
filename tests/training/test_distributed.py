"""Data-parallel training on the frameworks' own engines gives the single-process result.

Two DDP processes (torchrun, gloo) and two TF replicas (MirroredStrategy over two logical CPU devices)
each train a tiny Marian on their shards of every global batch; one process with gradient
accumulation 2 over the same global batches gives the same per-step losses and final weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.hf_oracle import save_tiny_marian
from tests.training import distributed_worker
from westron.errors import WestronError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "training", "distributed_worker.py")


def run_worker(command: list[str]) -> None:
    """Runs a worker command in a fresh process (a logical-device split or a process group needs one)."""
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TF_CONFIG"):
        env.pop(name, None)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def read_losses(folder) -> list[float]:
    with open(os.path.join(folder, "losses-0.json")) as handle:
        return json.load(handle)


def test_two_ddp_processes_give_the_single_process_losses_and_weights(tmp_path):
    torch = pytest.importorskip("torch")
    from westron import MarianMTModel
    from westron.training.torch_trainer import Trainer

    folder = save_tiny_marian(tmp_path / "hf", encoder_layers=1, decoder_layers=1)
    out = tmp_path / "ddp"
    out.mkdir()
    run_worker(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         WORKER, "pt", folder, os.fspath(out)]
    )  # fmt: skip
    reference = Trainer(
        MarianMTModel.from_pretrained(folder), distributed_worker.arguments(os.fspath(tmp_path / "one"), 2), distributed_worker.batcher(1, 0)
    )
    state = reference.train()
    expected = distributed_worker.step_losses(state)
    assert len(expected) == distributed_worker.STEPS
    np.testing.assert_allclose(read_losses(out), expected, rtol=0, atol=1e-4)
    with open(out / "losses-1.json") as handle:  # the other process saw the same global losses
        np.testing.assert_allclose(json.load(handle), expected, rtol=0, atol=1e-4)

    # One writer: the log holds each step once; the checkpoints and final model are the unwrapped model.
    with open(out / "log.jsonl") as handle:
        steps = [json.loads(line)["step"] for line in handle if '"loss"' in line]
    assert steps == list(range(1, distributed_worker.STEPS + 1))
    assert sorted(os.listdir(out / "final")) == sorted(os.listdir(tmp_path / "one" / "final"))
    trained = MarianMTModel.from_pretrained(os.fspath(out / "final")).state_dict()
    for name, tensor in reference.model.state_dict().items():
        torch.testing.assert_close(trained[name], tensor, rtol=0, atol=1e-4, msg=name)


def test_batches_cut_for_another_number_of_processes_are_refused(tmp_path):
    pytest.importorskip("torch")
    from westron import MarianMTModel
    from westron.training.torch_trainer import Trainer

    model = MarianMTModel.from_pretrained(save_tiny_marian(tmp_path / "hf", encoder_layers=1, decoder_layers=1))
    with pytest.raises(WestronError, match="cut into 2 shards but 1 processes"):
        Trainer(model, distributed_worker.arguments(os.fspath(tmp_path / "out"), 1), distributed_worker.batcher(2, 0))


def test_worker_layout_puts_the_chief_first():
    pytest.importorskip("tensorflow")
    from westron.training.tf_trainer import tf_config_layout, worker_layout

    cluster = {"chief": ["c:1"], "worker": ["w:1", "w:2"], "ps": ["p:1"]}
    assert [worker_layout(cluster, "chief", 0), worker_layout(cluster, "worker", 1)] == [(3, 0), (3, 2)]
    assert tf_config_layout('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}') == (2, 1)
    with pytest.raises(WestronError, match="training runs on the chief and the workers"):
        worker_layout(cluster, "ps", 0)


def test_mirrored_strategy_over_two_devices_gives_the_single_device_losses(tmp_path):
    pytest.importorskip("tensorflow")
    from westron import TFMarianMTModel
    from westron.training.tf_trainer import TFTrainer

    folder = save_tiny_marian(tmp_path / "hf", encoder_layers=1, decoder_layers=1)
    out = tmp_path / "mirrored"
    out.mkdir()
    run_worker([sys.executable, WORKER, "tf", folder, os.fspath(out)])
    reference = TFTrainer(
        TFMarianMTModel.from_pretrained(folder), distributed_worker.arguments(os.fspath(tmp_path / "one"), 2), distributed_worker.batcher(1, 0)
    )
    state = reference.train()
    expected = distributed_worker.step_losses(state)
    assert len(expected) == distributed_worker.STEPS
    np.testing.assert_allclose(read_losses(out), expected, rtol=0, atol=1e-4)
    with open(out / "grad-norms-0.json") as handle:
        np.testing.assert_allclose(json.load(handle), distributed_worker.step_losses(state, "grad_norm"), rtol=1e-4)
    # The final models give the same loss on a batch. (Their weights are not held to 1e-4: the attention's
    # query and key gradients are sums of nearly cancelling terms, whose rounding differs between the two
    # traced programs, and Adam's normalisation turns that noise into whole steps on those weights only.)
    trained = TFTrainer(
        TFMarianMTModel.from_pretrained(os.fspath(out / "final")), distributed_worker.arguments(os.fspath(tmp_path / "check"), 1),
        distributed_worker.batcher(1, 0),
    )  # fmt: skip
    batch = distributed_worker.batcher(1, 0).batch(np.arange(16))
    (mine, tokens), (theirs, _) = trained.evaluation_loss(batch), reference.evaluation_loss(batch)
    assert abs(mine - theirs) / tokens < 1e-4, (mine / tokens, theirs / tokens)


def test_mirrored_strategy_over_one_device_gives_the_losses_without_a_strategy(tmp_path):
    """`westron train --tf-strategy mirrored` on a machine with a single device: one replica."""
    tf = pytest.importorskip("tensorflow")
    from westron import TFMarianMTModel
    from westron.training.tf_trainer import TFTrainer

    folder = save_tiny_marian(tmp_path / "hf", encoder_layers=1, decoder_layers=1)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = TFMarianMTModel.from_pretrained(folder)
    mirrored = TFTrainer(model, distributed_worker.arguments(os.fspath(tmp_path / "one-device"), 1), distributed_worker.batcher(1, 0), strategy=strategy)
    reference = TFTrainer(
        TFMarianMTModel.from_pretrained(folder), distributed_worker.arguments(os.fspath(tmp_path / "plain"), 1), distributed_worker.batcher(1, 0)
    )
    expected = distributed_worker.step_losses(reference.train())
    assert len(expected) == distributed_worker.STEPS
    np.testing.assert_allclose(distributed_worker.step_losses(mirrored.train()), expected, rtol=1e-5)


def test_a_model_built_outside_the_strategy_is_refused(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from westron import TFMarianMTModel
    from westron.training.tf_trainer import TFTrainer

    model = TFMarianMTModel.from_pretrained(save_tiny_marian(tmp_path / "hf", encoder_layers=1, decoder_layers=1))
    with pytest.raises(WestronError, match="outside strategy.scope"):
        TFTrainer(model, distributed_worker.arguments(os.fspath(tmp_path / "out"), 1), distributed_worker.batcher(1, 0),
                  strategy=tf.distribute.MirroredStrategy(["/cpu:0"]))


def test_dropout_under_a_strategy_is_refused_in_one_line(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from westron import TFMarianMTModel
    from westron.training.tf_trainer import TFTrainer

    folder = save_tiny_marian(tmp_path / "hf", encoder_layers=1, decoder_layers=1, dropout=0.1)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = TFMarianMTModel.from_pretrained(folder)
    with pytest.raises(WestronError, match="dropout under a tf.distribute strategy"):
        TFTrainer(model, distributed_worker.arguments(os.fspath(tmp_path / "out"), 1), distributed_worker.batcher(1, 0), strategy=strategy)


def test_bf16_over_two_replicas_gives_the_single_device_bf16_losses(tmp_path):
    """mixed_precision bf16 under MirroredStrategy: each replica's step is traced under the mixed_bfloat16
    policy as the one-device step is, so the per-step losses match one device's bf16 run (accumulating the
    same global batches) to bf16 rounding, and they are not the fp32 losses."""
    pytest.importorskip("tensorflow")
    from westron import TFMarianMTModel
    from westron.training.tf_trainer import TFTrainer

    folder = save_tiny_marian(tmp_path / "hf", encoder_layers=1, decoder_layers=1)
    out = tmp_path / "mirrored"
    out.mkdir()
    run_worker([sys.executable, WORKER, "tf", folder, os.fspath(out), "bf16"])
    expected = {}
    for precision in ("bf16", None):
        args = distributed_worker.arguments(os.fspath(tmp_path / f"one-{precision}"), 2, precision)
        state = TFTrainer(TFMarianMTModel.from_pretrained(folder), args, distributed_worker.batcher(1, 0)).train()
        expected[precision] = np.array(distributed_worker.step_losses(state))
    np.testing.assert_allclose(read_losses(out), expected["bf16"], rtol=2e-2)  # test_trainers.BF16_RTOL: 5 bf16 roundings
    assert np.abs(expected["bf16"] / expected[None] - 1).max() > 1e-5  # bf16 did run
