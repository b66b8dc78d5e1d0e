"""Training in both frameworks: `Trainer` (torch_trainer.py) and `TFTrainer` (tf_trainer.py), twins over
shared arguments (arguments.py), schedules (schedules.py), the loop (base.py) and checkpoint state
(state.py). Importing this package loads neither framework."""
