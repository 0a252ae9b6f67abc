"""Our JavaScript tag, served at ``/t.js`` (dependency-free, about 1.5 KB).

Embed it as ``<script async src="https://<ingest>/t.js" data-key="<write key>"
data-account="<optional account domain>"></script>``. On load it records a page view (URL,
referrer, title) under a first-party anonymous visitor id kept in the ``abm_vid`` cookie
(two years, ``SameSite=Lax``) and in ``localStorage``, and sends it as a Segment ``page``
message with ``navigator.sendBeacon`` to ``/v1/t`` (a ``text/plain`` body, so no CORS
preflight); without ``sendBeacon`` it falls back to the ``/p.gif`` pixel.
"""

from __future__ import annotations

import hashlib

TAG_JS = """(function () {
  var script = document.currentScript;
  var key = script && script.getAttribute("data-key");
  if (!key) return;
  var account = script.getAttribute("data-account") || "";
  var base = script.src.replace(/\\/t\\.js(\\?.*)?$/, "");
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function visitor() {
    var found = document.cookie.match(/(?:^|; )abm_vid=([^;]+)/);
    var id = found ? decodeURIComponent(found[1]) : null;
    try { id = id || localStorage.getItem("abm_vid"); } catch (e) {}
    id = id || newId();
    document.cookie = "abm_vid=" + encodeURIComponent(id) +
      "; path=/; max-age=63072000; SameSite=Lax";
    try { localStorage.setItem("abm_vid", id); } catch (e) {}
    return id;
  }
  var now = new Date().toISOString();
  var message = {
    type: "page", messageId: newId(), anonymousId: visitor(), timestamp: now, sentAt: now,
    writeKey: key,
    properties: {url: location.href, referrer: document.referrer || null,
                 title: document.title || null},
    context: account ? {groupId: account} : {}
  };
  var sent = false;
  try {
    sent = !!navigator.sendBeacon && navigator.sendBeacon(base + "/v1/t", JSON.stringify(message));
  } catch (e) {}
  if (sent) return;
  var query = {k: key, url: location.href, ref: document.referrer, title: document.title,
               aid: message.anonymousId, gid: account, mid: message.messageId, ts: now};
  var parts = [];
  for (var name in query) {
    if (query[name]) parts.push(name + "=" + encodeURIComponent(query[name]));
  }
  new Image(1, 1).src = base + "/p.gif?" + parts.join("&");
})();
"""

TAG_ETAG = '"' + hashlib.sha256(TAG_JS.encode()).hexdigest()[:16] + '"'
TAG_HEADERS = {"Cache-Control": "public, max-age=3600", "ETag": TAG_ETAG}


def cors_headers(origin: str | None) -> dict[str, str]:
    """Reflect the page's origin: the beacon carries the first-party context (credentials)."""
    headers = {
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "86400",
        "Vary": "Origin",
    }
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers
