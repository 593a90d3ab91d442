"""The console's web page in a real headless Chromium, against a real `coffer console` over a real
coffer server holding snapshots made by `coffer snapshot create` (helpers_console_site.py).

A free and a premium user log in, browse the chains and a chain's snapshots, open a download,
fetch the URL the dialog shows and check its SHA-256; a wrong password is shown; the page is
used with the keyboard alone and at a phone's width; and the basics a screen reader needs
(labels, names, headings, language, contrast) hold on every view."""
import hashlib
import re
import time
import urllib.parse

import pytest
import requests
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from helpers_console_site import USERS, ConsoleSite, chromium

CHAIN = "ethereum-mainnet"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = ConsoleSite(tmp_path_factory.mktemp("console"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def driver():
    d, cleanup = chromium()
    yield d
    cleanup()


@pytest.fixture()
def browser(driver, site):
    """A fresh visitor for each test: no session cookie, desktop width."""
    driver.set_window_size(1280, 900)
    driver.get(site.url + "/#/")
    driver.delete_all_cookies()
    driver.get("about:blank")  # a new document: the next page's fields start empty
    driver.get_log("browser")  # drop what came before
    return driver


def wait(d, cond, timeout=15, what=""):
    try:
        return WebDriverWait(d, timeout).until(lambda d: cond(d))
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what or cond}; page:\n{d.find_element(By.TAG_NAME, 'body').text}")


def visible(d, css):
    found = [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
    return found[0] if found else None


def badge(d):
    return d.find_element(By.ID, "tier-badge").text


def go(d, site, route):
    d.get(f"{site.url}/#{route}")


def login(d, site, user, password):
    go(d, site, "/login")
    wait(d, lambda d: visible(d, "#login-username"), what="the login form")
    d.find_element(By.ID, "login-username").clear()
    d.find_element(By.ID, "login-username").send_keys(user)
    d.find_element(By.ID, "login-password").send_keys(password)
    d.find_element(By.ID, "login-submit").click()


def login_ok(d, site, user):
    tier, password = USERS[user]
    login(d, site, user, password)
    wait(d, lambda d: d.find_element(By.ID, "user-name").text == user, what=f"{user} logged in")
    assert badge(d) == tier
    assert d.find_element(By.ID, "logout").is_displayed()
    assert not d.find_element(By.ID, "login-link").is_displayed()


def open_chain(d, site, chain):
    go(d, site, "/")
    link = wait(d, lambda d: visible(d, f'#chains-body a[href="#/chains/{chain}"]'), what="the chain list")
    link.click()
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#snapshots-body tr"), what=f"{chain}'s snapshots")
    assert d.find_element(By.ID, "chain-title").text == chain


def open_dialog(d, snapshot_id):
    row = d.find_element(By.CSS_SELECTOR, f'#snapshots-body tr[data-id="{snapshot_id}"]')
    row.find_element(By.CSS_SELECTOR, "button.download").click()
    wait(d, lambda d: d.find_element(By.ID, "download").get_attribute("open") is not None, what="the dialog")
    return d.find_element(By.ID, "download")


def credential(url):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return q["X-Amz-Credential"][0].split("/")[0]


def fetch_sha256(url):
    r = requests.get(url, timeout=60)
    assert r.status_code == 200, r.text[:500]
    return hashlib.sha256(r.content).hexdigest()


def no_page_errors(d):
    """Nothing the page did was refused by the CSP or threw (an API's 4xx is the network's, and expected)."""
    bad = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]
    assert not bad, bad


def test_free_user_browses_downloads_and_logs_out(browser, site):
    d = browser
    login_ok(d, site, "alice")

    # The chain list: every chain with its latest height, a readable size, an age, a count.
    go(d, site, "/")
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chains-body tr")) == 3, what="three chains")
    rows = {r.find_element(By.CSS_SELECTOR, "a").text: r for r in d.find_elements(By.CSS_SELECTOR, "#chains-body tr")}
    assert list(rows) == ["bitcoin", CHAIN, "solana-testnet"]
    eth = rows[CHAIN].text
    assert "21450000" in eth and re.search(r"just now|\d+ (s|min|h|d) ago", eth), eth
    assert re.search(r"\d+(\.\d+)? KiB", eth), eth
    assert rows[CHAIN].find_elements(By.CSS_SELECTOR, "td")[-1].text == "2"

    # A chain: its snapshots newest first, with the SHA-256 shortened and whole in the title.
    open_chain(d, site, CHAIN)
    assert d.title.startswith(CHAIN)
    assert d.execute_script("return location.hash") == f"#/chains/{CHAIN}"
    made = [m for m in site.snapshots if m["namespace"] == CHAIN]
    shown = [r.get_attribute("data-id") for r in d.find_elements(By.CSS_SELECTOR, "#snapshots-body tr")]
    assert shown == [m["id"] for m in reversed(made)]
    latest = site.latest(CHAIN)
    row = d.find_element(By.CSS_SELECTOR, f'#snapshots-body tr[data-id="{latest["id"]}"]')
    assert "21450000" in row.text and "zstd" in row.text
    code = row.find_element(By.CSS_SELECTOR, "code.hash")
    assert code.get_attribute("title") == latest["archive"]["sha256"]
    assert code.text == latest["archive"]["sha256"][:12] + "…"

    # A reload keeps the place.
    d.refresh()
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#snapshots-body tr"), what="the chain after a reload")
    assert d.find_element(By.ID, "chain-title").text == CHAIN

    # The download dialog: the URL, its tier, the commands with copy buttons.
    dialog = open_dialog(d, latest["id"])
    assert dialog.find_element(By.ID, "dl-tier").text == "free"
    # The tier's rate as the operator wrote it (--tier free=50MB/s is 50,000,000 bytes/s).
    assert "up to 50 MB/s" in dialog.find_element(By.ID, "dl-rate").text
    assert dialog.find_element(By.ID, "dl-expires").text
    url = dialog.find_element(By.ID, "dl-url").get_attribute("value")
    assert url.startswith(site.server.endpoint + "/")
    assert credential(url) == site.keys["free"][0]
    commands = dialog.find_elements(By.CSS_SELECTOR, "#dl-commands textarea")
    assert {c.get_attribute("data-command") for c in commands} >= {"curl", "coffer"}
    curl = next(c for c in commands if c.get_attribute("data-command") == "curl").get_attribute("value")
    assert url in curl and "zstd -dc" in curl
    for c in commands:
        assert dialog.find_element(By.CSS_SELECTOR, f'button[data-copy="{c.get_attribute("id")}"]').is_displayed()
    assert dialog.find_element(By.ID, "dl-copy-url").is_displayed()

    # The archive behind the URL is the snapshot: its SHA-256 is the manifest's and the page's.
    sha = fetch_sha256(url)
    assert sha == latest["archive"]["sha256"]
    assert dialog.find_element(By.ID, "dl-sha256").text == sha

    dialog.find_element(By.ID, "dl-close").click()
    wait(d, lambda d: d.find_element(By.ID, "download").get_attribute("open") is None, what="the dialog to close")

    # Logging out: anonymous again, at the free tier.
    d.find_element(By.ID, "logout").click()
    wait(d, lambda d: d.find_element(By.ID, "login-link").is_displayed(), what="logged out")
    assert badge(d) == "free"
    assert not d.find_element(By.ID, "user-name").is_displayed()
    assert d.switch_to.active_element.get_attribute("id") == "login-link"
    assert requests.get(site.url + "/api/v1/me", cookies={c["name"]: c["value"] for c in d.get_cookies()},
                        timeout=10).json()["user"] is None
    no_page_errors(d)


def test_premium_user_gets_a_premium_url(browser, site):
    d = browser
    login_ok(d, site, "bob")
    assert d.find_element(By.ID, "tier-badge").get_attribute("data-tier") == "premium"
    open_chain(d, site, "bitcoin")
    snap = site.latest("bitcoin")
    dialog = open_dialog(d, snap["id"])
    assert dialog.find_element(By.ID, "dl-tier").text == "premium"
    assert "up to 250 MB/s" in dialog.find_element(By.ID, "dl-rate").text
    url = dialog.find_element(By.ID, "dl-url").get_attribute("value")
    assert credential(url) == site.keys["premium"][0] != site.keys["free"][0]
    curl = dialog.find_element(By.CSS_SELECTOR, 'textarea[data-command="curl"]').get_attribute("value")
    assert url in curl and "lz4 -dc" in curl
    assert fetch_sha256(url) == snap["archive"]["sha256"]

    # "Download the latest" asks for the chain's latest: the same archive.
    dialog.find_element(By.ID, "dl-close").click()
    d.find_element(By.ID, "download-latest").click()
    wait(d, lambda d: d.find_element(By.ID, "download").get_attribute("open") is not None, what="the dialog")
    assert snap["id"] in d.find_element(By.ID, "dl-title").text
    d.find_element(By.ID, "dl-close").click()

    d.find_element(By.ID, "logout").click()
    wait(d, lambda d: badge(d) == "free", what="the free badge after logout")
    no_page_errors(d)


def test_encrypted_snapshot_offers_only_coffer(browser, site):
    """No curl pipeline can read an encrypted archive: the dialog says so and offers only the
    coffer command; the table says "yes"."""
    d = browser
    open_chain(d, site, "solana-testnet")
    snap = site.latest("solana-testnet")
    assert snap.get("encryption")
    row = d.find_element(By.CSS_SELECTOR, f'#snapshots-body tr[data-id="{snap["id"]}"]')
    cells = {td.get_attribute("data-label"): td.text for td in row.find_elements(By.CSS_SELECTOR, "td")}
    assert cells["Encrypted"] == "yes" and cells["Compression"] == "zstd"
    dialog = open_dialog(d, snap["id"])
    assert "encrypted" in dialog.find_element(By.ID, "dl-note").text
    commands = [c.get_attribute("data-command") for c in dialog.find_elements(By.CSS_SELECTOR, "#dl-commands textarea")]
    assert commands == ["coffer"]
    assert fetch_sha256(dialog.find_element(By.ID, "dl-url").get_attribute("value")) == snap["archive"]["sha256"]


def test_refused_download_shows_the_api_message(browser, site):
    """A tier without a signing key: the API refuses the download (503) with a message naming
    what is missing, and the page shows that message instead of a dialog."""
    d = browser
    login_ok(d, site, "carol")
    open_chain(d, site, "bitcoin")
    button = d.find_element(By.CSS_SELECTOR, "#snapshots-body button.download")
    button.click()
    err = wait(d, lambda d: visible(d, "#error"), what="the refusal")
    assert "COFFER_CONSOLE_TIER_GOLD_ACCESS_KEY" in err.text, err.text
    assert err.get_attribute("role") == "alert"
    assert d.find_element(By.ID, "download").get_attribute("open") is None
    assert button.is_enabled() and button.get_attribute("aria-busy") is None


def test_proxy_downloads_dialog(browser, site):
    """With --proxy-downloads the dialog's URL is the console's own /download/ link (the same
    origin as the page), and it serves the archive."""
    d = browser
    proxy = site.another_console("--proxy-downloads")
    try:
        d.get(proxy.url + "/#/chains/bitcoin")
        wait(d, lambda d: visible(d, "#snapshots-body tr"), what="the snapshots")
        snap = site.latest("bitcoin")
        dialog = open_dialog(d, snap["id"])
        url = dialog.find_element(By.ID, "dl-url").get_attribute("value")
        assert url.startswith(f"{proxy.url}/download/bitcoin/{snap['id']}?"), url
        assert dialog.find_element(By.ID, "dl-open").get_attribute("href") == url
        assert fetch_sha256(url) == snap["archive"]["sha256"]
        no_page_errors(d)
    finally:
        code = proxy.stop()
        proxy.assert_clean_log()
        assert code == 0


def test_back_button_with_the_dialog_open(browser, site):
    """Hash routes are history entries: Back from a chain with its dialog open closes the dialog
    and shows the chain list, with the focus on its heading, not lost in a hidden view."""
    d = browser
    open_chain(d, site, CHAIN)
    open_dialog(d, site.latest(CHAIN)["id"])
    d.back()
    wait(d, lambda d: visible(d, "#chains-title"), what="the chain list after Back")
    wait(d, lambda d: d.find_element(By.ID, "download").get_attribute("open") is None, what="the dialog to close")
    wait(d, lambda d: d.switch_to.active_element.get_attribute("id") == "chains-title", what="focus on the heading")
    d.forward()
    wait(d, lambda d: d.find_element(By.ID, "chain-title").text == CHAIN and visible(d, "#snapshots-body tr"),
         what="the chain again after Forward")


def test_more_snapshots_follows_next_cursor(browser, site):
    """One snapshot a page: "Show more snapshots" fetches the next page from the API's
    next_cursor, the focus moves to the first new row, and the button goes after the last page."""
    d = browser
    go(d, site, "/")
    wait(d, lambda d: visible(d, "#chains-body tr"), what="the chain list")
    d.execute_script("document.documentElement.dataset.pageSize = '1'")
    open_chain(d, site, CHAIN)
    made = [m["id"] for m in reversed([m for m in site.snapshots if m["namespace"] == CHAIN])]
    rows = lambda d: [r.get_attribute("data-id") for r in d.find_elements(By.CSS_SELECTOR, "#snapshots-body tr")]
    assert rows(d) == made[:1]
    more = d.find_element(By.ID, "snapshots-more")
    assert more.is_displayed()
    more.click()
    wait(d, lambda d: rows(d) == made[:2], what="the second page")
    assert d.switch_to.active_element.get_attribute("data-id") == made[1]
    wait(d, lambda d: not d.find_element(By.ID, "snapshots-more").is_displayed(), what="no more pages")


def test_wrong_password_is_shown_and_nothing_changes(browser, site):
    d = browser
    login(d, site, "alice", "not-her-password")
    err = wait(d, lambda d: visible(d, "#login-error"), what="the login error")
    # The page shows the API's own message, in a region a screen reader announces.
    api = requests.post(site.url + "/api/v1/login", json={"username": "alice", "password": "not-her-password"},
                        timeout=10)
    assert api.status_code == 401
    assert err.text == api.json()["error"]["message"] and err.text
    assert err.get_attribute("role") == "alert"
    assert err.get_attribute("aria-live") in ("assertive", "polite")
    assert d.find_element(By.ID, "login-password").get_attribute("value") == ""
    assert d.find_element(By.ID, "login-password").get_attribute("aria-invalid") == "true"
    assert badge(d) == "free" and d.find_element(By.ID, "login-link").is_displayed()
    assert not d.get_cookies() or "coffer_session" not in {c["name"] for c in d.get_cookies()}


def test_forged_cookie_leaves_an_anonymous_visitor(browser, site):
    """A cookie the console cannot open is no error page: the visitor is anonymous (free), the
    cookie is cleared, and logging in still works."""
    d = browser
    go(d, site, "/")
    wait(d, lambda d: visible(d, "#chains-body tr"), what="the chain list")
    d.add_cookie({"name": "coffer_session", "value": "A" * 80, "path": "/"})
    d.refresh()
    wait(d, lambda d: visible(d, "#chains-body tr"), what="the chain list with a forged cookie")
    assert badge(d) == "free" and d.find_element(By.ID, "login-link").is_displayed()
    assert not visible(d, "#error")
    assert "coffer_session" not in {c["name"] for c in d.get_cookies() if c["value"]}
    login_ok(d, site, "alice")
    no_page_errors(d)


def test_expired_session_says_so(browser, site):
    """A session past its --session-ttl ends unseen (the browser drops the cookie at its
    Max-Age): on the next load the page says so, and the visitor is free again."""
    d = browser
    short = site.another_console("--session-ttl", "1s")
    try:
        d.get(short.url + "/#/login")
        wait(d, lambda d: visible(d, "#login-username"), what="the login form")
        d.find_element(By.ID, "login-username").send_keys("bob")
        d.find_element(By.ID, "login-password").send_keys(USERS["bob"][1])
        d.find_element(By.ID, "login-submit").click()
        wait(d, lambda d: badge(d) == "premium", what="bob logged in")
        time.sleep(2.5)
        d.refresh()
        err = wait(d, lambda d: visible(d, "#error"), what="the notice")
        assert "session as bob has ended" in err.text and "log in" in err.text, err.text
        assert badge(d) == "free" and d.find_element(By.ID, "login-link").is_displayed()
        # Said once: the next view is quiet, and so is a reload.
        d.refresh()
        wait(d, lambda d: visible(d, "#chains-body tr"), what="the chain list")
        assert not visible(d, "#error")
    finally:
        code = short.stop()
        short.assert_clean_log()
        assert code == 0


def test_logout_is_no_ended_session(browser, site):
    d = browser
    login_ok(d, site, "alice")
    d.find_element(By.ID, "logout").click()
    wait(d, lambda d: badge(d) == "free", what="logged out")
    d.refresh()
    wait(d, lambda d: visible(d, "#chains-body tr") or visible(d, "#login-username"), what="a view")
    assert not visible(d, "#error")


def test_too_many_attempts_is_shown(browser, site):
    """Failed logins for one account past the limit: the page shows the API's 429 message, which
    says when to try again."""
    d = browser
    go(d, site, "/login")
    wait(d, lambda d: visible(d, "#login-username"), what="the login form")
    d.find_element(By.ID, "login-username").send_keys("mallory")
    messages = []
    for _ in range(8):
        d.find_element(By.ID, "login-password").send_keys("guess")
        d.find_element(By.ID, "login-submit").click()
        # Answered: the page empties the password field after each refusal.
        wait(d, lambda d: d.find_element(By.ID, "login-submit").is_enabled()
             and d.find_element(By.ID, "login-password").get_attribute("value") == "", what="an answer")
        messages.append(d.find_element(By.ID, "login-error").text)
        if "too many" in messages[-1]:
            break
    assert "too many failed logins" in messages[-1] and re.search(r"try again in \d+ s", messages[-1]), messages
    assert len(messages) > 1 and "too many" not in messages[0]


def tab_until(d, pred, limit=60, within=None):
    """Presses Tab until pred(active element); with within, focus must never leave it."""
    for _ in range(limit):
        d.switch_to.active_element.send_keys(Keys.TAB)
        el = d.switch_to.active_element
        if within is not None:
            assert d.execute_script("return arguments[0].contains(arguments[1])", within, el), \
                f"focus left the dialog for {el.tag_name}#{el.get_attribute('id')}"
        if pred(el):
            return el
    raise AssertionError("Tab never reached the control")


def test_keyboard_alone(browser, site):
    d = browser
    tier, password = USERS["alice"]
    go(d, site, "/login")
    wait(d, lambda d: d.switch_to.active_element.get_attribute("id") == "login-username", what="focus in the form")
    d.switch_to.active_element.send_keys("alice")
    d.switch_to.active_element.send_keys(Keys.TAB)
    assert d.switch_to.active_element.get_attribute("id") == "login-password"
    d.switch_to.active_element.send_keys(password)
    submit = tab_until(d, lambda e: e.get_attribute("id") == "login-submit")
    submit.send_keys(Keys.ENTER)
    wait(d, lambda d: badge(d) == tier and d.find_element(By.ID, "user-name").text == "alice", what="logged in")

    # From the chain list to a chain with Enter on its link; the heading takes focus.
    go(d, site, "/")
    wait(d, lambda d: visible(d, "#chains-body a"), what="the chain list")
    link = tab_until(d, lambda e: e.get_attribute("href") and e.get_attribute("href").endswith(f"#/chains/{CHAIN}"))
    link.send_keys(Keys.ENTER)
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#snapshots-body tr"), what="the snapshots")
    wait(d, lambda d: d.switch_to.active_element.get_attribute("id") == "chain-title", what="focus on the heading")

    opener = tab_until(d, lambda e: "download" in (e.get_attribute("class") or "").split())
    opener_id = opener.get_attribute("data-id")
    opener.send_keys(Keys.ENTER)
    dialog = wait(d, lambda d: d.find_element(By.ID, "download") if d.find_element(By.ID, "download").get_attribute("open") is not None else None,
                  what="the dialog")
    # Focus moved into the dialog, Tab stays in it and reaches the copy buttons.
    assert d.execute_script("return arguments[0].contains(document.activeElement)", dialog)
    copy = tab_until(d, lambda e: e.get_attribute("id") == "dl-copy-url", within=dialog)
    assert copy.text == "Copy URL"
    tab_until(d, lambda e: e.get_attribute("data-copy") and e.get_attribute("data-copy").startswith("dl-cmd-"), within=dialog)
    # Escape closes it and focus goes back to the button that opened it.
    d.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(d, lambda d: d.find_element(By.ID, "download").get_attribute("open") is None, what="Escape to close the dialog")
    back = d.switch_to.active_element
    assert back.get_attribute("data-id") == opener_id and "download" in back.get_attribute("class")

    # The focused control is visibly outlined.
    outline = d.execute_script("const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]")
    assert outline[0] != "none" and float(outline[1].rstrip("px")) >= 2, outline


def test_copy_button_puts_the_url_on_the_clipboard(browser, site):
    d = browser
    origin = site.url
    d.execute_cdp_cmd("Browser.grantPermissions", {"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    open_chain(d, site, "bitcoin")
    dialog = open_dialog(d, site.latest("bitcoin")["id"])
    url = dialog.find_element(By.ID, "dl-url").get_attribute("value")
    button = dialog.find_element(By.ID, "dl-copy-url")
    button.click()
    wait(d, lambda d: button.text == "Copied", what="the button to say Copied")
    copied = d.execute_async_script("navigator.clipboard.readText().then(arguments[0], e => arguments[0]('error: ' + e))")
    assert copied == url
    d.find_element(By.CSS_SELECTOR, 'button[data-copy="dl-cmd-curl"]').click()
    wait(d, lambda d: d.execute_async_script("navigator.clipboard.readText().then(arguments[0])").startswith("curl "),
         what="the curl command on the clipboard")


def no_horizontal_scroll(d):
    widths = d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def test_phone_width(browser, site):
    d = browser
    d.set_window_size(375, 812)
    assert d.execute_script("return window.innerWidth") <= 400
    go(d, site, "/")
    wait(d, lambda d: visible(d, "#chains-body tr"), what="the chain list")
    no_horizontal_scroll(d)
    open_chain(d, site, CHAIN)
    no_horizontal_scroll(d)
    # Cards: the column headings are hidden, each cell names its column itself.
    cell = d.find_element(By.CSS_SELECTOR, "#snapshots-body td")
    assert d.execute_script("return getComputedStyle(arguments[0]).display", cell) == "flex"
    assert d.execute_script("return getComputedStyle(arguments[0], '::before').content", cell) == '"Snapshot"'
    dialog = open_dialog(d, site.latest(CHAIN)["id"])
    no_horizontal_scroll(d)
    assert d.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", dialog)
    d.find_element(By.ID, "dl-close").click()
    go(d, site, "/login")
    wait(d, lambda d: visible(d, "#login-username"), what="the login form")
    no_horizontal_scroll(d)


# What a screen reader and a low-vision reader need, checked in the page itself: the document's
# language; a label for every field; a name for every button and link; headings that never skip
# a level; text with a contrast of 4.5:1 or more against the background behind it.
AUDIT = r"""
const problems = [];
if (!document.documentElement.lang) problems.push("no lang on <html>");
const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
for (const f of document.querySelectorAll("input, textarea, select")) {
  if (!shown(f) || f.getAttribute("aria-hidden") === "true") continue;
  if (!(f.labels && f.labels.length) && !f.getAttribute("aria-label") && !f.getAttribute("aria-labelledby"))
    problems.push("no label: " + (f.id || f.name || f.outerHTML.slice(0, 60)));
}
for (const b of document.querySelectorAll("button, a[href]")) {
  if (!shown(b)) continue;
  if (!(b.getAttribute("aria-label") || b.textContent).trim()) problems.push("no name: " + b.outerHTML.slice(0, 80));
}
let last = 0;
for (const h of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
  if (!shown(h)) continue;
  const level = Number(h.tagName[1]);
  if (last && level > last + 1) problems.push(`heading ${h.tagName} "${h.textContent}" after h${last}`);
  if (!last && level !== 1 && !h.closest("dialog")) problems.push(`first heading is ${h.tagName}`);
  last = level;
}
const rgb = (c) => { const m = c.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
const background = (e) => {
  for (; e; e = e.parentElement) {
    if (e.tagName === "DIALOG" || e === document.documentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0) return c; }
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.a > 0.99) return c;
  }
  return {r: 255, g: 255, b: 255, a: 1};
};
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const e = n.parentElement;
  if (!n.textContent.trim() || !shown(e) || e.closest(".visually-hidden") || e.closest("[hidden]")) continue;
  if (e.closest("button:disabled")) continue;
  const s = getComputedStyle(e);
  if (Number(s.opacity) === 0) continue;
  const fg = rgb(s.color), bg = background(e);
  const a = lum(fg), b = lum(bg);
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} for "${n.textContent.trim().slice(0, 30)}" (${s.color} on rgb(${bg.r},${bg.g},${bg.b}))`);
}
return problems;
"""


def audit(d):
    problems = d.execute_script(AUDIT)
    assert not problems, problems


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_view_passes_the_audit(browser, site, scheme):
    d = browser
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
    try:
        go(d, site, "/")
        wait(d, lambda d: visible(d, "#chains-body tr"), what="the chain list")
        assert d.execute_script("return document.documentElement.lang") == "en"
        audit(d)
        open_chain(d, site, CHAIN)
        audit(d)
        open_dialog(d, site.latest(CHAIN)["id"])
        dialog = d.find_element(By.ID, "download")
        assert dialog.get_attribute("aria-labelledby") == "dl-title"
        audit(d)
        d.find_element(By.ID, "dl-close").click()
        go(d, site, "/login")
        wait(d, lambda d: visible(d, "#login-username"), what="the login form")
        audit(d)
        login(d, site, "nobody", "wrong-password")  # not alice: her failures count towards a limit
        wait(d, lambda d: visible(d, "#login-error"), what="the login error")
        audit(d)
        go(d, site, "/chains/no-such-chain")
        err = wait(d, lambda d: visible(d, "#error"), what="the error for a chain that does not exist")
        assert "no-such-chain" in err.text
        audit(d)
    finally:
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    no_page_errors(d)


def test_page_headers(site):
    """The page as served: the security headers, a strong ETag answered with 304, no framing."""
    r = requests.get(site.url + "/", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert r.headers["Content-Security-Policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" in r.text and "<script>" not in r.text and " style=" not in r.text  # nothing inline
    again = requests.get(site.url + "/", headers={"If-None-Match": r.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    js = re.search(r'src="(app\.js\?v=[0-9a-f]{16})"', r.text).group(1)
    r = requests.get(f"{site.url}/{js}", timeout=10)
    assert r.status_code == 200 and "immutable" in r.headers["Cache-Control"]
    assert requests.get(site.url + "/nothing-here", timeout=10).status_code == 404
    assert requests.post(site.url + "/index.html", timeout=10).status_code == 405


def test_page_requests_are_logged_and_clear_a_bad_cookie(site):
    """The page's files go through the console's request handling like the API: the access log
    counts their bytes, and a cookie the console cannot open is cleared."""
    r = requests.get(site.url + "/app.css", headers={"Cookie": "coffer_session=" + "B" * 60}, timeout=10)
    assert r.status_code == 200 and "Max-Age=0" in r.headers.get("Set-Cookie", "")
    length = len(r.content)
    # The line is written when the request is over, just after the client has the response.
    line = rf"method=GET route=/\{{asset\}} status=200 bytes_out={length} "
    deadline = time.monotonic() + 10
    while not re.search(line, site.console.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert re.search(line, site.console.log()), site.console.log()[-2000:]
    r = requests.head(site.url + "/app.css", timeout=10)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == length
