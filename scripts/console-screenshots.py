#!/usr/bin/python3
"""Screenshots of the console's page for docs/console.md, taken from a real site: a coffer
server with snapshots made by `coffer snapshot create`, a real `coffer console`, and Debian's
headless Chromium (the stack of tests/integration/test_console_browser.py).

Usage: COFFER_BIN=build/coffer scripts/console-screenshots.py [OUTDIR]   (default docs/images)
Writes console-chains.png, console-chain.png, console-download.png, console-login.png and
console-phone.png, each a PNG well under 150 KB.
"""
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from helpers_console_site import USERS, ConsoleSite, chromium  # noqa: E402

WIDTH, HEIGHT = 1200, 780
PHONE = (375, 760)


def shoot(d, out, name):
    # Let the fonts settle and any "Copied" flash fade before the picture.
    time.sleep(0.3)
    path = os.path.join(out, f"console-{name}.png")
    d.save_screenshot(path)
    print(f"{path}: {os.path.getsize(path) // 1024} KiB")


def until(d, css):
    return WebDriverWait(d, 15).until(lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()])[0]


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "images"))
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coffer-screens-") as base:
        site = ConsoleSite(base).start()
        d, cleanup = chromium(WIDTH, HEIGHT)
        try:
            d.get(site.url + "/#/login")
            until(d, "#login-username").send_keys("bob")
            d.find_element(By.ID, "login-password").send_keys("not-the-password")
            d.find_element(By.ID, "login-submit").click()
            until(d, "#login-error")
            d.find_element(By.ID, "login-username").click()
            shoot(d, out, "login")

            d.find_element(By.ID, "login-password").send_keys(USERS["bob"][1])
            d.find_element(By.ID, "login-submit").click()
            WebDriverWait(d, 15).until(lambda d: d.find_element(By.ID, "user-name").text == "bob")
            d.get(site.url + "/#/")
            until(d, "#chains-body tr")
            shoot(d, out, "chains")

            d.get(site.url + "/#/chains/ethereum-mainnet")
            until(d, "#snapshots-body tr")
            d.execute_script("document.activeElement.blur()")
            shoot(d, out, "chain")

            d.find_element(By.CSS_SELECTOR, "#snapshots-body button.download").click()
            until(d, "#dl-url")
            shoot(d, out, "download")
            d.find_element(By.ID, "dl-close").click()

            d.set_window_size(*PHONE)
            d.get(site.url + "/#/chains/bitcoin")
            until(d, "#snapshots-body tr")
            d.execute_script("document.activeElement.blur()")
            shoot(d, out, "phone")
        finally:
            cleanup()
            site.stop()


if __name__ == "__main__":
    main()
