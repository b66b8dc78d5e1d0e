"""The training loop both trainers share (framework-free): when to log, evaluate, save and stop.

`Trainer` (torch_trainer.py) and `TFTrainer` (tf_trainer.py) are twins over this base: each
implements the same framework methods in the same order (seeding, `create_optimizer`,
`train_step`, `evaluation_loss`, saving and loading weights, optimizer moments and random
state); everything else, the loop, the data position, checkpoints and resume, lives here once.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from westron.errors import Terminated, WestronError
from westron.file_utils import atomic_directory
from westron.training.arguments import TrainingArguments
from westron.training.schedules import learning_rate_at
from westron.training.state import (
    FINAL_MODEL_DIR,
    TrainerState,
    append_log,
    check_same_model,
    checkpoint_dir,
    load_optimizer_state,
    load_rng_state,
    python_rng_state,
    resolve_resume_folder,
    restore_python_rng_state,
    rotate_checkpoints,
    save_optimizer_state,
    save_rng_state,
    truncate_log,
)

Batch = Mapping[str, np.ndarray]  # input_ids, attention_mask (B, S); decoder_input_ids, labels (B, T); int32


@dataclass
class StepOutput:
    loss: float  # label-smoothed loss per target token of the (accumulated) batch
    grad_norm: float  # global gradient norm before clipping
    learning_rate: float
    num_tokens: int  # target tokens (labels != -100)


class NonFiniteLossError(WestronError):
    """The loss became NaN or infinite; the update was not applied."""


def count_target_tokens(batch: Batch) -> int:
    return int(np.count_nonzero(np.asarray(batch["labels"]) != -100))


def as_batch_list(batches: Batch | Iterable[Batch]) -> list[Batch]:
    """One batch or the micro-batches of one accumulated update -> a list of batches."""
    return [batches] if isinstance(batches, Mapping) else list(batches)


def no_weight_decay(name: str, shape: tuple[int, ...]) -> bool:
    """Hugging Face's rule, stated on checkpoint names: biases and LayerNorm weights are not decayed.

    LayerNorm weights are the 1-D weights; "bias" in the name also covers T5's relative_attention_bias.
    """
    return len(shape) < 2 or "bias" in name


def pass_length(batches) -> int | None:
    """The number of batches in one pass over `batches`, or None when it has no length (a generator, a
    tf.data.Dataset of unknown or infinite cardinality, whose len() raises TypeError)."""
    try:
        return len(batches)
    except TypeError:
        return None


def check_sharding(train_batches, num_processes: int) -> None:
    """Each of N processes must read its own 1/N of every global batch (TokenBatcher's num_shards=N)."""
    num_shards = getattr(train_batches, "num_shards", None)
    if num_shards is not None and num_shards != num_processes:
        raise WestronError(
            f"the training batches are cut into {num_shards} shards but {num_processes} processes train: "
            f"give each process TokenBatcher(num_shards={num_processes}, shard_index=its rank)"
        )


def check_master_weights(mixed_precision: str | None, weight_dtypes: Iterable[str]) -> None:
    """Mixed precision computes in 16 bits over float32 master weights: a model whose trainable
    weights are already 16-bit (loaded with dtype=) would lose its small updates, so it is refused."""
    others = sorted(set(weight_dtypes) - {"float32"})
    if mixed_precision is not None and others:
        raise WestronError(
            f"mixed_precision {mixed_precision} keeps float32 master weights, but the model's are "
            f"{', '.join(others)}: load it in float32 (without dtype=)"
        )


class BaseTrainer:
    framework: ClassVar[str] = ""
    # Data parallelism over processes (torchrun's ranks, TF's workers): each twin sets these before
    # BaseTrainer.__init__. Every process runs the same loop on its shard of each global batch; only
    # the main process (0) writes logs, trackers and checkpoints, the others wait at a barrier.
    process_index: int = 0
    num_processes: int = 1
    replicas_per_process: int = 1  # TF: a MirroredStrategy's local devices, each taking one batch per micro-step

    def __init__(
        self,
        model,
        args: TrainingArguments,
        train_batches: Iterable[Batch],
        *,
        eval_batches: Iterable[Batch] | Callable[[], Iterable[Batch]] | None = None,
        tokenizer=None,
        data_state=None,
        compute_metrics: Callable[[Any], Mapping[str, float]] | None = None,
        tracker=None,
        callbacks: Iterable[Callable[["BaseTrainer", dict], None]] = (),
    ):
        """model: a Westron seq2seq LM of this trainer's framework. train_batches: any iterable of
        batches (a re-iterable one starts a new epoch when it ends; westron.data's TokenBatcher is
        endless and counts epochs itself). data_state: an object with state_dict()/load_state_dict()
        holding the data position (default: train_batches when it has them; otherwise the trainer
        counts batches and skips as many on resume). compute_metrics(model) -> {"bleu": ...} adds
        metrics to evaluate(). tracker: an object with log(metrics, step) and close().
        callbacks: called as callback(trainer, logs) after every update."""
        if getattr(model, "quantization", None) is not None:  # its int8 matrices have no gradients: only the rest would train
            raise WestronError(
                f"this model was quantized ({model.quantization}) for inference and cannot be trained: "
                "train the float model and load it with quantization= where it runs"
            )
        self.model = model
        self.args = args
        self.train_batches = train_batches
        self.eval_batches = eval_batches
        self.tokenizer = tokenizer
        if data_state is None and hasattr(train_batches, "state_dict") and hasattr(train_batches, "load_state_dict"):
            data_state = train_batches
        self.data_state = data_state
        self.compute_metrics = compute_metrics
        self.tracker = tracker
        self.callbacks = list(callbacks)
        self.state = TrainerState(framework=self.framework, model_type=model.config.model_type)
        self._iterator = None
        self._batches_consumed = 0
        self._passes = 0
        self._batches_this_pass = 0
        # A plain list (a sized iterable without a data state) ends its pass with its last batch: waiting
        # for StopIteration would make epochs=1 train on one batch of the next pass too.
        self._pass_length = pass_length(train_batches) if data_state is None else None
        self._should_stop_early = False
        self._last_saved_step = -1
        self._completed_position = None  # the data position after the last completed update
        check_sharding(train_batches, self.num_processes)
        args.validate()  # again: fields set after the arguments were made (args.max_steps = ..., as HF users do)
        for name in ("eval_steps", "early_stopping_patience"):
            if eval_batches is None and getattr(args, name) is not None:
                raise WestronError(f"TrainingArguments.{name} = {getattr(args, name)} needs eval_batches (it would be ignored)")
        if eval_batches is None and compute_metrics is not None:
            raise WestronError("compute_metrics runs in evaluation, which needs eval_batches (it would be ignored)")
        self.seed(args.seed)
        self.create_optimizer()

    # ---- framework parts (each twin implements these, in this order) ------------------------------------

    def seed(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)

    def create_optimizer(self) -> None:
        raise NotImplementedError

    def train_step(self, batches: Batch | Iterable[Batch]) -> StepOutput:
        raise NotImplementedError

    def evaluation_loss(self, batch: Batch) -> tuple[float, int]:
        """(sum of the plain cross-entropy over target tokens, number of target tokens)."""
        raise NotImplementedError

    def model_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def load_model_weights(self, folder: str) -> None:
        raise NotImplementedError

    def optimizer_moments(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def load_optimizer_moments(self, moments: Mapping[str, np.ndarray], step: int) -> None:
        raise NotImplementedError

    def framework_rng_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def restore_framework_rng_state(self, rng: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def barrier(self) -> None:
        """Waits until every process reaches this point (a no-op in a single process)."""
        raise NotImplementedError

    @property
    def is_main_process(self) -> bool:
        return self.process_index == 0

    # ---- the data stream ---------------------------------------------------------------------------------

    def _next_batch(self) -> Batch:
        for _ in range(2):
            if self._iterator is None:
                self._iterator = iter(self.train_batches)
            try:
                batch = next(self._iterator)
            except StopIteration:
                self._iterator = None
                self._passes += 1
                self._batches_this_pass = 0
                continue
            self._batches_consumed += 1
            self._batches_this_pass += 1
            if self._batches_this_pass == self._pass_length:
                self._iterator, self._passes, self._batches_this_pass = None, self._passes + 1, 0
            return batch
        raise WestronError("the training batches are empty (or a one-shot iterator that has run out)")

    def next_batches(self) -> list[Batch]:
        """This process's batches of the next update: gradient_accumulation micro-steps, each of one
        batch per local replica."""
        return [self._next_batch() for _ in range(self.args.gradient_accumulation * self.replicas_per_process)]

    @property
    def epoch(self) -> float:
        """Passes over the training data, fractional as Hugging Face counts them (so epochs=0.5 is half a
        pass): a batcher's epochs_done (else its whole epochs), or the passes over a plain iterable."""
        for source in (self.data_state, self.train_batches):
            counted = getattr(source, "epochs_done", None)
            if counted is None:
                counted = getattr(source, "epoch", None)
            if counted is not None:
                return float(counted)
        if self._pass_length:
            return self._passes + self._batches_this_pass / self._pass_length
        return float(self._passes)

    def _data_position(self) -> dict[str, Any]:
        if self.data_state is not None:
            return {"state_dict": self.data_state.state_dict()}
        return {"batches_consumed": self._batches_consumed, "passes": self._passes}

    def _restore_data_position(self, position: Mapping[str, Any] | None) -> None:
        if not position:
            return
        if "state_dict" in position:
            if self.data_state is None:
                raise WestronError("the checkpoint holds a batcher's data position but this run's batches have no load_state_dict()")
            self.data_state.load_state_dict(position["state_dict"])
            return
        for _ in range(position["batches_consumed"]):  # plain iterables: replay to the same place
            self._next_batch()

    # ---- training ----------------------------------------------------------------------------------------

    def learning_rate(self, step: int) -> float:
        return learning_rate_at(step, self.args, self.state.train_time)

    def train(self, resume_from: str | bool | None = None) -> TrainerState:
        """Trains until max_steps, epochs or max_time (the first reached) or early stopping.

        resume_from: a checkpoint folder, an output_dir (its last checkpoint), or True (this run's
        output_dir, when it has one). A KeyboardInterrupt saves a checkpoint and is raised again;
        a NaN/inf loss raises a WestronError and leaves the last checkpoint as it was.
        """
        args = self.args
        if resume_from:
            folder = resolve_resume_folder(resume_from, args.output_dir)
            if folder is not None:
                self.resume(folder)
        started = time.monotonic() - self.state.elapsed_time  # max_time counts the runs this one resumes too
        self._completed_position = self._data_position()
        bar = self._progress_bar()
        window: list[float] = []
        window_tokens, window_time = 0, 0.0
        try:
            while not self._should_stop(started):
                batches = self.next_batches()
                step_started = time.perf_counter()
                output = self.train_step(batches)
                elapsed = time.perf_counter() - step_started
                self.state.global_step += 1
                self._completed_position = self._data_position()  # a Ctrl-C mid-update resumes before its batches
                self.state.tokens_seen += output.num_tokens
                self.state.train_time += elapsed
                self.state.elapsed_time = time.monotonic() - started
                self.state.epoch = self.epoch
                window.append(output.loss)
                window_tokens += output.num_tokens
                window_time += elapsed
                logs = {"loss": output.loss, "learning_rate": output.learning_rate, "grad_norm": output.grad_norm}
                if self.state.global_step % args.logging_steps == 0:
                    logs = self._log_window(window, window_tokens, window_time, output)
                    window, window_tokens, window_time = [], 0, 0.0
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(self._bar_postfix(output, started), refresh=False)
                for callback in self.callbacks:
                    callback(self, logs)
                if args.eval_steps and self.eval_batches is not None and self.state.global_step % args.eval_steps == 0:
                    self.evaluate()
                if args.save_steps and self.state.global_step % args.save_steps == 0 and self.state.global_step > self._last_saved_step:
                    self.save_checkpoint()  # unless an improved evaluation just saved this step
        except (KeyboardInterrupt, Terminated):  # Ctrl-C, or SIGTERM/SIGHUP under the CLI (a preempted job)
            if self.state.global_step > self._last_saved_step and self.state.global_step > 0:
                self.save_checkpoint()
            self._close(bar)
            raise
        except BaseException:
            self._close(bar)
            raise
        if window:  # the steps since the last logged window: a short run still leaves its loss in the log
            self._log_window(window, window_tokens, window_time, output)
        if self.eval_batches is not None and not (args.eval_steps and self.state.global_step % args.eval_steps == 0):
            self.evaluate()
        if self.state.global_step > self._last_saved_step:
            self.save_checkpoint()
        self.save_model(os.path.join(args.output_dir, FINAL_MODEL_DIR))
        self._close(bar)
        return self.state

    def _log_window(self, window: list[float], tokens: int, seconds: float, output: StepOutput) -> dict[str, float]:
        """Logs the mean loss and the throughput of the steps since the last log."""
        logs = {
            "loss": float(np.mean(window)),
            "learning_rate": output.learning_rate,
            "grad_norm": output.grad_norm,
            "tokens_per_second": tokens / max(seconds, 1e-9),
            "tokens_seen": self.state.tokens_seen,
            "epoch": self.state.epoch,
        }
        self.log(logs)
        return logs

    def _should_stop(self, started: float) -> bool:
        args = self.args
        if args.max_steps is not None and self.state.global_step >= args.max_steps:
            return True
        if args.epochs is not None and self.epoch >= args.epochs:
            return True
        if args.max_time is not None and self.state.global_step and time.monotonic() - started >= args.max_time:
            return True  # checked after each update: training makes at least one
        return self._should_stop_early

    def _progress_bar(self):
        show = self.args.progress_bar
        if not self.is_main_process:
            return None
        if show is None:
            show = sys.stderr.isatty()
        if not show:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.args.max_steps, initial=self.state.global_step, unit="step", dynamic_ncols=True)

    def _bar_postfix(self, output: StepOutput, started: float) -> dict[str, str]:
        postfix = {"loss": f"{output.loss:.3f}", "lr": f"{output.learning_rate:.2e}"}
        if self.state.train_time > 0:
            postfix["tok/s"] = f"{self.state.tokens_seen / self.state.train_time:.0f}"
        if self.args.max_time is not None:
            postfix["left"] = f"{max(0.0, self.args.max_time - (time.monotonic() - started)):.0f}s"
        return postfix

    def _close(self, bar) -> None:
        self._completed_position = None  # outside train(), save_state reads the position afresh
        if bar is not None:
            bar.close()
        if self.tracker is not None:
            self.tracker.close()

    def log(self, metrics: Mapping[str, float]) -> None:
        record = {"step": self.state.global_step, **metrics}
        self.state.log_history.append(record)
        if not self.is_main_process:
            return
        append_log(self.args.output_dir, record)
        if self.tracker is not None:
            self.tracker.log(dict(metrics), self.state.global_step)

    def check_finite(self, loss: float, grad_norm: float | None = None) -> None:
        """Raises NonFiniteLossError (a WestronError) before a bad update is applied."""
        if not math.isfinite(loss) or (grad_norm is not None and not math.isfinite(grad_norm)):
            what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {grad_norm}"
            raise NonFiniteLossError(
                f"training diverged at step {self.state.global_step + 1}: {what} (the update was not applied; "
                f"lower learning_rate or check the data; the last checkpoint in {self.args.output_dir} is intact)"
            )

    # ---- evaluation --------------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Validation loss (plain cross-entropy per target token) and its perplexity, plus
        compute_metrics(model) (e.g. BLEU), each prefixed eval_. Updates the best metric and
        early stopping, and saves a checkpoint when the metric improved."""
        if self.eval_batches is None:
            raise WestronError("evaluate() needs eval_batches")
        batches = self.eval_batches() if callable(self.eval_batches) else self.eval_batches
        loss_sum, tokens = 0.0, 0
        for batch in batches:
            batch_loss, batch_tokens = self.evaluation_loss(batch)
            loss_sum += batch_loss
            tokens += batch_tokens
        if tokens == 0:
            raise WestronError("the validation batches hold no target tokens (a one-shot iterator can be evaluated once)")
        metrics = {"eval_loss": loss_sum / tokens, "eval_perplexity": math.exp(min(loss_sum / tokens, 50.0))}
        if self.compute_metrics is not None:
            for name, value in self.compute_metrics(self.model).items():
                metrics[name if name.startswith("eval_") else f"eval_{name}"] = float(value)
        self.log(metrics)
        self._update_best(metrics)
        return metrics

    def _update_best(self, metrics: Mapping[str, float]) -> None:
        name = self.args.metric_for_best_model
        if name not in metrics:
            raise WestronError(f"metric_for_best_model {name!r} is not among the evaluation metrics: {', '.join(metrics)}")
        value, best = metrics[name], self.state.best_metric
        improved = best is None or (value > best if self.args.best_is_greater else value < best)
        if improved:
            self.state.best_metric = value
            self.state.evaluations_without_improvement = 0
            self.state.best_checkpoint = checkpoint_dir(self.args.output_dir, self.state.global_step)
            if self.state.global_step > self._last_saved_step and self.state.global_step > 0:
                self.save_checkpoint()
        else:
            self.state.evaluations_without_improvement += 1
            patience = self.args.early_stopping_patience
            if patience is not None and self.state.evaluations_without_improvement >= patience:
                self._should_stop_early = True

    # ---- checkpoints -------------------------------------------------------------------------------------

    def save_model(self, folder: str) -> None:
        """The model (and tokenizer) alone, as a folder any Westron or HF loader reads, swapped in atomically.
        Written by the main process; every process returns once it is there."""
        if self.is_main_process:
            with atomic_directory(folder) as tmp:
                self.model.save_pretrained(tmp)
                if self.tokenizer is not None:
                    self.tokenizer.save_pretrained(tmp)
        self.barrier()

    def save_state(self, folder: str) -> None:
        """Writes everything a checkpoint holds into an existing folder (model files first)."""
        self.model.save_pretrained(folder)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(folder)
        save_optimizer_state(folder, self.optimizer_moments(), self.state.global_step)
        save_rng_state(folder, {**python_rng_state(), **self.framework_rng_state()})
        self.state.data_state = self._completed_position if self._completed_position is not None else self._data_position()
        self.state.framework = self.framework
        self.state.save(folder)

    def save_checkpoint(self) -> str:
        """output_dir/checkpoint-{step}, written as a whole (atomic_directory), then old ones rotated out.
        Written by the main process (the weights are the same in every process); the others wait for it."""
        folder = checkpoint_dir(self.args.output_dir, self.state.global_step)
        if self.is_main_process:
            with atomic_directory(folder) as tmp:
                self.save_state(tmp)
            rotate_checkpoints(self.args.output_dir, self.args.keep_checkpoints, best=self.state.best_checkpoint)
        self._last_saved_step = self.state.global_step
        self.barrier()
        return folder

    def resume(self, folder: str) -> None:
        """Loads weights, optimizer moments, random state, data position and counters from a checkpoint
        (of either framework: the weights and moments are stored under the shared checkpoint names)."""
        check_same_model(folder, self.model.config.model_type, self.model_shapes())
        state = TrainerState.load(folder)
        self.load_model_weights(folder)
        self.load_optimizer_moments(load_optimizer_state(folder), state.global_step)
        rng = load_rng_state(folder)
        restore_python_rng_state(rng)
        if rng.get("framework") == self.framework:  # dropout streams differ across frameworks anyway
            self.restore_framework_rng_state(rng)
        self._restore_data_position(state.data_state)
        if self.is_main_process:
            truncate_log(self.args.output_dir, state.global_step)
        self._last_saved_step = state.global_step
        self.state = state
        self.state.framework = self.framework
        patience = self.args.early_stopping_patience  # a run that stopped early stays stopped, unless given more patience
        self._should_stop_early = patience is not None and state.evaluations_without_improvement >= patience
