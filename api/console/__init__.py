"""The operator console: server-rendered pages, templates, both languages, charts and static files."""
