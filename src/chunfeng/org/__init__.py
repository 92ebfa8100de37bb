"""Units, users, roles, scoped permissions and the audit log."""
