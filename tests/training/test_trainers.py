"""The PT and TF trainers: the same recipe gives the same losses, exact resume, divergence and Ctrl-C,
checkpoints that cross frameworks and load in Hugging Face transformers."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.hf_oracle import save_tiny_m2m100, save_tiny_marian, save_tiny_t5
from tests.training.batches import ListBatches, copy_task_batches
from westron.errors import WestronError
from westron.training.arguments import TrainingArguments
from westron.training.state import TrainerState, list_checkpoints

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

from westron import (  # noqa: E402  (after the framework checks)
    M2M100ForConditionalGeneration,
    MarianMTModel,
    T5ForConditionalGeneration,
    TFM2M100ForConditionalGeneration,
    TFMarianMTModel,
    TFT5ForConditionalGeneration,
)
from westron.training.tf_trainer import TFTrainer  # noqa: E402
from westron.training.torch_trainer import Trainer  # noqa: E402

# family -> (HF saver, PT class, TF class, token ids: pad, eos, decoder start, lowest ordinary id)
ONE_LAYER = {
    "marian": dict(encoder_layers=1, decoder_layers=1),
    "t5": dict(num_layers=1, num_decoder_layers=1),
    "m2m_100": dict(encoder_layers=1, decoder_layers=1),
}
FAMILIES = {
    "marian": (save_tiny_marian, MarianMTModel, TFMarianMTModel, dict(pad=98, eos=0, start=98, vocab_low=3)),
    "t5": (save_tiny_t5, T5ForConditionalGeneration, TFT5ForConditionalGeneration, dict(pad=0, eos=1, start=0, vocab_low=3)),
    "m2m_100": (
        save_tiny_m2m100,
        M2M100ForConditionalGeneration,
        TFM2M100ForConditionalGeneration,
        dict(pad=1, eos=2, start=2, vocab_low=4),
    ),
}
TRAINERS = {"pt": (Trainer, 1), "tf": (TFTrainer, 2)}  # framework -> (trainer class, model class index)


def save_family(family, folder, **overrides):
    """A tiny HF checkpoint with one encoder and one decoder layer (TF traces a step in seconds per layer)."""
    return FAMILIES[family][0](folder, **{**ONE_LAYER[family], **overrides})


def family_batches(family, count, seed=0, **kwargs):
    ids = FAMILIES[family][3]
    return copy_task_batches(
        count, vocab_low=ids["vocab_low"], vocab_high=90, eos=ids["eos"], pad=ids["pad"], start=ids["start"], seed=seed, **kwargs
    )


def arguments(output_dir, **overrides):
    settings = dict(
        output_dir=os.fspath(output_dir),
        learning_rate=3e-3,
        warmup_steps=5,
        max_steps=20,
        label_smoothing=0.1,
        max_grad_norm=1.0,
        logging_steps=1,
        save_steps=None,
        progress_bar=False,
    )
    settings.update(overrides)
    return TrainingArguments(**settings)


def load(framework, family, folder):
    trainer_class, index = TRAINERS[framework]
    return trainer_class, FAMILIES[family][index].from_pretrained(folder)


def weights(model) -> dict[str, np.ndarray]:
    """The model's checkpoint tensors as numpy (either framework)."""
    if isinstance(model, torch.nn.Module):
        tied = model.tied_weights()
        return {name: t.detach().cpu().numpy() for name, t in model.state_dict().items() if name not in tied}
    return {
        name: variable.numpy().T if transposed else variable.numpy()
        for name, (variable, transposed) in model.checkpoint_variables().items()
    }


# ---- same recipe, same result ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["marian", "t5", pytest.param("m2m_100", marks=pytest.mark.slow)])
def test_same_recipe_gives_the_same_losses_in_both_frameworks(family, tmp_path):
    """From one HF checkpoint, on the same batches, dropout off, with warm-up, clipping, label smoothing and
    weight decay on: the per-step losses of the PT and TF trainers agree for 20 steps, and fine-tuning
    lowers the validation loss in both."""
    folder = save_family(family, tmp_path / "hf")
    train = family_batches(family, 5)
    validation = family_batches(family, 2, seed=1)
    losses, grad_norms = {}, {}
    for framework in TRAINERS:
        trainer_class, model = load(framework, family, folder)
        trainer = trainer_class(model, arguments(tmp_path / framework), ListBatches(train), eval_batches=validation)
        before = trainer.evaluate()["eval_loss"]
        state = trainer.train()
        steps = [record for record in state.log_history if "loss" in record]
        losses[framework] = np.array([record["loss"] for record in steps])
        grad_norms[framework] = np.array([record["grad_norm"] for record in steps])
        after = state.log_history[-1]["eval_loss"]
        assert after < before - 0.05, (framework, before, after)
    assert len(losses["pt"]) == 20
    assert grad_norms["pt"].max() > 1.0  # clipping was active
    np.testing.assert_allclose(losses["tf"], losses["pt"], rtol=1e-4)
    np.testing.assert_allclose(grad_norms["tf"], grad_norms["pt"], rtol=1e-3)


def test_gradient_accumulation_normalises_over_the_whole_batch(tmp_path):
    """Two micro-batches of one update give the same update as their union in one batch. (PyTorch here;
    the TF trainer accumulates in the cross-framework test, which holds it to the PT losses.)"""
    folder = save_family("marian", tmp_path / "hf")
    (whole,) = family_batches("marian", 1, batch_size=8, min_length=4, max_length=4)
    halves = [{name: array[:4] for name, array in whole.items()}, {name: array[4:] for name, array in whole.items()}]
    results = []
    for accumulation, batches in ((1, [whole]), (2, halves)):
        model = MarianMTModel.from_pretrained(folder)
        args = arguments(tmp_path / f"accumulate{accumulation}", gradient_accumulation=accumulation, max_steps=1)
        Trainer(model, args, ListBatches(batches)).train()
        results.append(weights(model))
    for name in results[0]:
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=1e-5, atol=1e-7, err_msg=name)


# ---- exact resume --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("framework", "precision"), [("pt", None), ("tf", None), ("tf", "bf16")])
def test_resume_continues_exactly(framework, precision, tmp_path):
    """Stop after 3 updates, resume in a new trainer and model, continue to 6: the weights are equal
    (bit for bit) to an uninterrupted run's, with dropout on and gradient accumulation (TF: in bf16 too)."""
    folder = save_family("marian", tmp_path / "hf", dropout=0.1, attention_dropout=0.1, activation_dropout=0.1)
    batches = family_batches("marian", 5)
    common = dict(scheduler="inverse-sqrt", gradient_accumulation=2, save_steps=3, weight_decay=0.01, mixed_precision=precision)

    trainer_class, model = load(framework, "marian", folder)
    trainer_class(model, arguments(tmp_path / "whole", max_steps=6, **common), ListBatches(batches)).train()
    uninterrupted = weights(model)

    trainer_class, model = load(framework, "marian", folder)
    trainer_class(model, arguments(tmp_path / "parts", max_steps=3, **common), ListBatches(batches)).train()
    assert not np.array_equal(weights(model)["model.shared.weight"], uninterrupted["model.shared.weight"])
    trainer_class, model = load(framework, "marian", folder)  # a fresh model: everything comes from the checkpoint
    resumed = trainer_class(model, arguments(tmp_path / "parts", max_steps=6, **common), ListBatches(batches))
    state = resumed.train(resume_from=True)
    assert state.global_step == 6
    final = weights(model)
    assert final.keys() == uninterrupted.keys()
    for name in uninterrupted:
        assert np.array_equal(final[name], uninterrupted[name]), name


# ---- stopping: divergence, Ctrl-C, rotation ---------------------------------------------------------------


def poison_weights(model):
    if isinstance(model, torch.nn.Module):
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
    else:
        variable = model.trainable_variables[0]
        variable.assign(np.full(variable.shape, np.nan, np.float32))


@pytest.mark.parametrize("framework", sorted(TRAINERS))
def test_a_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(framework, tmp_path):
    folder = save_family("marian", tmp_path / "hf")
    trainer_class, model = load(framework, "marian", folder)

    def diverge(trainer, logs):
        if trainer.state.global_step == 3:
            poison_weights(trainer.model)

    args = arguments(tmp_path / "out", save_steps=2, max_steps=10)
    trainer = trainer_class(model, args, ListBatches(family_batches("marian", 3)), callbacks=[diverge])
    with pytest.raises(WestronError, match=r"diverged at step 4: loss nan .*checkpoint .* is intact"):
        trainer.train()
    assert [os.path.basename(p) for p in list_checkpoints(args.output_dir)] == ["checkpoint-2"]
    _, reloaded = load(framework, "marian", os.path.join(args.output_dir, "checkpoint-2"))
    assert all(np.isfinite(array).all() for array in weights(reloaded).values())


def test_ctrl_c_saves_a_checkpoint(tmp_path):
    """(The loop that catches it is shared by both trainers.)"""
    framework = "pt"
    folder = save_family("marian", tmp_path / "hf")
    trainer_class, model = load(framework, "marian", folder)

    def interrupt(trainer, logs):
        if trainer.state.global_step == 3:
            raise KeyboardInterrupt

    args = arguments(tmp_path / "out", max_steps=10)
    trainer = trainer_class(model, args, ListBatches(family_batches("marian", 3)), callbacks=[interrupt])
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    (checkpoint,) = list_checkpoints(args.output_dir)
    assert os.path.basename(checkpoint) == "checkpoint-3"
    assert TrainerState.load(checkpoint).global_step == 3
    assert TrainerState.load(checkpoint).data_state == {"state_dict": {"position": 3}}

    class InterruptedStream(ListBatches):
        def __next__(self):
            if self.position == 5:  # while gathering the micro-batches of update 3
                raise KeyboardInterrupt
            return super().__next__()

    args = arguments(tmp_path / "mid", max_steps=10, gradient_accumulation=2)
    trainer = Trainer(MarianMTModel.from_pretrained(folder), args, InterruptedStream(family_batches("marian", 3)))
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    (checkpoint,) = list_checkpoints(args.output_dir)
    assert os.path.basename(checkpoint) == "checkpoint-2"  # resumes before the unfinished update's batches
    assert TrainerState.load(checkpoint).data_state == {"state_dict": {"position": 4}}


def test_termination_saves_a_checkpoint(tmp_path):
    """SIGTERM/SIGHUP, which the CLI turns into Terminated (a preempted job, `timeout`, `docker stop`), save a
    checkpoint of the last completed update as Ctrl-C does."""
    import signal

    from westron.errors import Terminated

    def terminate(trainer, logs):
        if trainer.state.global_step == 3:
            raise Terminated(signal.SIGTERM)

    folder = save_family("marian", tmp_path / "hf")
    args = arguments(tmp_path / "out", max_steps=10)
    trainer = Trainer(MarianMTModel.from_pretrained(folder), args, family_batches("marian", 2), callbacks=[terminate])
    with pytest.raises(Terminated):
        trainer.train()
    assert [os.path.basename(p) for p in list_checkpoints(args.output_dir)] == ["checkpoint-3"]


def test_resume_keeps_one_log_record_per_step(tmp_path):
    """Resuming from checkpoint-4 of a run that went on to step 5 drops the log's later records (and a line
    cut off by a kill): log.jsonl then reads as one run, as the trainer state's log_history does."""
    folder = save_family("marian", tmp_path / "hf")
    batches = family_batches("marian", 2)
    args = arguments(tmp_path / "out", max_steps=5, save_steps=4, keep_checkpoints=None)
    Trainer(MarianMTModel.from_pretrained(folder), args, ListBatches(batches)).train()
    log_path = os.path.join(args.output_dir, "log.jsonl")
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write('{"step": 6, "lo')  # a kill in the middle of an append
    resumed = arguments(tmp_path / "out", max_steps=6, save_steps=4, keep_checkpoints=None)
    Trainer(MarianMTModel.from_pretrained(folder), resumed, ListBatches(batches)).train(
        resume_from=os.path.join(args.output_dir, "checkpoint-4")
    )
    with open(log_path, encoding="utf-8") as handle:
        assert [json.loads(line)["step"] for line in handle] == [1, 2, 3, 4, 5, 6]


def test_rotation_logs_and_tracker(tmp_path):
    class Recorder:
        def __init__(self):
            self.calls, self.closed = [], False

        def log(self, metrics, step):
            self.calls.append((step, dict(metrics)))

        def close(self):
            self.closed = True

    folder = save_family("marian", tmp_path / "hf")
    tracker = Recorder()
    args = arguments(tmp_path / "out", max_steps=5, save_steps=1, keep_checkpoints=2, logging_steps=2)
    Trainer(MarianMTModel.from_pretrained(folder), args, family_batches("marian", 2), tracker=tracker).train()
    assert [os.path.basename(p) for p in list_checkpoints(args.output_dir)] == ["checkpoint-4", "checkpoint-5"]
    assert [step for step, _ in tracker.calls] == [2, 4, 5] and tracker.closed  # 5: the steps after the last full window
    with open(os.path.join(args.output_dir, "log.jsonl"), encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert [r["step"] for r in records] == [2, 4, 5] and {"loss", "learning_rate", "tokens_per_second"} <= records[0].keys()
    # A plain list: two passes were made and the data position is the count of batches consumed.
    state = TrainerState.load(os.path.join(args.output_dir, "checkpoint-5"))
    assert state.data_state == {"batches_consumed": 5, "passes": 2} and state.epoch == 2.5


# ---- across frameworks and into Hugging Face ----------------------------------------------------------------


@pytest.mark.parametrize("first,second", [("pt", "tf"), ("tf", "pt")])
def test_a_checkpoint_continues_in_the_other_framework(first, second, tmp_path):
    """3 updates in one framework, 3 more in the other from its checkpoint (weights and AdamW moments):
    the same losses as 6 updates in one framework; the final folder loads in HF with the same logits."""
    folder = save_family("marian", tmp_path / "hf")
    batches = family_batches("marian", 5)
    common = dict(gradient_accumulation=2, weight_decay=0.01)
    # The reference run is PyTorch's: the first test holds the two frameworks' steps equal.
    whole = Trainer(MarianMTModel.from_pretrained(folder), arguments(tmp_path / "whole", max_steps=6, **common), ListBatches(batches)).train()

    trainer_class, model = load(first, "marian", folder)
    trainer_class(model, arguments(tmp_path / "parts", max_steps=3, **common), ListBatches(batches)).train()
    trainer_class, model = load(second, "marian", folder)
    continued = trainer_class(model, arguments(tmp_path / "parts", max_steps=6, **common), ListBatches(batches))
    state = continued.train(resume_from=True)
    losses = [r["loss"] for r in state.log_history if "loss" in r]
    expected = [r["loss"] for r in whole.log_history if "loss" in r]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)

    import transformers

    final = os.path.join(continued.args.output_dir, "final")
    hf_model = transformers.MarianMTModel.from_pretrained(final).eval()
    ours = MarianMTModel.from_pretrained(final)
    batch = batches[0]
    inputs = {name: torch.as_tensor(batch[name]).long() for name in ("input_ids", "attention_mask", "decoder_input_ids")}
    with torch.no_grad():
        np.testing.assert_allclose(ours(**inputs).logits.numpy(), hf_model(**inputs).logits.numpy(), rtol=1e-4, atol=1e-5)


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    marian = save_family("marian", tmp_path / "hf")
    args = arguments(tmp_path / "out", max_steps=2)
    Trainer(MarianMTModel.from_pretrained(marian), args, family_batches("marian", 2)).train()
    checkpoint = list_checkpoints(args.output_dir)[-1]

    wider = MarianMTModel.from_pretrained(save_family("marian", tmp_path / "wider", d_model=48))
    trainer = Trainer(wider, arguments(tmp_path / "other", max_steps=4), family_batches("marian", 2))
    with pytest.raises(WestronError, match="saved from another marian model"):
        trainer.train(resume_from=checkpoint)
    t5 = T5ForConditionalGeneration.from_pretrained(save_family("t5", tmp_path / "t5"))
    trainer = Trainer(t5, arguments(tmp_path / "t5out", max_steps=4), family_batches("t5", 2))
    with pytest.raises(WestronError, match="it holds a 'marian' model, this run trains a 't5'"):
        trainer.resume(checkpoint)
    with pytest.raises(WestronError, match="not a training checkpoint"):
        trainer.train(resume_from=os.fspath(tmp_path / "hf"))


# ---- training learns ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", sorted(TRAINERS))
def test_a_tiny_model_learns_to_copy_from_scratch(framework, tmp_path):
    """From random weights, 200 updates on random strings of 10 symbols teach a one-layer Marian to copy
    them: greedy generation gets >= 90% of held-out target tokens right (untrained: about 10%)."""
    from westron import MarianConfig

    config = MarianConfig(
        vocab_size=16, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=32,
        pad_token_id=15, eos_token_id=0, decoder_start_token_id=15, forced_eos_token_id=None,
        # Token embeddings large enough not to drown in the sinusoidal positions (init_std 0.02 does).
        scale_embedding=True, init_std=0.1, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
    )  # fmt: skip
    ids = dict(vocab_low=3, vocab_high=13, eos=0, pad=15, start=15, min_length=2, max_length=5)
    train = copy_task_batches(200, batch_size=32, seed=0, **ids)
    (test,) = copy_task_batches(1, batch_size=64, seed=99, **ids)
    args = arguments(tmp_path / "out", learning_rate=3e-3, warmup_steps=30, max_steps=200, logging_steps=50)
    if framework == "pt":
        torch.manual_seed(0)
        model = MarianMTModel(config)
        Trainer(model, args, ListBatches(train)).train()
        generated = model.generate(torch.as_tensor(test["input_ids"]), torch.as_tensor(test["attention_mask"]), max_new_tokens=8)
    else:
        import keras

        keras.utils.set_random_seed(0)
        model = TFMarianMTModel(config)
        TFTrainer(model, args, ListBatches(train)).train()
        generated = model.generate(test["input_ids"], test["attention_mask"], max_new_tokens=8, jit_compile=False)
    generated = np.asarray(generated)[:, 1:]  # without the decoder start token
    labels = test["labels"]
    predicted = np.full_like(labels, -1)
    width = min(labels.shape[1], generated.shape[1])
    predicted[:, :width] = generated[:, :width]
    keep = labels != -100
    assert (predicted[keep] == labels[keep]).mean() >= 0.9


def test_bf16_autocast_trains_with_float32_weights_and_loss(tmp_path):
    """PyTorch bf16 (torch.autocast, CPU here): float32 master weights, a loss within bf16 rounding of
    fp32's (BF16_RTOL). fp16 needs CUDA's loss scaling and is refused elsewhere in one line."""
    folder = save_family("marian", tmp_path / "hf")
    batches = family_batches("marian", 2)
    losses = {}
    for precision in (None, "bf16"):
        model = MarianMTModel.from_pretrained(folder)
        state = Trainer(model, arguments(tmp_path / str(precision), max_steps=3, mixed_precision=precision), batches).train()
        losses[precision] = [r["loss"] for r in state.log_history]
        assert {p.dtype for p in model.parameters()} == {torch.float32}
    np.testing.assert_allclose(losses["bf16"], losses[None], rtol=BF16_RTOL)
    assert losses["bf16"] != losses[None]  # autocast did run in bf16
    with pytest.raises(WestronError, match="fp16 needs a CUDA GPU"):
        Trainer(MarianMTModel.from_pretrained(folder), arguments(tmp_path / "fp16", mixed_precision="fp16"), batches)
    with pytest.raises(WestronError, match="fp16 is PyTorch-only"):
        TFTrainer(TFMarianMTModel.from_pretrained(folder), arguments(tmp_path / "tf-fp16", mixed_precision="fp16"), batches)


# bf16 keeps 8 significant bits: each rounding of an activation or a logit is off by up to 2^-8 = 0.4%
# relative. A loss over a few steps carries several such roundings that need not cancel, so it is held
# to five rounding units of its fp32 value (its float32 rounding is ~1e-6, far below).
BF16_RTOL = 2e-2


def safetensors_dtypes(folder) -> set[str]:
    """The dtypes a model.safetensors stores, as safetensors names them (F32, BF16)."""
    from safetensors import safe_open

    with safe_open(os.path.join(folder, "model.safetensors"), framework="np") as handle:
        return {str(handle.get_slice(name).get_dtype()) for name in handle.keys()}


@pytest.mark.parametrize("family", ["marian", "t5"])
def test_tf_bf16_trains_near_fp32_and_pt_bf16_with_float32_weights(family, tmp_path):
    """The TF trainer's bf16 (Keras' mixed_bfloat16 policy while its steps are traced): the loss falls, each
    step's loss is within bf16 rounding of the fp32 run's and of the PT bf16 run's from the same weights and
    batches, and the variables, optimizer state and saved checkpoint stay float32, as after an fp32 run."""
    folder = save_family(family, tmp_path / "hf")
    batches = family_batches(family, 2)
    losses, configs = {}, {}
    for framework, precision in (("tf", None), ("tf", "bf16"), ("pt", "bf16")):
        trainer_class, model = load(framework, family, folder)
        output_dir = tmp_path / f"{framework}-{precision}"
        trainer = trainer_class(model, arguments(output_dir, max_steps=8, mixed_precision=precision), ListBatches(batches))
        state = trainer.train()
        losses[framework, precision] = np.array([record["loss"] for record in state.log_history if "loss" in record])
        if framework == "tf":
            assert {v.dtype for v in model.weights if v.dtype.startswith("float")} == {"float32"}
            assert {v.dtype for v in trainer.optimizer.variables if v.dtype.startswith("float")} == {"float32"}
            assert model.dtype_policy.name == "float32"  # the model outside the trainer's steps is as it was
            assert safetensors_dtypes(output_dir / "final") == safetensors_dtypes(output_dir / "checkpoint-8") == {"F32"}
            with open(output_dir / "final" / "config.json") as handle:
                configs[precision] = json.load(handle)
    bf16, fp32 = losses["tf", "bf16"], losses["tf", None]
    assert bf16[-1] < bf16[0] - 0.1, bf16
    np.testing.assert_allclose(bf16, fp32, rtol=BF16_RTOL)
    assert np.abs(bf16 / fp32 - 1).max() > 1e-5  # it did compute in bf16 (a second fp32 run differs by ~1e-7)
    np.testing.assert_allclose(bf16[:4], losses["pt", "bf16"][:4], rtol=BF16_RTOL)
    assert configs["bf16"] == configs[None]  # "dtype": "float32" as well


def test_tf_bf16_compiles_with_xla(tmp_path):
    """xla=True jit-compiles the step traced under the mixed_bfloat16 policy: losses within bf16 rounding of
    the fp32 step's, and not equal to them."""
    folder = save_family("marian", tmp_path / "hf")
    batches = family_batches("marian", 2)
    losses = {}
    for precision, xla in ((None, False), ("bf16", True)):
        args = arguments(tmp_path / str(precision), max_steps=3, mixed_precision=precision, xla=xla)
        state = TFTrainer(TFMarianMTModel.from_pretrained(folder), args, ListBatches(batches)).train()
        losses[precision] = np.array([record["loss"] for record in state.log_history if "loss" in record])
    np.testing.assert_allclose(losses["bf16"], losses[None], rtol=BF16_RTOL)
    assert np.abs(losses["bf16"] / losses[None] - 1).max() > 1e-5  # it did compute in bf16


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_bf16_refuses_a_model_without_float32_weights(framework, tmp_path):
    folder = save_family("marian", tmp_path / "hf")
    model_class, trainer_class = (MarianMTModel, Trainer) if framework == "pt" else (TFMarianMTModel, TFTrainer)
    model = model_class.from_pretrained(folder, dtype="bfloat16")
    batches = family_batches("marian", 1)
    with pytest.raises(WestronError, match="bf16 keeps float32 master weights, but the model's are bfloat16"):
        trainer_class(model, arguments(tmp_path / "out", mixed_precision="bf16"), batches)
    trainer_class(model, arguments(tmp_path / "plain"), batches)  # bf16 weights without mixed precision: as asked


def test_evaluation_metrics_early_stopping_and_max_time(tmp_path):
    """compute_metrics adds eval_ metrics; a metric that stops improving ends the run after `patience`
    evaluations, keeping the best checkpoint; max_time ends a run cleanly with a checkpoint."""
    folder = save_family("marian", tmp_path / "hf")
    batches, validation = family_batches("marian", 2), family_batches("marian", 1, seed=1)
    scores = iter([10.0, 12.0, 11.0, 11.5, 13.0])
    args = arguments(
        tmp_path / "early", max_steps=50, eval_steps=1, early_stopping_patience=2,
        metric_for_best_model="eval_bleu", keep_checkpoints=1,
    )  # fmt: skip
    trainer = Trainer(
        MarianMTModel.from_pretrained(folder), args, batches, eval_batches=validation,
        compute_metrics=lambda model: {"bleu": next(scores)},
    )  # fmt: skip
    state = trainer.train()
    assert state.global_step == 4  # best at step 2, no better at 3 and 4
    assert state.best_metric == 12.0 and state.best_checkpoint.endswith("checkpoint-2")
    evaluations = [r for r in state.log_history if "eval_loss" in r]
    assert [r["eval_bleu"] for r in evaluations] == [10.0, 12.0, 11.0, 11.5]
    assert [os.path.basename(p) for p in list_checkpoints(args.output_dir)] == ["checkpoint-2", "checkpoint-4"]

    # Resumed with the same patience, the stopped run stays stopped; with more, it trains on.
    resumed = Trainer(MarianMTModel.from_pretrained(folder), args, batches, eval_batches=validation, compute_metrics=lambda model: {"bleu": 9.0})
    assert resumed.train(resume_from=True).global_step == 4
    more_patience = arguments(
        tmp_path / "early", max_steps=5, eval_steps=1, early_stopping_patience=3,
        metric_for_best_model="eval_bleu", keep_checkpoints=1,
    )  # fmt: skip
    resumed = Trainer(MarianMTModel.from_pretrained(folder), more_patience, batches, eval_batches=validation, compute_metrics=lambda model: {"bleu": 9.0})
    assert resumed.train(resume_from=True).global_step == 5

    timed = arguments(tmp_path / "timed", max_steps=None, max_time=1e-9)
    state = Trainer(MarianMTModel.from_pretrained(folder), timed, batches).train()
    assert state.global_step == 1  # the clock is checked after each update
    assert [os.path.basename(p) for p in list_checkpoints(timed.output_dir)] == ["checkpoint-1"]
    assert os.path.isfile(os.path.join(timed.output_dir, "final", "model.safetensors"))


def test_epochs_end_with_the_last_batch_and_may_be_fractional(tmp_path):
    """epochs=1 over a plain list of 4 batches is 4 updates (not a 5th from the next pass); epochs=0.5 is
    half of them, over a plain list and over a TokenBatcher (epochs count fractionally, as HF's do)."""
    from westron.data.batching import TokenBatcher

    folder = save_family("marian", tmp_path / "hf")
    batches = family_batches("marian", 4)
    for epochs, steps in ((1, 4), (0.5, 2)):
        args = arguments(tmp_path / f"list-{epochs}", max_steps=None, epochs=epochs)
        state = Trainer(MarianMTModel.from_pretrained(folder), args, batches).train()
        assert (state.global_step, state.epoch) == (steps, epochs)
    rows = [row[row != -100] for batch in batches for row in batch["labels"]]  # 32 copy-task examples
    ids = FAMILIES["marian"][3]
    batcher = TokenBatcher(rows, rows, pad_token_id=ids["pad"], decoder_start_token_id=ids["start"], batch_size=8)
    assert len(batcher) == 4
    args = arguments(tmp_path / "batcher", max_steps=None, epochs=0.5)
    state = Trainer(MarianMTModel.from_pretrained(folder), args, batcher).train()
    assert (state.global_step, state.epoch) == (2, 0.5)


def test_max_time_counts_the_time_of_the_runs_a_resume_continues(tmp_path):
    """max_time bounds training over its resumed parts, as max_steps does: a checkpoint that has trained
    its budget resumes to no further update (before, each resumed run got max_time anew, and a
    time-bound linear schedule, already at its end, trained it at learning rate 0)."""
    folder = save_family("marian", tmp_path / "hf")
    batches = family_batches("marian", 2)
    args = arguments(tmp_path / "out", max_steps=2)
    Trainer(MarianMTModel.from_pretrained(folder), args, batches).train()
    checkpoint = os.path.join(args.output_dir, "checkpoint-2")
    state = TrainerState.load(checkpoint)
    assert state.elapsed_time > 0
    state.elapsed_time, state.train_time = 1000.0, 900.0  # as if it had trained 1000 s of its budget
    state.save(checkpoint)

    def no_update(trainer, logs):
        raise AssertionError(f"an update at learning rate {logs['learning_rate']} after the time budget")

    resumed = arguments(tmp_path / "out", max_steps=None, max_time=1000.0, scheduler="linear")
    state = Trainer(MarianMTModel.from_pretrained(folder), resumed, batches, callbacks=[no_update]).train(resume_from=True)
    assert state.global_step == 2


def test_evaluation_settings_without_evaluation_batches_are_refused(tmp_path):
    """eval_steps and early stopping need eval_batches: without them they would be ignored, so they are refused."""
    folder = save_family("marian", tmp_path / "hf")
    for setting in (dict(eval_steps=2), dict(early_stopping_patience=1)):
        with pytest.raises(WestronError, match=f"{next(iter(setting))} = .* needs eval_batches"):
            Trainer(MarianMTModel.from_pretrained(folder), arguments(tmp_path / "out", **setting), family_batches("marian", 2))
    with pytest.raises(WestronError, match="compute_metrics runs in evaluation, which needs eval_batches"):
        Trainer(MarianMTModel.from_pretrained(folder), arguments(tmp_path / "out"), family_batches("marian", 2), compute_metrics=dict)


def test_arguments_changed_after_they_were_made_are_checked_by_the_trainer(tmp_path):
    """HF users set fields after making the arguments (args.scheduler = ...): the trainer validates them again,
    instead of failing with a ValueError traceback at the first update."""
    args = arguments(tmp_path / "out")
    args.scheduler = "linaer"
    with pytest.raises(WestronError, match="TrainingArguments.scheduler = 'linaer' must be one of"):
        Trainer(MarianMTModel.from_pretrained(save_family("marian", tmp_path / "hf")), args, family_batches("marian", 2))


def test_an_evaluation_that_saved_a_step_leaves_save_steps_nothing_to_write(tmp_path):
    """eval_steps = save_steps: an improved evaluation saves the checkpoint, which is written once, not twice."""
    folder = save_family("marian", tmp_path / "hf")
    args = arguments(tmp_path / "out", max_steps=4, eval_steps=2, save_steps=2)
    trainer = Trainer(MarianMTModel.from_pretrained(folder), args, family_batches("marian", 2), eval_batches=family_batches("marian", 1, seed=1))
    saved, save_state = [], trainer.save_state
    trainer.save_state = lambda tmp: (saved.append(trainer.state.global_step), save_state(tmp))
    trainer.train()
    assert saved == [2, 4]


@pytest.mark.parametrize(("framework", "setting"), [("pt", "xla"), ("tf", "compile")])
def test_the_other_frameworks_compiler_setting_is_refused(framework, setting, tmp_path):
    """xla is TensorFlow's and compile PyTorch's: the other trainer would ignore it, so it refuses it."""
    trainer_class, model = load(framework, "marian", save_family("marian", tmp_path / "hf"))
    with pytest.raises(WestronError, match=f"TrainingArguments.{setting} is for"):
        trainer_class(model, arguments(tmp_path / "out", **{setting: True}), family_batches("marian", 1))


def test_tf_data_batches_without_a_length_train(tmp_path):
    """A tf.data.Dataset of unknown or infinite cardinality (len() raises TypeError) is an iterable like
    any other: the trainer counts its passes by StopIteration."""
    folder = save_family("marian", tmp_path / "hf")
    batches = family_batches("marian", 2)
    spec = {name: tf.TensorSpec([None, None], tf.int32) for name in batches[0]}
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=spec).repeat()
    state = TFTrainer(TFMarianMTModel.from_pretrained(folder), arguments(tmp_path / "out", max_steps=3), dataset).train()
    assert state.global_step == 3



def huge_gradients_once_switched_on(framework, monkeypatch):
    """Adds to the trainer's loss a term worth exactly 0 whose gradient is 3e38 times a logit's: the loss
    stays finite while the global gradient norm overflows float32. Returns the switch."""
    import westron.training.tf_trainer as tf_trainer
    import westron.training.torch_trainer as torch_trainer

    module = torch_trainer if framework == "pt" else tf_trainer
    loss_sum = module.label_smoothed_loss_sum
    if framework == "pt":
        factor = torch.zeros(())

        def with_huge_gradients(logits, labels, smoothing):
            return loss_sum(logits, labels, smoothing) + (logits[0, 0, 0] - logits[0, 0, 0].detach()) * factor

        switch = lambda: factor.fill_(3e38)  # noqa: E731
    else:
        factor = tf.Variable(0.0)  # read inside the traced step: switching it needs no retrace

        def with_huge_gradients(logits, labels, smoothing):
            return loss_sum(logits, labels, smoothing) + (logits[0, 0, 0] - tf.stop_gradient(logits[0, 0, 0])) * factor

        switch = lambda: factor.assign(3e38)  # noqa: E731
    monkeypatch.setattr(module, "label_smoothed_loss_sum", with_huge_gradients)
    return switch


@pytest.mark.parametrize("framework", sorted(TRAINERS))
def test_an_infinite_gradient_norm_stops_before_the_update(framework, tmp_path, monkeypatch):
    switch = huge_gradients_once_switched_on(framework, monkeypatch)
    folder = save_family("marian", tmp_path / "hf")
    trainer_class, model = load(framework, "marian", folder)
    at_step_3 = {}

    def blow_up(trainer, logs):
        if trainer.state.global_step == 3:
            switch()
            at_step_3.update(weights(trainer.model))

    args = arguments(tmp_path / "out", save_steps=2, max_steps=10)
    trainer = trainer_class(model, args, ListBatches(family_batches("marian", 3)), callbacks=[blow_up])
    with pytest.raises(WestronError, match=r"diverged at step 4: gradient norm (inf|nan) .*checkpoint .* is intact"):
        trainer.train()
    after = weights(model)
    for name, value in at_step_3.items():  # the update was not applied
        assert np.array_equal(after[name], value), name
