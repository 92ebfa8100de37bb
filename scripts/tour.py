"""Screenshots for the README's tour: `make demo`'s site in Debian's chromium at 1366×768 and 390×844.

Builds the demo in a fresh temporary folder (its own SQLite file, taxpayer store and files), serves it, signs in as
each demo account in turn and photographs the page it lands on and the pages of its main work, into docs/tour/.
Nothing is fetched from outside; the pictures are the real pages of this checkout.

Run: .venv/bin/python scripts/tour.py [--out docs/tour]   (needs the test extras: playwright, and /usr/bin/chromium)
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Chunfeng2022!"
SIZES = {"desktop": (1366, 768), "phone": (390, 844)}
# (file name, account or None for the public, path, what it shows). A path "first:<page>:<link pattern>" opens the
# first link on <page> matching the pattern, so the tour shows a real item whatever ids the demo drew.
STOPS: list[tuple[str, str | None, str, str]] = [
    ("ask", None, "/ask", "12366 智能咨询:公众提问,答案附依据"),
    ("complaint", None, "/appeals/new", "公众提交诉求与投诉"),
    ("todo", "county", "/ledger/todo", "县局的待办:填报进展"),
    ("assignment", "county", r"first:/ledger/todo:/ledger/assignments/\d+", "一项任务:进展、佐证、预警"),
    ("review", "beijing", "/ledger/review", "省局春风办的审核队列"),
    ("dashboard", "office", "/ledger", "总局台账:各省进度与预警"),
    ("league", "office", "/ledger/league", "督查问效排名"),
    ("handoff", "agent", "/consult/queue", "12366 坐席的转人工队列"),
    ("appeals", "beijing", "/appeals", "诉求办理:时限与分派"),
    ("policies", "service", "/push/policies", "精准推送:政策与规则"),
    ("campaigns", "service", "/push/campaigns", "推送活动与分阶段提醒"),
    ("inbox", "taxpayer", "/push/inbox", "纳税人的消息中心"),
    ("bill", "taxpayer", "/push/bill", "纳税人的红利账单"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_demo(folder: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "CHUNFENG_ENVIRONMENT": "local", "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen([sys.executable, "-m", "chunfeng", "demo", "--port", str(port)], cwd=folder, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the demo stopped before serving (exit {server.returncode})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(1)
    server.terminate()
    raise SystemExit("the demo did not answer /healthz within 10 minutes")


def sign_in(page: Page, base: str, account: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", account)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state("networkidle")


def resolve(page: Page, base: str, path: str) -> str:
    if not path.startswith("first:"):
        return path
    _, where, pattern = path.split(":", 2)
    page.goto(base + where)
    for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))"):
        if re.fullmatch(pattern, href or ""):
            return href
    raise SystemExit(f"no link matching {pattern} on {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "tour")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="chunfeng-tour-") as folder:
        server = serve_demo(Path(folder), port)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                            args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
                for size, (width, height) in SIZES.items():
                    contexts: dict[str | None, Page] = {}
                    for name, account, path, caption in STOPS:
                        if account not in contexts:
                            context = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height},
                                                          device_scale_factor=1)
                            contexts[account] = context.new_page()
                            if account:
                                sign_in(contexts[account], base, account)
                        page = contexts[account]
                        page.goto(base + resolve(page, base, path))
                        page.wait_for_load_state("networkidle")
                        target = args.out / f"{name}-{size}.jpg"
                        page.screenshot(path=str(target), type="jpeg", quality=70)
                        print(f"{target}  {caption}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
