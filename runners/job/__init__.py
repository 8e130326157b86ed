"""One run in its own process: the worker, its stages (train, evaluate, serve...), the training loop."""
