"""Experiment tracking: training metrics to TensorBoard, MLflow or Weights & Biases, all offline.

    tracker = make_tracker(["tensorboard", "mlflow"], output_dir, run_name="marian-en-es", params=args_dict)
    tracker.log({"train/loss": 2.31, "train/learning_rate": 3e-4}, step=100)
    tracker.close()

Both trainers call this one module, so PyTorch and TensorFlow runs land in the same places:

    tensorboard  <output_dir>/tensorboard/<run_name>/   (event files; `tensorboard --logdir <output_dir>/tensorboard`)
    mlflow       <output_dir>/mlflow.db + mlartifacts/   (MLflow's SQLite store; MLFLOW_TRACKING_URI overrides)
    wandb        <output_dir>/wandb/                     (offline unless WANDB_MODE says otherwise)

TensorBoard event files are written with the `tensorboard` package's protos and record framing
(the file format itself) and nothing else, so a PyTorch run loads no TensorFlow and a TensorFlow run
no PyTorch. The ready-made writers cannot promise that: tensorboardX imports torch whenever it is
installed, and `torch.utils.tensorboard`, `tensorboard.summary.Writer` and `tf.summary` open files
through `tf.io.gfile`, which imports TensorFlow whenever it is installed (15 s and a second
framework's threads in a PyTorch training process).

MLflow uses its SQLite store: since MLflow 3.7 the plain-folder store ("./mlruns") refuses to start
unless MLFLOW_ALLOW_FILE_STORE is set and gets no new features; the SQLite file is the local
store MLflow recommends and `mlflow ui --backend-store-uri sqlite:///...` opens it.

Every library is imported only when its tracker is made: `import westron` stays framework- and
tracker-free. Make trackers on the main process only (rank 0) in distributed training.
"""

from __future__ import annotations

import datetime
import importlib
import itertools
import os
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from westron.errors import WestronError

REPORT_TO_CHOICES = ("tensorboard", "mlflow", "wandb", "none")
DEFAULT_REPORT_TO = "tensorboard"
MLFLOW_EXPERIMENT = "westron"
WANDB_PROJECT = "westron"
# MLflow's limits (mlflow.utils.validation): longer parameter values are refused, so they are cut.
MLFLOW_MAX_PARAM_LENGTH = 6000
MLFLOW_PARAMS_PER_BATCH = 100


def import_for(report_to: str, module: str, install: str):
    """Imports a tracking library, or says in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise WestronError(f"report_to {report_to!r} needs the {module} package: pip install '{install}'") from None


def flatten_params(params: Mapping[str, Any] | None, prefix: str = "") -> dict[str, str]:
    """{"optimizer": {"lr": 0.001}} -> {"optimizer.lr": "0.001"}: the flat text form MLflow and TensorBoard show."""
    flat: dict[str, str] = {}
    for key, value in (params or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        else:
            flat[name] = str(value)
    return flat


class Tracker:
    """Where training metrics go: `log` a dict of numbers at a step, `close` once at the end.

    This base class records nothing: it is the tracker for report_to="none".
    """

    name = "none"

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class TensorBoardTracker(Tracker):
    """Scalars in a TensorBoard event file under <output_dir>/tensorboard/<run_name>; params as a text table.

    Written with the tensorboard package's own protos and record framing, which load no framework
    (its SummaryWriter-style writers reach TensorFlow through tf.io.gfile; see the module docstring).
    """

    name = "tensorboard"
    _file_numbers = itertools.count()  # two writers in one process in one second still get two files

    def __init__(self, output_dir: str | os.PathLike, run_name: str, params: Mapping[str, Any] | None = None):
        import_for(self.name, "tensorboard", "westron[track]")
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.log_dir = os.path.join(os.fspath(output_dir), "tensorboard", run_name)
        os.makedirs(self.log_dir, exist_ok=True)
        # TensorBoard finds event files by the "tfevents" in their name; the rest keeps names unique.
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(self._file_numbers)}"
        self.path = os.path.join(self.log_dir, name)
        self._records = RecordWriter(open(self.path, "xb"))
        self._write(file_version="brain.Event:2")  # the first record of every event file
        flat = flatten_params(params)
        if flat:
            rows = "\n".join(f"| {key} | {value} |" for key, value in flat.items())
            self._write_text("params", f"| parameter | value |\n| --- | --- |\n{rows}", step=0)
        self._records.flush()

    def _write(self, **event_fields) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._records.write(Event(wall_time=time.time(), **event_fields).SerializeToString())

    def _write_text(self, tag: str, markdown: str, step: int) -> None:
        """A text-plugin summary: one string tensor, shown in TensorBoard's Text tab."""
        from tensorboard.compat.proto import types_pb2
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.metadata import create_summary_metadata

        tensor = TensorProto(dtype=types_pb2.DT_STRING, string_val=[markdown.encode("utf-8")], tensor_shape=TensorShapeProto())
        value = Summary.Value(tag=tag, tensor=tensor, metadata=create_summary_metadata(display_name=tag, description=""))
        self._write(step=step, summary=Summary(value=[value]))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = [Summary.Value(tag=key, simple_value=float(value)) for key, value in metrics.items()]
        self._write(step=step, summary=Summary(value=values))
        self._records.flush()  # a run stopped at any point keeps everything logged so far

    def close(self) -> None:
        if not self._records.closed:
            self._records.close()


class MLflowTracker(Tracker):
    """One MLflow run (params and metric histories) in <output_dir>/mlflow.db, or in MLFLOW_TRACKING_URI's store."""

    name = "mlflow"

    def __init__(self, output_dir: str | os.PathLike, run_name: str, params: Mapping[str, Any] | None = None):
        import_for(self.name, "mlflow", "westron[track]")
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        output_dir = Path(output_dir).absolute()
        output_dir.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{output_dir / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or MLFLOW_EXPERIMENT
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            artifacts = (output_dir / "mlartifacts").as_uri()
            experiment_id = self.client.create_experiment(experiment_name, artifact_location=artifacts)
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        params = [Param(key, value[:MLFLOW_MAX_PARAM_LENGTH]) for key, value in flatten_params(params).items()]
        for start in range(0, len(params), MLFLOW_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=params[start : start + MLFLOW_PARAMS_PER_BATCH])

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        batch = [Metric(key, float(value), timestamp, step) for key, value in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class WandbTracker(Tracker):
    """A Weights & Biases run under <output_dir>/wandb, offline unless WANDB_MODE is set (`wandb sync` uploads it)."""

    name = "wandb"

    def __init__(self, output_dir: str | os.PathLike, run_name: str, params: Mapping[str, Any] | None = None):
        wandb = import_for(self.name, "wandb", "westron[wandb]")
        os.makedirs(output_dir, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or WANDB_PROJECT,
            name=run_name,
            dir=os.path.abspath(output_dir),
            config=dict(params or {}),
            mode=os.environ.get("WANDB_MODE") or "offline",
            reinit="create_new",  # two trackers (or two trainings) in one process are two runs
            settings=wandb.Settings(silent=True),
        )

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log({key: float(value) for key, value in metrics.items()}, step=step)

    def close(self) -> None:
        self.run.finish()


class MultiTracker(Tracker):
    """Several trackers at once (report_to=["tensorboard", "mlflow"]): each gets every call."""

    def __init__(self, trackers: Sequence[Tracker]):
        self.trackers = list(trackers)
        self.name = "+".join(tracker.name for tracker in self.trackers)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for tracker in self.trackers:
            tracker.log(metrics, step)

    def close(self) -> None:
        """Closes every tracker, even when one fails; then raises the first failure."""
        errors = []
        for tracker in self.trackers:
            try:
                tracker.close()
            except Exception as error:  # noqa: BLE001 (the others must still be closed)
                errors.append(error)
        if errors:
            raise errors[0]


TRACKERS = {"tensorboard": TensorBoardTracker, "mlflow": MLflowTracker, "wandb": WandbTracker}


def parse_report_to(report_to: str | Sequence[str] | None) -> list[str]:
    """"tensorboard", "tensorboard,mlflow" or ["tensorboard", "mlflow"] -> the tracker names; "none" -> []."""
    if report_to is None:
        report_to = DEFAULT_REPORT_TO
    names = report_to.split(",") if isinstance(report_to, str) else list(report_to)
    names = [name.strip().lower() for name in names if name.strip()]
    unknown = [name for name in names if name not in REPORT_TO_CHOICES]
    if unknown:
        raise WestronError(f"unknown report_to {unknown[0]!r} (choose from: {', '.join(REPORT_TO_CHOICES)})")
    if "none" in names:
        if len(names) > 1:
            raise WestronError(f"report_to 'none' cannot be combined with others ({', '.join(names)})")
        return []
    if len(set(names)) != len(names):
        raise WestronError(f"report_to names a tracker twice ({', '.join(names)})")
    return names


def make_tracker(
    report_to: str | Sequence[str] | None = DEFAULT_REPORT_TO,
    output_dir: str | os.PathLike = ".",
    run_name: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Tracker:
    """The tracker(s) `report_to` names, writing under `output_dir`; params (the run's settings) logged once.

    run_name defaults to the start time (2026-11-30_14-05-09).
    """
    names = parse_report_to(report_to)
    run_name = run_name or datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    trackers: list[Tracker] = []
    try:
        for name in names:
            trackers.append(TRACKERS[name](output_dir, run_name, params))
    except BaseException:
        MultiTracker(trackers).close()  # the ones already started are not left open
        raise
    if not trackers:
        return Tracker()
    return trackers[0] if len(trackers) == 1 else MultiTracker(trackers)
