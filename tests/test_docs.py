"""The documentation a newcomer reads: a short README that leads into docs/, and no dead links."""

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_stays_short_and_points_into_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) < 8 * 1024, "keep the README to what a newcomer needs"
    linked = {target for target in LINK.findall(readme) if target.startswith("docs/")}
    assert linked == {f"docs/{path.name}" for path in DOCS}, "every docs/ file is linked once"


def test_relative_links_in_the_docs_resolve():
    dead = []
    for page in [ROOT / "README.md", *DOCS]:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                dead.append(f"{page.relative_to(ROOT)} → {target}")
    assert dead == []
