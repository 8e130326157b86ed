"""What a command will run before it runs it: the jobs, the learning-rate search, the time estimate."""
