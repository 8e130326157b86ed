"""Where texts come from and what a run reads: sources, labels, splits, the model's files, tokenized batches."""
