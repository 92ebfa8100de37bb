"""The action plan: a notice parsed into categories, items and measures, checked against its own counts."""
