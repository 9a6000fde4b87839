// ogdc-hooks dashboard: times in the viewer's zone, and the runs list kept live.
// Progressive enhancement only: without it the pages show UTC times and reload by hand.
"use strict";

function localTimes(root) {
  for (const node of root.querySelectorAll("time[datetime]")) {
    const when = new Date(node.getAttribute("datetime"));
    if (!isNaN(when)) {
      node.title = node.getAttribute("datetime");
      node.textContent = when.toLocaleString();
    }
  }
}

function keepLive(box) {
  const url = box.dataset.live;
  let stopped = false;
  async function refresh() {
    if (stopped || document.hidden) return;
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (answer.redirected || !answer.ok) {  // signed out or expired: stop, say so
        stopped = true;
        const note = document.createElement("p");
        note.className = "notice";
        note.textContent = "Live updates stopped: reload the page (you may need to sign in again).";
        box.prepend(note);
        return;
      }
      const html = await answer.text();
      const focused = document.activeElement && box.contains(document.activeElement);
      if (!focused) {  // never pull the row out from under the keyboard
        box.innerHTML = html;
        localTimes(box);
      }
    } catch (error) {
      // the service restarting: try again at the next tick
    }
  }
  setInterval(refresh, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  const box = document.getElementById("runs-live");
  if (box && box.dataset.live) keepLive(box);
});
