"""ZenML pipelines: ``training`` (this issue's walking skeleton); retraining and batch inference follow."""
