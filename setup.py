"""Packaging beside pyproject.toml: only for what pyproject cannot say.

The report templates live in `templates/` at the top of the repository (next to
`engine/` and `claire_cli/`) and install as the package `claire_templates`, so an
installed `claire` finds them.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["engine*", "claire_cli*"]), "claire_templates"],
    package_dir={"claire_templates": "templates"},
)
