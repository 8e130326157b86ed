"""What a run is asked to do: the typed run config, budgets and the loop's speed-ups."""
