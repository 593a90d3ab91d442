"""A whole snapshot download site, for the console's browser suite and scripts/console-screenshots.py.

Everything is real: a coffer server, two read-only keys in the rate groups free and premium, a
bucket of snapshots made by `coffer snapshot create` (zstd and lz4, with height labels), a users
file written by `coffer console user add`, a `coffer console` reading the bucket and signing
each tier's URLs with that tier's key, and Debian's Chromium driven by chromedriver.
"""
import json
import os
import random
import shutil
import subprocess
import tempfile

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, CofferConsole, CofferServer, s3_client

BUCKET = "snapshots"
# (chain, codec, height, encrypted) in the order they are made: the last of a chain is its latest.
SNAPSHOTS = (
    ("ethereum-mainnet", "lz4", "21449700", False),
    ("ethereum-mainnet", "zstd", "21450000", False),
    ("bitcoin", "lz4", "872000", False),
    ("solana-testnet", "zstd", "301552000", True),
)
TIERS = {"free": "50MB/s", "premium": "250MB/s"}
USERS = {"alice": ("free", "alice-correct-horse-1"), "bob": ("premium", "bob-battery-staple-2"),
         "carol": ("gold", "carol-tier-without-a-key-3")}
# A tier the console knows (--tier) but holds no signing key for: its downloads are refused.
UNSIGNED_TIER = ("gold", "10MB/s")
SESSION_SECRET = "console-session-secret-for-tests-0123456789abcdef"


def chain_data(root, seed):
    """A small data directory shaped like a node's: a few files, some compressible."""
    rng = random.Random(seed)
    os.makedirs(f"{root}/chaindata/ancient")
    with open(f"{root}/chaindata/000001.log", "wb") as f:
        f.write(rng.randbytes(96 << 10))
    with open(f"{root}/chaindata/ancient/headers.cidx", "wb") as f:
        f.write(bytes(range(256)) * 512)
    with open(f"{root}/nodekey", "w") as f:
        f.write(f"{rng.getrandbits(128):032x}\n")
    return root


class ConsoleSite:
    def __init__(self, base, coffer_bin=COFFER_BIN):
        self.base = str(base)
        self.coffer = coffer_bin
        self.server = None
        self.console = None
        self.keys = {}       # tier -> (access key, secret key)
        self.snapshots = []  # manifests (coffer snapshot show), in the order made
        self.users_file = os.path.join(self.base, "users")

    # ---- the store and what it holds -------------------------------------------------------

    def _run(self, args, env=None, stdin=None):
        p = subprocess.run([self.coffer, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"coffer {' '.join(args[:3])}: {p.stderr}"
        return p.stdout

    def _root_env(self):
        env = dict(os.environ, COFFER_ENDPOINT=self.server.endpoint, COFFER_ACCESS_KEY=ACCESS_KEY,
                   COFFER_SECRET_KEY=SECRET_KEY, COFFER_ROOT_USER=ACCESS_KEY, COFFER_ROOT_PASSWORD=SECRET_KEY)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            env.pop(k, None)
        return env

    def _tier_key(self, tier, rate):
        out = self._run(["admin", "key", "add", "--json", "--policy", "readonly", "--bucket", BUCKET,
                         "--rate-group", tier, "--rate", rate], env=self._root_env())
        doc = json.loads(out)
        return doc["access_key"], doc["secret_key"]

    def _snapshot(self, chain, codec, height, encrypted, seed):
        src = chain_data(os.path.join(self.base, f"src-{seed}"), seed)
        env = self._root_env()
        repo = f"s3://{BUCKET}/{chain}"
        extra = []
        if encrypted:
            key = os.path.join(self.base, f"key-{seed}")
            with open(key, "wb") as f:
                f.write(random.Random(seed).randbytes(32))
            extra = ["--encrypt-key-file", key]
        sid = self._run(["snapshot", "create", src, repo, "--compress", codec, "--label", f"height={height}",
                         "--no-progress", *extra], env=env).strip()
        return json.loads(self._run(["snapshot", "show", f"{repo}@{sid}", *extra], env=env))

    def _users(self):
        for name, (tier, password) in USERS.items():
            # --cost 4: bcrypt's cheapest, so that logging in takes no noticeable time in a test.
            self._run(["console", "user", "add", name, "--tier", tier, "--users-file", self.users_file,
                       "--cost", "4"], stdin=password + "\n")

    # ---- the console -----------------------------------------------------------------------

    def _console_env(self):
        env = self._root_env()
        env["COFFER_CONSOLE_SESSION_SECRET"] = SESSION_SECRET
        for tier, (access, secret) in self.keys.items():
            env[f"COFFER_CONSOLE_TIER_{tier.upper()}_ACCESS_KEY"] = access
            env[f"COFFER_CONSOLE_TIER_{tier.upper()}_SECRET_KEY"] = secret
        return env

    def start(self):
        self.server = CofferServer(os.path.join(self.base, "data"), self.base)
        self.server.start()
        s3_client(self.server.endpoint).create_bucket(Bucket=BUCKET)
        self.keys = {tier: self._tier_key(tier, rate) for tier, rate in TIERS.items()}
        for seed, (chain, codec, height, encrypted) in enumerate(SNAPSHOTS):
            self.snapshots.append(self._snapshot(chain, codec, height, encrypted, seed))
        self._users()
        self.console = self.another_console()
        self.url = self.console.url
        return self

    def another_console(self, *extra_args):
        """A console over the same store, users and secrets (the site's own, or one with other
        flags); the caller stops it."""
        secrets = [SECRET_KEY, SESSION_SECRET] + [k[1] for k in self.keys.values()] + [u[1] for u in USERS.values()]
        args = ["--repository", f"s3://{BUCKET}", "--users-file", self.users_file, "--tier", "=".join(UNSIGNED_TIER),
                "--log-level", "info", *extra_args]
        return CofferConsole(self.base, args, self._console_env(), secrets).start()

    def stop(self):
        """Stops both: each must exit 0 with no sanitizer report and no secret in its log."""
        code = self.console.stop() if self.console and self.console.proc else 0
        if self.console:
            self.console.assert_clean_log()
        server_code = self.server.stop() if self.server else 0
        if self.server:
            self.server.assert_clean_log()
        assert code == 0, f"coffer console exited with {code} on SIGTERM:\n{self.console.log()[-4000:]}"
        assert server_code == 0, f"coffer server exited with {server_code} on SIGTERM"

    # ---- what the tests compare the page with ----------------------------------------------

    def latest(self, chain):
        return [m for m in self.snapshots if m["namespace"] == chain][-1]


def chromium(width=1280, height=900):
    """Debian's Chromium, headless, with a throwaway profile; returns (driver, cleanup)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="coffer-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--hide-scrollbars", f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_script_timeout(30)
    driver.set_page_load_timeout(30)

    def cleanup():
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    return driver, cleanup
