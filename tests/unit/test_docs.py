"""The README and docs/ say only what is true of the code: every setting they name is read, every
setting read is documented, every command they name exists, every link leads somewhere."""

import re
from pathlib import Path

import pytest

from pelbiot_jobs import config

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = {p: p.read_text() for p in PAGES}
#: Named in the docs but not settings of pelbiot-jobs itself.
NOT_SETTINGS = {"PELBIOT_TEST_MYSQL_HOST", "PELBIOT_TEST_MYSQL_PORT", "PELBIOT_TEST_REDIS_PORT",
                "PELBIOT_WORKER_HOST"}  # the test suite's and docker-compose's own variables


def settings_read() -> set[str]:
    """Every PELBIOT_* variable the settings loader reads, recorded as it reads them (with nothing
    set, and with a production-like environment that takes the other branches)."""
    seen: set[str] = set()
    original = config._Reader.raw

    def raw(self, name):
        seen.add(config.PREFIX + name)
        return original(self, name)

    config._Reader.raw = raw
    try:
        config.load_settings({}, cwd=ROOT / "tests")
        config.load_settings({
            "PELBIOT_BROKER_URL": "redis://127.0.0.1:6379/0", "PELBIOT_APP_DB_URL": "mysql+pymysql://a:b@h/app",
            "PELBIOT_OPS_DB_URL": "mysql+pymysql://a:b@h/ops", "PELBIOT_SMTP_HOST": "mail.example",
            "PELBIOT_SMTP_USER": "u", "PELBIOT_SMTP_PASSWORD": "p", "PELBIOT_MAIL_TO": "ops@example.com",
            "PELBIOT_FLOWER_USER": "f", "PELBIOT_FLOWER_PASSWORD": "fp", "PELBIOT_WEB_USER": "w",
            "PELBIOT_WEB_PASSWORD": "wp", "PELBIOT_INDEX_WINDOW": "02:00-05:00"}, cwd=ROOT / "tests")
    finally:
        config._Reader.raw = original
    return seen


def named_settings() -> dict[str, Path]:
    found = {}
    for page, text in TEXT.items():
        for name in re.findall(r"\bPELBIOT_[A-Z0-9_]*[A-Z0-9]\b", text):
            found.setdefault(name, page)
    return found


def test_every_setting_the_docs_name_is_read():
    read = settings_read()
    for name, page in named_settings().items():
        if name in NOT_SETTINGS or name.startswith("PELBIOT_RECEIVER_"):
            continue  # receivers are named by the operator (PELBIOT_RECEIVER_<NAME>)
        base = name[:-len("_FILE")] if name.endswith("_FILE") else name
        assert base in read, f"{page.relative_to(ROOT)} names {name}, which pelbiot-jobs does not read"


def test_every_setting_read_is_documented_in_the_configuration_page():
    table = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in settings_read() if f"`{name}`" not in table)
    assert not missing, f"docs/configuration.md does not document {missing}"


def commands():
    from pelbiot_jobs.cli import build_parser

    parser = build_parser()
    top = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    out = {}
    for name, sub in top.choices.items():
        nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        out[name] = set(nested[0].choices) if nested else set()
    return out


def code(text: str) -> str:
    """The code in a page: fenced blocks and `spans` (prose says "pelbiot-jobs delivers")."""
    blocks = [re.sub(r"(^|\s)#.*$", "", block, flags=re.M)  # without shell comments
              for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)]
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.S | re.M))
    return "\n".join(blocks + spans)


def test_every_command_the_docs_name_exists():
    known = commands()
    for page, text in TEXT.items():
        for command, rest in re.findall(r"pelbiot-jobs ([a-z][a-z-]*)((?: [a-z][a-z-]*)?)", code(text)):
            if command in ("is",):  # the banner: "pelbiot-jobs is up"
                continue
            assert command in known, f"{page.relative_to(ROOT)} names `pelbiot-jobs {command}`, which does not exist"
            sub = rest.strip()
            if known[command] and sub and re.fullmatch(r"[a-z][a-z-]*", sub) and sub not in known[command]:
                # the word after may be an argument (a task, a kind of report): only a subcommand group checks
                pytest.fail(f"{page.relative_to(ROOT)} names `pelbiot-jobs {command} {sub}`: "
                            f"{command} has {sorted(known[command])}")


def test_every_relative_link_leads_to_a_file():
    for page, text in TEXT.items():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}, which is not there"


def test_the_readme_is_a_quick_start():
    readme = TEXT[ROOT / "README.md"]
    assert len(readme) < 9000, "the README is a five-minute read: move details to docs/"
    assert "make up" in readme and "make test" in readme
    for stale in ("as the later jobs land", "Jobs so far", "has not landed", "C compiler", '"Apply"'):
        for page, text in TEXT.items():
            assert stale not in text, f"{page.relative_to(ROOT)} still says {stale!r}"


def test_the_files_a_user_copies_point_at_docs_that_exist():
    import re

    for name in (".env.example", "docker-compose.yml", "Dockerfile"):
        text = (ROOT / name).read_text()
        for ref in re.findall(r"\b((?:docs/)[\w./-]+\.md)\b", text):
            assert (ROOT / ref).is_file(), (name, ref)
        assert "README.md (" not in text, name  # sections of the README moved to docs/
    assert "docs/configuration.md" in (ROOT / ".env.example").read_text().splitlines()[0]


def test_every_picture_of_the_docs_is_made_by_the_screenshot_script():
    """Each image under docs/images comes from scripts/screenshots.py (made anew from the code)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    text = (ROOT / "scripts" / "screenshots.py").read_text()
    images = {p.name for p in (ROOT / "docs" / "images").iterdir()}
    assert spec is not None and "IMAGES = {" in text
    listed = set(re.findall(r'"([\w-]+\.png)": "', text.split("IMAGES = {", 1)[1].split("}", 1)[0]))
    assert images == listed, (images, listed)
    for name in images:
        assert f'images / "{name}"' in text, name  # the script writes it
    assert "scripts/screenshots.py" in (ROOT / "README.md").read_text()


def test_every_source_file_the_docs_name_exists():
    """A file moved (the layout of docs/architecture.md) leaves no doc pointing at its old place."""
    named = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named |= {(doc.name, path) for path in re.findall(r"\bpelbiot_jobs/[\w/]+\.py\b", doc.read_text())}
    assert named, "the docs name no source file any more: check this test"
    missing = sorted((doc, path) for doc, path in named if not (ROOT / path).is_file())
    assert not missing, missing
