"""Model health: the readiness state machine and the background probe that drives it."""
