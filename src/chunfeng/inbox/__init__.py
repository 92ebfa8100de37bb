"""The in-app inbox of each unit, and delivery of the same messages through Apprise channels."""
