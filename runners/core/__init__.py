"""What every layer of the runner shares: the user-mistake error, exit codes and signals, atomic files."""
