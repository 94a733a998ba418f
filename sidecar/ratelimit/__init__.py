"""Rate limits: token buckets in-process, GCRA in Redis for a limit shared by every replica."""
