"""Dynamic batching: concurrent ModelInfer calls merged along the batch dimension, for models
that do not batch themselves."""
