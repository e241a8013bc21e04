"""Numbered SQL migrations (NNNN_name.sql); a package so the .sql files ship in the wheel."""
