"""Governance at the front door: the active policy, its sources, and what the filters share."""
