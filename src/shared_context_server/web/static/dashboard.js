// Timestamps in the viewer's local time; the server writes them in UTC.
"use strict";
function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at)) {
      el.title = el.textContent;
      el.textContent = at.toLocaleString();
    }
  }
}
document.addEventListener("DOMContentLoaded", () => localTimes(document));

// The session view, live: posts, visibility changes, status and activity from the
// server's event stream (filtered there by what this viewer may see). The browser
// resumes after the last event it got (Last-Event-ID) when the connection drops.
function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html; // rendered and escaped by the server
  const element = template.content.firstElementChild;
  localTimes(template.content);
  // Streamed fragments are rendered once for every viewer: their forms take this page's token.
  const csrf = document.querySelector('meta[name="csrf"]');
  for (const input of template.content.querySelectorAll('input[name="csrf"]')) {
    if (!input.value && csrf) input.value = csrf.content;
  }
  return element;
}

function showPost(timeline, post) {
  const existing = document.getElementById("m" + post.id);
  if (!post.html) {
    if (existing) existing.remove();
    return;
  }
  const element = fragment(post.html);
  if (existing) {
    const replies = existing.querySelector(":scope > .replies");
    if (replies) element.append(replies);
    existing.replaceWith(element);
    return;
  }
  const parent = post.parent && document.getElementById("m" + post.parent);
  if (parent) {
    let replies = parent.querySelector(":scope > .replies");
    if (!replies) {
      replies = document.createElement("div");
      replies.className = "replies";
      parent.append(replies);
    }
    replies.append(element);
  } else {
    timeline.append(element);
  }
  const empty = document.getElementById("no-messages");
  if (empty) empty.remove();
}

function describe(activity) {
  if (activity.kind === "lock_changed") {
    return `${activity.agent_id}: lock ${activity.action || "changed"}` +
      (activity.lock_type ? ` (${activity.lock_type})` : "");
  }
  if (activity.kind === "presence_changed") {
    return `${activity.agent_id} is ${activity.status || "here"}`;
  }
  return `${activity.agent_id}: ${activity.kind}`;
}

function liveSession() {
  const timeline = document.querySelector(".timeline[data-stream]");
  if (!timeline || !window.EventSource) return;
  const source = new EventSource(timeline.dataset.stream);
  source.addEventListener("post", (e) => showPost(timeline, JSON.parse(e.data)));
  source.addEventListener("session", (e) => {
    const badge = document.getElementById("session-status");
    const status = JSON.parse(e.data).status;
    if (badge) {
      badge.textContent = status;
      badge.className = "badge status-" + status;
    }
  });
  source.addEventListener("activity", (e) => {
    const line = document.getElementById("activity");
    if (line) line.textContent = describe(JSON.parse(e.data));
    refreshCoordination().then(countdowns);
  });
  source.addEventListener("signed-out", () => {
    source.close();
    window.location.assign(timeline.dataset.signin || "/ui/signin");
  });
  document.body.dataset.live = "on";
}
document.addEventListener("DOMContentLoaded", liveSession);

// The coordination panel: refreshed from the server when the stream tells of a lock or
// presence change; lock expiry counts down.
async function refreshCoordination() {
  const panel = document.getElementById("coordination");
  if (!panel) return;
  const response = await fetch(panel.dataset.refresh, { credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = fragment(await response.text());
  if (fresh) panel.replaceWith(fresh);
}

function countdowns() {
  const now = Date.now();
  for (const el of document.querySelectorAll("time[data-countdown]")) {
    const left = Math.round((new Date(el.getAttribute("datetime")) - now) / 1000);
    el.textContent = left > 0 ? `in ${left} s` : "now (expired)";
  }
}
document.addEventListener("DOMContentLoaded", () => {
  countdowns();
  setInterval(countdowns, 1000);
});

// The sessions list, live: each row's count of messages the viewer may see, its last
// activity and status follow the stream of every session the viewer may read.
function liveList() {
  const table = document.getElementById("session-list");
  if (!table || !table.dataset.stream || !window.EventSource) return;
  const source = new EventSource(table.dataset.stream);
  const row = (id) => table.querySelector(`tr[data-session="${CSS.escape(id)}"]`);
  source.addEventListener("post", (e) => {
    const post = JSON.parse(e.data);
    const found = row(post.session);
    if (!found) return;
    const count = found.querySelector("[data-count]");
    count.textContent = String(Number(count.textContent) + post.delta);
    const when = found.querySelector("[data-activity]");
    when.setAttribute("datetime", new Date().toISOString());
    localTimes(found);
  });
  source.addEventListener("session", (e) => {
    const update = JSON.parse(e.data);
    const found = update.session && row(update.session);
    const badge = found && found.querySelector("[data-status]");
    if (badge) {
      badge.textContent = update.status;
      badge.className = "badge status-" + update.status;
    }
  });
  document.body.dataset.live = "on";
}
document.addEventListener("DOMContentLoaded", liveList);
