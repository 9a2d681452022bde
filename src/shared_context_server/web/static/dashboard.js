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
