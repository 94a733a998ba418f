"""The governance policy document: its schema, where it is read from, and the one that is active."""
