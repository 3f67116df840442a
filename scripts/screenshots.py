"""Make the README's pictures anew from the current code: the embedded default started as `make up`
starts it, yesterday's daily report built, both shot in headless Chromium.

    .venv/bin/python scripts/screenshots.py          # writes docs/images/web.png and report.png

Every picture under docs/images is one of IMAGES (tests/unit/test_docs.py checks it), so each can be
made again this way after a change of the pages or the report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from stack import BIN, running_up  # noqa: E402

#: The pictures this script makes: docs/images/NAME -> what is shot.
IMAGES = {"web.png": "the web view's overview (/)", "report.png": "yesterday's daily report (report.html)"}


def shoot(url: str, out: Path, size: str) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    profile = out.parent / ".screenshot-profile"
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={profile}", f"--window-size={size}", f"--screenshot={out}", url],
                          capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    if done.returncode != 0 or not out.is_file():
        raise SystemExit(f"chromium could not shoot {url}: {done.stderr[-500:]}")


def main() -> int:
    images = ROOT / "docs" / "images"
    with running_up() as (_up, home, env):
        done = subprocess.run([str(BIN / "pelbiot-jobs"), "report", "daily"], env=env, cwd=home,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"report daily failed: {done.stderr[-500:]}")
        report = max((home / "reports" / "out" / "daily").rglob("report.html"), key=lambda p: p.stat().st_mtime)
        user, _, password = (home / "var" / "flower-credentials").read_text().strip().partition(":")
        port = env["PELBIOT_WEB_PORT"]
        shoot(f"http://{user}:{password}@127.0.0.1:{port}/", images / "web.png", "1280,1100")
        shoot(report.as_uri(), images / "report.png", "1100,1400")
    for name, what in IMAGES.items():
        print(f"docs/images/{name}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
