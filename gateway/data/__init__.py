"""What Sugu stores and shows: the tables, content and reference lists, their cached views for
the menus, producers, staff accounts and the audit log, spreadsheets, the demo content."""
