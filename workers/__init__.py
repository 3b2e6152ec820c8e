"""Background jobs on RQ: connector work, async scoring, flushes."""
