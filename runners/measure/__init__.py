"""Measurements a run takes and the readings they rest on: device and precision, FLOPs, memory, scores, prices."""
