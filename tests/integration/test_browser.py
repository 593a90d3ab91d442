"""A real headless Chromium on a page from another origin: fetch() PUT to a presigned URL under
the bucket's CORS rules, refused without them, and an HTML form upload signed by a boto3 policy
that lands on success_action_redirect."""
import functools
import hashlib
import http.server
import os
import shutil
import tempfile
import threading
import urllib.parse

import pytest
from botocore.exceptions import ClientError
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BUCKET = "web"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The shop's own web server: another port, so another origin than coffer's."""
    root = tmp_path_factory.mktemp("site")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    (root / "index.html").write_text("<!doctype html><title>shop</title><p>shop</p>")
    (root / "done.html").write_text("<!doctype html><title>done</title><p>uploaded</p>")
    yield root, origin
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="coffer-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_script_timeout(30)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


FETCH_PUT = """
const [url, body, done] = arguments;
fetch(url, {method: "PUT", body: body, headers: {"Content-Type": "application/octet-stream"}})
  .then(r => done({ok: true, status: r.status, etag: r.headers.get("ETag")}))
  .catch(e => done({ok: false, error: String(e)}));
"""


def fetch_put(browser, origin, url, body):
    browser.get(origin + "/index.html")
    return browser.execute_async_script(FETCH_PUT, url, body)


def stored(s3, key):
    try:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except ClientError:
        return None


def cors_for(origin):
    return {"CORSRules": [{"AllowedOrigins": [origin], "AllowedMethods": ["PUT", "POST", "GET"],
                           "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 0}]}


def test_fetch_put_to_a_presigned_url_reads_the_etag(browser, site, s3, bucket):
    _, origin = site
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=cors_for(origin))
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "from-page.txt"}, ExpiresIn=300)
    got = fetch_put(browser, origin, url, "made in a browser")
    assert got["ok"], got
    assert got["status"] == 200
    # ETag is readable only because the rule exposes it.
    assert got["etag"] == '"%s"' % hashlib.md5(b"made in a browser").hexdigest()
    assert stored(s3, "from-page.txt") == b"made in a browser"


def test_the_browser_refuses_without_cors(browser, site, s3, bucket):
    _, origin = site
    s3.delete_bucket_cors(Bucket=BUCKET)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "no-cors.txt"}, ExpiresIn=300)
    got = fetch_put(browser, origin, url, "should not land")
    assert not got["ok"] and "Failed to fetch" in got["error"], got
    # The preflight failed, so the PUT itself was never sent.
    assert stored(s3, "no-cors.txt") is None


def test_the_browser_refuses_another_origin(browser, site, s3, bucket):
    _, origin = site
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=cors_for("https://shop.example"))
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "wrong-origin.txt"}, ExpiresIn=300)
    got = fetch_put(browser, origin, url, "should not land")
    assert not got["ok"] and "Failed to fetch" in got["error"], got
    assert stored(s3, "wrong-origin.txt") is None


def test_html_form_upload_lands_on_the_redirect(browser, site, s3, bucket, tmp_path):
    root, origin = site
    back = origin + "/done.html"
    form = s3.generate_presigned_post(
        BUCKET, "products/${filename}",
        Fields={"success_action_redirect": back, "Content-Type": "image/png"},
        Conditions=[{"success_action_redirect": back}, ["starts-with", "$Content-Type", "image/"],
                    ["content-length-range", 1, 10 << 20]],
        ExpiresIn=300)
    hidden = "\n".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in form["fields"].items())
    (root / "upload.html").write_text(f"""<!doctype html><title>upload</title>
<form id="f" action="{form['url']}" method="post" enctype="multipart/form-data">
{hidden}
<input type="file" name="file" id="file">
<input type="submit" value="Upload">
</form>""")
    picture = tmp_path / "lamp.png"
    content = b"\x89PNG\r\n\x1a\n" + os.urandom(200_000)
    picture.write_bytes(content)
    browser.get(origin + "/upload.html")
    browser.find_element(By.ID, "file").send_keys(str(picture))
    browser.find_element(By.ID, "f").submit()
    WebDriverWait(browser, 30).until(lambda d: d.current_url.startswith(back))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query)
    assert query["bucket"] == [BUCKET]
    assert query["key"] == ["products/lamp.png"]
    assert query["etag"] == ['"%s"' % hashlib.md5(content).hexdigest()]
    assert "uploaded" in browser.page_source
    head = s3.head_object(Bucket=BUCKET, Key="products/lamp.png")
    assert head["ContentType"] == "image/png" and head["ContentLength"] == len(content)
    assert stored(s3, "products/lamp.png") == content


FETCH_FORM = """
const [url, fields, done] = arguments;
const data = new FormData();
for (const [k, v] of Object.entries(fields)) data.append(k, v);
data.append("file", new Blob(["from a script"], {type: "text/plain"}), "note.txt");
fetch(url, {method: "POST", body: data})
  .then(async r => done({ok: true, status: r.status, etag: r.headers.get("ETag"), text: await r.text()}))
  .catch(e => done({ok: false, error: String(e)}));
"""


def test_script_form_upload_reads_the_answer(browser, site, s3, bucket):
    """A page's script posts the form with fetch: the answer is readable under the POST rule."""
    _, origin = site
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=cors_for(origin))
    form = s3.generate_presigned_post(BUCKET, "notes/${filename}", Fields={"success_action_status": "201"},
                                      Conditions=[{"success_action_status": "201"}], ExpiresIn=300)
    browser.get(origin + "/index.html")
    got = browser.execute_async_script(FETCH_FORM, form["url"], form["fields"])
    assert got["ok"], got
    assert got["status"] == 201
    assert "<Key>notes/note.txt</Key>" in got["text"]
    assert got["etag"] == '"%s"' % hashlib.md5(b"from a script").hexdigest()
    assert stored(s3, "notes/note.txt") == b"from a script"
    # Without the rule the browser hides the answer from the script (the upload itself is a
    # "simple" request and still lands, as on AWS: CORS protects reads, the policy protects writes).
    s3.delete_bucket_cors(Bucket=BUCKET)
    got = browser.execute_async_script(FETCH_FORM, form["url"], form["fields"])
    assert not got["ok"] and "Failed to fetch" in got["error"], got
