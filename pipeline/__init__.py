"""What every stage shares: I/O and the one-line error rule (`io`), the one command's settings
(`config`), resume and lock (`state`), the checks between stages (`checks`) and the one
train/val/test cut-off (`splits`). The entry points stay at the repository root."""
