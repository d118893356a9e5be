"""Speech emotion recognition: the domain library behind the ZenML pipelines.

Nothing in this package imports ZenML; TensorFlow/Keras are imported lazily
inside the functions that need them so that the CLI and ZenML start fast.
"""

__version__ = "0.1.0"
