"""Jinja2 templates of the reports, installed as the `claire_templates` package."""
