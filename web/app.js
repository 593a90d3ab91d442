/* The console's page: a single page over the JSON API (docs/console.md). Plain script, no build
   step. Every value from the API reaches the page through textContent or an attribute, never as
   HTML, and nothing runs inline, so the Content-Security-Policy "default-src 'self'" holds. */
"use strict";

(function () {
  const API = "api/v1/";
  // Snapshots per page; <html data-page-size="N"> overrides it (the browser test pages with 1).
  const pageSize = () => Number(document.documentElement.dataset.pageSize) || 50;

  const state = {
    me: { user: null, tier: "free", csrf: null },
    chain: null,         // the chain shown, by name
    cursor: null,        // next_cursor of the last page of its snapshots
    generation: 0,       // bumped on every navigation: answers for an older view are dropped
    opener: null,        // the control that opened the dialog: focus goes back to it
    returnTo: "#/",      // where a login goes back to
    notice: null,        // a message for the next view (the session ended)
    rendered: false,
  };

  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /* ---- The API ------------------------------------------------------------------------------ */

  async function request(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") {
      // The API refuses a state change without these (its CSRF rules).
      opts.headers["Content-Type"] = "application/json";
      if (state.me.csrf) opts.headers["X-CSRF-Token"] = state.me.csrf;
      opts.body = JSON.stringify(body || {});
    }
    let resp;
    try {
      resp = await fetch(API + path, opts);
    } catch (e) {
      throw new ApiError(0, "NetworkError", "The console cannot be reached. Check your connection and try again.");
    }
    const text = await resp.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!resp.ok) {
      const err = data && data.error ? data.error : {};
      let message = err.message || `The console answered ${resp.status} ${resp.statusText}.`.replace(" .", ".");
      const retry = resp.headers.get("Retry-After");
      if (resp.status === 429 && retry && !/\bretry|again\b/i.test(message)) message += ` Try again in ${retry} s.`;
      throw new ApiError(resp.status, err.code || `HTTP${resp.status}`, message);
    }
    return data;
  }

  const get = (path) => request("GET", path);

  async function post(path, body) {
    try {
      return await request("POST", path, body);
    } catch (e) {
      // The session changed under the page (expired, or another tab logged in or out): its
      // token is stale. Learn the current one and try once more.
      if (e.status === 403 && e.code === "CSRFRejected") {
        await loadMe();
        return request("POST", path, body);
      }
      throw e;
    }
  }

  const enc = encodeURIComponent;

  /* ---- Formatting --------------------------------------------------------------------------- */

  // Binary units, as the command line reads sizes ("500G" is 500 GiB).
  function formatBytes(n) {
    if (typeof n !== "number" || !isFinite(n) || n < 0) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    const digits = i === 0 || n >= 100 ? 0 : n >= 10 ? 1 : 2;
    return `${n.toFixed(digits)} ${units[i]}`;
  }

  // Rates as the command line takes them (--tier premium=250MB/s): the largest unit, decimal or
  // binary, that states the rate exactly; else decimal megabytes.
  function formatRate(n) {
    const units = [["GiB/s", 1 << 30], ["GB/s", 1e9], ["MiB/s", 1 << 20], ["MB/s", 1e6], ["KiB/s", 1024], ["KB/s", 1e3]];
    for (const [unit, size] of units) if (n >= size && n % size === 0) return `${n / size} ${unit}`;
    return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB/s` : `${n} B/s`;
  }

  function formatAge(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "–";
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s < 5 ? "just now" : `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 2 * 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    return `${Math.round(s / 3600)} h`;
  }

  // UTC and a fixed shape: the same on every machine, and what the snapshot ids use.
  function formatTime(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso || "–");
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  const shortHash = (h) => (h && h.length > 12 ? h.slice(0, 12) + "…" : h || "–");

  // Seconds since an RFC 3339 time, by this machine's clock (clamped: clocks disagree).
  const secondsSince = (iso) => Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);

  /* ---- DOM helpers -------------------------------------------------------------------------- */

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("data-")) node.dataset[k.slice(5).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  // A cell that knows its column's name: the card layout on a phone shows it before the value.
  // Its content is one element: the label and the value are the card's two sides.
  const cell = (label, cls, ...children) =>
    el("td", { "data-label": label, class: cls, role: "cell" }, el("span", { class: "value" }, ...children));

  const none = () => el("span", { class: "meta", text: "none" });

  function announce(text) {
    const status = $("status");
    status.textContent = "";
    // A change the screen reader notices even when the same words come twice.
    window.setTimeout(() => {
      status.textContent = text;
    }, 50);
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function setBusy(busy) {
    $("main").setAttribute("aria-busy", busy ? "true" : "false");
  }

  // A table styled as cards on a phone keeps its table semantics for screen readers.
  function keepTableRoles() {
    for (const table of document.querySelectorAll("table.cards")) {
      table.setAttribute("role", "table");
      for (const group of table.querySelectorAll("thead, tbody")) group.setAttribute("role", "rowgroup");
      for (const tr of table.querySelectorAll("tr")) tr.setAttribute("role", "row");
      for (const th of table.querySelectorAll("th")) th.setAttribute("role", "columnheader");
    }
  }

  /* ---- Copying ------------------------------------------------------------------------------ */

  // The clipboard API needs a secure context (HTTPS or localhost); elsewhere an off-screen
  // selection and execCommand("copy"); failing both, the text is left selected for Ctrl+C.
  async function copyText(text, selectable, button) {
    let ok = false;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        ok = true;
      } catch (e) {
        ok = false;
      }
    }
    if (!ok) {
      const scratch = el("textarea", { readonly: true, "aria-hidden": "true", class: "visually-hidden", tabindex: "-1" });
      scratch.value = text;
      document.body.append(scratch);
      scratch.select();
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      scratch.remove();
      if (button) button.focus();
    }
    if (ok) {
      flash(button, "Copied");
      announce("Copied to the clipboard.");
      return;
    }
    if (selectable) selectText(selectable);
    announce("Copying is not allowed here: the text is selected, press Ctrl+C (⌘C) to copy it.");
  }

  function selectText(node) {
    if (node.select) {
      node.focus();
      node.select();
      return;
    }
    const range = document.createRange();
    range.selectNodeContents(node);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function flash(button, text) {
    if (!button) return;
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = text;
    window.clearTimeout(button._flash);
    button._flash = window.setTimeout(() => {
      button.textContent = button.dataset.label;
    }, 2000);
  }

  /* ---- The account: who, which tier --------------------------------------------------------- */

  // Who this tab was logged in as (per tab, and no secret: the session itself is an HttpOnly
  // cookie). A session ends unseen: the browser drops the cookie at its Max-Age, and the console
  // clears one it cannot open on whatever request brings it; this is how the page can tell.
  const REMEMBERED = "coffer.console.user";
  function remembered(user) {
    try {
      if (user === undefined) return sessionStorage.getItem(REMEMBERED);
      if (user) sessionStorage.setItem(REMEMBERED, user);
      else sessionStorage.removeItem(REMEMBERED);
    } catch (e) {
      // Storage disabled: no notice, nothing else lost.
    }
    return null;
  }

  async function loadMe() {
    try {
      const me = await get("me");
      state.me = { user: me.user || null, tier: me.tier || "free", csrf: me.csrf || null };
      const was = remembered();
      if (state.me.user) {
        remembered(state.me.user);
      } else if (was || me.session === "expired") {
        remembered(null);
        // Shown by the next view (a navigation clears errors), then gone.
        state.notice = `Your session${was ? ` as ${was}` : ""} has ended: log in again to download at your tier's rate.`;
      }
    } catch (e) {
      state.me = { user: null, tier: "free", csrf: null };
    }
    renderAccount();
  }

  function renderAccount() {
    const { user, tier } = state.me;
    const badge = $("tier-badge");
    badge.textContent = tier;
    badge.dataset.tier = tier;
    const name = $("user-name");
    name.textContent = user ? user : "";
    name.hidden = !user;
    $("login-link").hidden = !!user;
    $("logout").hidden = !user;
  }

  async function logout() {
    const button = $("logout");
    button.disabled = true;
    remembered(null); // a logout is no session that ended unseen
    try {
      await post("logout", {});
      showError("");
    } catch (e) {
      showError(e.message);
    } finally {
      button.disabled = false;
    }
    await loadMe();
    announce("You are logged out. Downloads use the free tier.");
    // The button is gone: keyboard focus would fall to the page's start.
    $("login-link").focus();
  }

  async function login(event) {
    event.preventDefault();
    const form = $("login-form");
    const errorBox = $("login-error");
    const username = $("login-username");
    const password = $("login-password");
    const fail = (message, field) => {
      errorBox.textContent = message;
      errorBox.hidden = false;
      if (field) field.setAttribute("aria-invalid", "true");
    };
    errorBox.hidden = true;
    username.removeAttribute("aria-invalid");
    password.removeAttribute("aria-invalid");
    if (!username.value.trim()) {
      fail("Enter your username.", username);
      username.focus();
      return;
    }
    if (!password.value) {
      fail("Enter your password.", password);
      password.focus();
      return;
    }
    const submit = $("login-submit");
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      await post("login", { username: username.value.trim(), password: password.value });
      password.value = "";
      await loadMe();
      announce(`Logged in as ${state.me.user || username.value.trim()}, tier ${state.me.tier}.`);
      const back = state.returnTo && state.returnTo !== "#/login" ? state.returnTo : "#/";
      location.hash = back;
    } catch (e) {
      password.value = "";
      fail(e.message, e.status === 401 ? password : null);
      password.focus();
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  /* ---- Views -------------------------------------------------------------------------------- */

  function parseRoute() {
    const h = location.hash;
    if (h === "" || h === "#" || h === "#/") return { view: "chains" };
    if (h === "#/login") return { view: "login" };
    const m = /^#\/chains\/([^/]+)\/?$/.exec(h);
    if (m) {
      try {
        return { view: "chain", chain: decodeURIComponent(m[1]) };
      } catch (e) {
        return { view: "missing" };
      }
    }
    return { view: "missing" };
  }

  function showView(name, title) {
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${name}`;
    document.title = `${title} · coffer`;
    // After a navigation (not the first load) the view's heading takes focus, so a screen reader
    // announces the new page and the next Tab starts from it.
    if (state.rendered) {
      const h1 = document.querySelector(`#view-${name} h1`);
      if (h1) h1.focus();
    }
    state.rendered = true;
  }

  async function route() {
    const r = parseRoute();
    const generation = ++state.generation;
    const current = () => generation === state.generation;
    if (r.view !== "login") state.returnTo = location.hash || "#/";
    showError(state.notice || "");
    state.notice = null;
    if ($("download").open) $("download").close();
    if (r.view === "chains") return renderChains(current);
    if (r.view === "chain") return renderChain(r.chain, current);
    if (r.view === "login") {
      showView("login", "Log in");
      $("login-error").hidden = true;
      if (state.me.user) {
        $("login-error").textContent = `You are logged in as ${state.me.user}. Log in again to switch accounts.`;
        $("login-error").hidden = false;
      }
      $("login-username").focus();
      return;
    }
    showView("missing", "Page not found");
  }

  async function renderChains(current) {
    showView("chains", "Chains");
    setBusy(true);
    try {
      const data = await get("chains");
      if (!current()) return;
      const body = $("chains-body");
      body.replaceChildren();
      const chains = (data && data.chains) || [];
      for (const ch of chains) {
        const latest = ch.latest;
        body.append(
          el("tr", { role: "row" },
            cell("Chain", null, el("a", { class: "chain-link", href: `#/chains/${enc(ch.name)}`, text: ch.name })),
            cell("Latest height", null, latest && latest.height ? el("code", { text: latest.height }) : none()),
            cell("Size", "num", latest ? formatBytes(latest.size) : none()),
            cell("Age", null, latest ? ageNode(latest) : none()),
            cell("Snapshots", "num", String(ch.snapshots))));
      }
      $("chains-empty").hidden = chains.length > 0;
      $("chains-table").hidden = chains.length === 0;
      $("chains-refreshed").textContent = data && data.refreshed_at
        ? `Catalogue refreshed ${formatAge(secondsSince(data.refreshed_at))} (${formatTime(data.refreshed_at)}).` : "";
      announce(`${chains.length} ${chains.length === 1 ? "chain" : "chains"}.`);
    } catch (e) {
      if (current()) showError(e.message);
    } finally {
      if (current()) setBusy(false);
    }
  }

  function ageNode(snap) {
    return el("time", { datetime: snap.created, title: formatTime(snap.created), text: formatAge(snap.age_seconds) });
  }

  async function renderChain(name, current) {
    showView("chain", name);
    $("chain-title").textContent = name;
    $("chain-summary").textContent = "";
    $("snapshots-body").replaceChildren();
    $("snapshots-more").hidden = true;
    $("snapshots-empty").hidden = true;
    state.chain = name;
    state.cursor = null;
    setBusy(true);
    try {
      const [chain, page] = await Promise.all([
        get(`chains/${enc(name)}`),
        get(`chains/${enc(name)}/snapshots?limit=${pageSize()}`),
      ]);
      if (!current()) return;
      const parts = [`${chain.snapshots} ${chain.snapshots === 1 ? "snapshot" : "snapshots"}`];
      if (chain.latest && chain.latest.height) parts.push(`latest height ${chain.latest.height}`);
      if (chain.latest) parts.push(`latest ${formatAge(chain.latest.age_seconds)}`);
      if (chain.repository) parts.push(`in ${chain.repository}`);
      $("chain-summary").textContent = parts.join(" · ");
      $("download-latest").hidden = !chain.latest;
      appendSnapshots(page);
      $("snapshots-empty").hidden = page.snapshots.length > 0;
      $("snapshots-table").hidden = page.snapshots.length === 0;
      announce(`${name}: ${parts[0]}.`);
    } catch (e) {
      if (!current()) return;
      $("snapshots-table").hidden = true;
      $("download-latest").hidden = true;
      showError(e.message);
    } finally {
      if (current()) setBusy(false);
    }
  }

  function appendSnapshots(page) {
    const body = $("snapshots-body");
    for (const s of page.snapshots || []) body.append(snapshotRow(s));
    state.cursor = page.next_cursor || null;
    $("snapshots-more").hidden = !state.cursor;
  }

  function snapshotRow(s) {
    const hash = el("code", { class: "hash", title: s.sha256, text: shortHash(s.sha256), "data-sha256": s.sha256 });
    const copy = el("button", { type: "button", class: "secondary small copy-hash", "aria-label": `Copy the SHA-256 of ${s.id}`, text: "Copy" });
    copy.addEventListener("click", () => copyText(s.sha256, hash, copy));
    const download = el("button", { type: "button", class: "small download", "data-id": s.id, "aria-label": `Download ${s.id}`, text: "Download" });
    download.addEventListener("click", () => openDownload(state.chain, s.id, download));
    const compression = el("span", { title: s.level ? `level ${s.level}` : null, text: s.compression || "–" });
    return el("tr", { role: "row", "data-id": s.id },
      cell("Snapshot", null, el("code", { text: s.id })),
      cell("Created", null, el("time", { class: "nowrap", datetime: s.created, text: formatTime(s.created) }),
        el("span", { class: "sub", text: formatAge(s.age_seconds) })),
      cell("Height", null, s.height ? el("code", { text: s.height }) : none()),
      cell("Size", "num nowrap", el("span", { title: `${s.size} bytes`, text: formatBytes(s.size) })),
      cell("Compression", null, compression),
      cell("Encrypted", null, s.encrypted ? "yes" : "no"),
      cell("SHA-256", null, el("span", { class: "hash-cell" }, hash, copy)),
      cell("Actions", "actions", download));
  }

  async function moreSnapshots() {
    const button = $("snapshots-more");
    const generation = state.generation;
    button.disabled = true;
    try {
      const page = await get(`chains/${enc(state.chain)}/snapshots?limit=${pageSize()}&cursor=${enc(state.cursor)}`);
      if (generation !== state.generation) return;
      const before = $("snapshots-body").rows.length;
      appendSnapshots(page);
      announce(`${page.snapshots.length} more snapshots.`);
      // Keyboard users carry on from the first new row instead of the page's end.
      const first = $("snapshots-body").rows[before];
      const target = first && first.querySelector("button.download");
      if (target) target.focus();
    } catch (e) {
      showError(e.message);
    } finally {
      button.disabled = false;
    }
  }

  /* ---- The download dialog ------------------------------------------------------------------ */

  const COMMAND_NAMES = { curl: "With curl", coffer: "With coffer" };

  async function openDownload(chain, id, opener) {
    opener.disabled = true;
    opener.setAttribute("aria-busy", "true");
    showError("");
    announce("Preparing the download link…");
    try {
      const d = await post(`chains/${enc(chain)}/snapshots/${enc(id)}/download`, {});
      fillDialog(d);
      state.opener = opener;
      const dialog = $("download");
      dialog.showModal();
      fitTextareas(dialog);
      $("dl-title").focus();
    } catch (e) {
      showError(e.message);
    } finally {
      opener.disabled = false;
      opener.removeAttribute("aria-busy");
    }
  }

  function fillDialog(d) {
    const s = d.snapshot || {};
    $("dl-title").textContent = `Download ${s.id || ""}`;
    const facts = [`${s.chain || state.chain}`];
    if (s.height) facts.push(`height ${s.height}`);
    if (s.created) facts.push(`created ${formatTime(s.created)}`);
    let note = facts.join(", ") + ".";
    if (s.encrypted) note += " The snapshot is encrypted: restore it with coffer and the repository's key.";
    $("dl-note").textContent = note;
    const tier = $("dl-tier");
    tier.textContent = d.tier;
    tier.dataset.tier = d.tier;
    $("dl-rate").textContent = d.rate_bytes_per_s > 0
      ? `up to ${formatRate(d.rate_bytes_per_s)}, shared by all ${d.tier} downloads` : "not rate-limited";
    const expiresIn = typeof d.expires_in === "number" ? d.expires_in : (new Date(d.expires_at).getTime() - Date.now()) / 1000;
    const expires = $("dl-expires");
    expires.replaceChildren(el("time", { datetime: d.expires_at, text: formatTime(d.expires_at) }), ` (in ${formatDuration(expiresIn)})`);
    $("dl-size").textContent = `${formatBytes(s.size)} (${s.size} bytes)`;
    $("dl-sha256").textContent = s.sha256 || "–";
    $("dl-url").value = d.url;
    $("dl-open").href = d.url;
    const box = $("dl-commands");
    box.replaceChildren();
    for (const [name, command] of Object.entries(d.commands || {})) {
      if (typeof command !== "string" || !command) continue; // "curl": null for an encrypted snapshot
      const id = `dl-cmd-${name.replace(/[^a-z0-9-]/gi, "")}`;
      const area = el("textarea", { id, readonly: true, rows: "2", spellcheck: "false", class: "command", "data-command": name });
      area.value = command;
      const copy = el("button", { type: "button", class: "copy", "data-copy": id, "aria-label": `Copy the ${name} command`, text: "Copy command" });
      box.append(el("div", { class: "copyable" },
        el("label", { for: id, text: COMMAND_NAMES[name] || name }),
        area,
        el("div", { class: "row" }, copy)));
    }
  }

  // Each command shown whole, without a scroll bar of its own (sized once visible).
  function fitTextareas(root) {
    for (const area of root.querySelectorAll("textarea")) {
      area.style.height = "auto";
      area.style.height = `${area.scrollHeight + 2}px`;
    }
  }

  function onDialogClose() {
    // Focus returns to the control that opened the dialog, or to the view's heading.
    // (After a navigation the opener may be gone or in a hidden view: then the heading.)
    const opener = state.opener;
    const back = opener && opener.isConnected && opener.getClientRects().length ? opener : document.querySelector(".view:not([hidden]) h1");
    state.opener = null;
    if (back) back.focus();
  }

  /* ---- Wiring ------------------------------------------------------------------------------- */

  function init() {
    keepTableRoles();
    $("skip").addEventListener("click", (e) => {
      e.preventDefault(); // "#main" is not a route
      $("main").focus();
    });
    $("logout").addEventListener("click", logout);
    $("login-form").addEventListener("submit", login);
    $("snapshots-more").addEventListener("click", moreSnapshots);
    $("download-latest").addEventListener("click", (e) => openDownload(state.chain, "latest", e.currentTarget));
    const dialog = $("download");
    dialog.addEventListener("close", onDialogClose);
    // A click on the backdrop (outside the dialog's box) closes it, as Escape does.
    dialog.addEventListener("click", (e) => {
      if (e.target === dialog) dialog.close();
    });
    // One listener for every copy button in the dialog: the text is the target's value.
    dialog.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-copy]");
      if (!button) return;
      const source = $(button.dataset.copy);
      if (source) copyText(source.value, source, button);
    });
    window.addEventListener("hashchange", route);
    loadMe().then(route);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
