"""Where runs execute: the executors (one process at a time, a local pool, Ray), claims and progress."""
