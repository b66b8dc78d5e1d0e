"""One side of test_distributed.py's comparisons: a tiny Marian trained for a few steps on sharded batches.

    python -m torch.distributed.run --nproc-per-node 2 tests/training/distributed_worker.py pt HF_FOLDER OUT
    python tests/training/distributed_worker.py tf HF_FOLDER OUT    # 2 logical CPU devices, MirroredStrategy
    python tests/training/distributed_worker.py tf HF_FOLDER OUT bf16    # the same in bf16 mixed precision

Each run writes OUT/losses-{rank}.json (the per-step losses that process saw); the main process also
writes the checkpoints and OUT/final/. The single-process reference is `train(...)` with
gradient_accumulation 2: the same global batches, one process.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

STEPS = 6
PAD, EOS = 98, 0  # tests.hf_oracle.tiny_marian_config's ids (its dropout is off)


def corpus(count: int = 64, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Random strings whose target is the source reversed, each ending in eos, of lengths 3 to 8."""
    rng = np.random.default_rng(seed)
    sources, targets = [], []
    for _ in range(count):
        tokens = rng.integers(3, 90, rng.integers(2, 8)).tolist()
        sources.append(np.array(tokens + [EOS], np.int32))
        targets.append(np.array(tokens[::-1] + [EOS], np.int32))
    return sources, targets


def batcher(num_shards: int, shard_index: int):
    from westron.data.batching import TokenBatcher

    sources, targets = corpus()
    return TokenBatcher(
        sources, targets, pad_token_id=PAD, decoder_start_token_id=PAD, batch_size=4, seed=0,
        num_shards=num_shards, shard_index=shard_index,
    )  # fmt: skip


def arguments(output_dir: str, accumulation: int, mixed_precision: str | None = None):
    from westron.training.arguments import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir, learning_rate=3e-3, warmup_steps=2, max_steps=STEPS, label_smoothing=0.1,
        max_grad_norm=1.0, logging_steps=1, save_steps=3, progress_bar=False, gradient_accumulation=accumulation,
        mixed_precision=mixed_precision,
    )  # fmt: skip


def step_losses(state, key: str = "loss") -> list[float]:
    return [record[key] for record in state.log_history if "loss" in record]


def main(framework: str, folder: str, output_dir: str, mixed_precision: str | None = None) -> None:
    if framework == "pt":
        from westron import MarianMTModel
        from westron.training.torch_trainer import Trainer

        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        trainer = Trainer(MarianMTModel.from_pretrained(folder), arguments(output_dir, 1, mixed_precision), batcher(world_size, rank))
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]  # two logical devices: before TF initialises
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from westron import TFMarianMTModel
        from westron.training.tf_trainer import TFTrainer

        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = TFMarianMTModel.from_pretrained(folder)
        rank = 0
        trainer = TFTrainer(model, arguments(output_dir, 1, mixed_precision), batcher(1, 0), strategy=strategy)
    state = trainer.train()
    with open(os.path.join(output_dir, f"losses-{rank}.json"), "w") as handle:
        json.dump(step_losses(state), handle)
    with open(os.path.join(output_dir, f"grad-norms-{rank}.json"), "w") as handle:
        json.dump(step_losses(state, "grad_norm"), handle)


if __name__ == "__main__":
    main(*sys.argv[1:])
