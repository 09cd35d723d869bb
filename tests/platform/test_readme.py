"""The README's configuration table is generated from app/config.py's SETTINGS."""

from app.config import ROOT, markdown_table


def test_readme_configuration_table_matches_settings():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "regenerate the table: python -c 'from app.config import markdown_table; print(markdown_table())'"


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_every_page_the_readme_links_exists():
    import re

    readme = (ROOT / "README.md").read_text()
    links = set(re.findall(r"\]\((docs/[^)#]+)\)", readme))
    assert links, "the README links the docs pages"
    missing = sorted(link for link in links if not (ROOT / link).is_file())
    assert missing == []
