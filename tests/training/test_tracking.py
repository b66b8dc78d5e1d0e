"""Experiment tracking, read back with each library's own reader: TensorBoard's EventAccumulator, MLflow's client, wandb's run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from westron.errors import WestronError
from westron.training.tracking import MultiTracker, Tracker, make_tracker

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"learning_rate": 0.001, "optimizer": {"name": "adamw", "beta2": 0.98}, "framework": "pt"}
FLAT_PARAMS = {"learning_rate": "0.001", "optimizer.name": "adamw", "optimizer.beta2": "0.98", "framework": "pt"}
# Values exact in float32 (TensorBoard stores scalars as float32).
LOGS = [({"train/loss": 2.5, "train/learning_rate": 0.25}, 10), ({"train/loss": 1.75, "eval/bleu": 3.5}, 20)]


@pytest.fixture(autouse=True)
def no_tracking_environment(monkeypatch):
    """The user's own tracking settings must not leak into the tests."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_MODE", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)


def log_all(tracker):
    for metrics, step in LOGS:
        tracker.log(metrics, step)
    tracker.close()


def read_tensorboard(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    scalars = {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
    texts = {}
    for tag in accumulator.Tags()["tensors"]:
        (event,) = accumulator.Tensors(tag)
        texts[tag] = b"".join(event.tensor_proto.string_val).decode("utf-8")
    return scalars, texts


def expected_histories():
    histories: dict[str, list[tuple[int, float]]] = {}
    for metrics, step in LOGS:
        for key, value in metrics.items():
            histories.setdefault(key, []).append((step, value))
    return histories


def test_tensorboard_event_file_reads_back(tmp_path):
    tracker = make_tracker("tensorboard", tmp_path, run_name="run-1", params=PARAMS)
    assert tracker.log_dir == os.path.join(tmp_path, "tensorboard", "run-1")
    log_all(tracker)
    scalars, texts = read_tensorboard(tracker.log_dir)
    assert scalars == expected_histories()
    assert set(texts) == {"params"}
    for key, value in FLAT_PARAMS.items():
        assert f"| {key} | {value} |" in texts["params"]


def test_tensorboard_tracker_loads_no_framework(tmp_path):
    """A TensorFlow run must not load PyTorch for its logs, nor a PyTorch run TensorFlow."""
    probe = (
        "import json, sys\n"
        "from westron.training.tracking import make_tracker\n"
        f"tracker = make_tracker('tensorboard', {str(tmp_path)!r}, run_name='probe', params={{'a': 1}})\n"
        "tracker.log({'loss': 1.0}, 1)\n"
        "tracker.close()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'keras', 'mlflow', 'wandb'})))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
    assert len(list((tmp_path / "tensorboard" / "probe").iterdir())) == 1


def test_tensorboard_and_mlflow_together(tmp_path):
    from mlflow.tracking import MlflowClient

    tracker = make_tracker("tensorboard,mlflow", tmp_path, run_name="run-1", params=PARAMS)
    assert isinstance(tracker, MultiTracker) and tracker.name == "tensorboard+mlflow"
    tensorboard, mlflow = tracker.trackers
    assert mlflow.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_all(tracker)
    assert read_tensorboard(tensorboard.log_dir)[0] == expected_histories()

    # A second run in the same output folder joins the same experiment (a resumed or repeated training).
    second = make_tracker(["mlflow"], tmp_path, run_name="run-2")
    second.log({"train/loss": 9.0}, 1)
    second.close()

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("westron")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"run-1", "run-2"}
    run = runs["run-1"]
    assert run.info.run_id == mlflow.run_id and run.info.status == "FINISHED"
    assert run.data.params == FLAT_PARAMS
    histories = {
        key: sorted((metric.step, metric.value) for metric in client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }
    assert histories == expected_histories()
    assert runs["run-2"].data.metrics == {"train/loss": 9.0} and runs["run-2"].data.params == {}


def test_wandb_runs_offline_under_the_output_folder(tmp_path):
    wandb = pytest.importorskip("wandb")
    tracker = make_tracker("wandb", tmp_path, run_name="run-1", params=PARAMS)
    run = tracker.run
    assert run.settings.mode == "offline" and run.name == "run-1"
    assert dict(run.config) == PARAMS
    for metrics, step in LOGS:
        tracker.log(metrics, step)
    # wandb commits a step's row when a later step arrives (two log calls at one step share a row):
    # the run's own summary now holds step 10's values.
    summary = {key: run.summary[key] for key in ("train/loss", "train/learning_rate", "_step")}
    assert summary == {"train/loss": 2.5, "train/learning_rate": 0.25, "_step": 10}
    tracker.close()
    wandb.teardown()  # stops wandb's service process, which writes the run's file in the background
    (run_folder,) = (tmp_path / "wandb").glob("offline-run-*")
    (transaction_log,) = run_folder.glob("run-*.wandb")  # what `wandb sync` uploads later
    data = transaction_log.read_bytes()  # (wandb has no Python reader for it; its records hold the keys and JSON values)
    assert b"eval/bleu" in data and b"3.5" in data and b"1.75" in data


@pytest.mark.parametrize(
    "report_to, module, install",
    [("wandb", "wandb", "westron[wandb]"), ("mlflow", "mlflow", "westron[track]"), ("tensorboard", "tensorboard", "westron[track]")],
)
def test_missing_library_is_one_clear_error(tmp_path, monkeypatch, report_to, module, install):
    monkeypatch.setitem(sys.modules, module, None)  # what an uninstalled package looks like to import
    with pytest.raises(WestronError) as caught:
        make_tracker(report_to, tmp_path, run_name="run")
    assert str(caught.value) == f"report_to {report_to!r} needs the {module} package: pip install '{install}'"


def test_none_records_nothing(tmp_path):
    for report_to in ("none", ["none"], []):
        tracker = make_tracker(report_to, tmp_path / "out")
        assert type(tracker) is Tracker
        with tracker:
            tracker.log({"loss": 1.0}, 1)
    assert not (tmp_path / "out").exists()


def test_default_is_tensorboard_with_a_time_stamped_run(tmp_path):
    with make_tracker(output_dir=tmp_path) as tracker:
        tracker.log({"loss": 1.0}, 1)
    (run_dir,) = (tmp_path / "tensorboard").iterdir()
    assert run_dir.name[:2] == "20" and read_tensorboard(run_dir)[0] == {"loss": [(1, 1.0)]}


@pytest.mark.parametrize(
    "report_to, message",
    [
        ("tensorbord", "unknown report_to 'tensorbord'"),
        (["none", "mlflow"], "'none' cannot be combined"),
        ("tensorboard,tensorboard", "names a tracker twice"),
    ],
)
def test_bad_report_to(tmp_path, report_to, message):
    with pytest.raises(WestronError, match=message):
        make_tracker(report_to, tmp_path)
    assert not list(tmp_path.iterdir())
