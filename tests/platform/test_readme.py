"""The README's configuration table is generated from app/config.py's SETTINGS."""

from app.config import ROOT, markdown_table


def test_readme_configuration_table_matches_settings():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "regenerate the table: python -c 'from app.config import markdown_table; print(markdown_table())'"


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
