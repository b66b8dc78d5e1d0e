"""`westron compare`: one checkpoint in PyTorch and TensorFlow, side by side.

measure.py runs the measurements into one JSON-able dict (workers per framework and mode in
worker.py, over the twins torch_modes.py / tf_modes.py; equivalence.py, quality.py,
training_logs.py, environment.py); report.py renders Markdown and HTML from that dict alone
(plots.py draws the figures); sections.py is the hook for extra sections; cli.py is the command.
Importing this package loads no framework and no matplotlib.
"""
