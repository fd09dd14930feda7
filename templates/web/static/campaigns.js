// Campaign pages: the live preview follows the form as the admin types (the page works
// without this file: the Preview button renders the same fragment server-side), and
// Cancel asks for confirmation.
(function () {
  "use strict";

  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }

  const form = document.querySelector("form[data-preview-url]");
  const target = document.getElementById("campaign-preview");
  if (!form || !target) {
    return;
  }
  const csrf = form.querySelector('input[name="csrf"]').value;
  const DEBOUNCE_MS = 400;
  let timer = null;
  let inFlight = null;
  let latest = 0;

  function refresh() {
    const request = ++latest;
    if (inFlight) {
      inFlight.abort(); // only the newest form state matters
    }
    inFlight = new AbortController();
    target.setAttribute("aria-busy", "true");
    fetch(form.dataset.previewUrl, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
      signal: inFlight.signal,
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("preview failed: HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (request === latest) {
          target.innerHTML = html; // server-rendered and escaped, from this origin
          target.removeAttribute("aria-busy");
        }
      })
      .catch(function (error) {
        if (error.name === "AbortError" || request !== latest) {
          return;
        }
        target.removeAttribute("aria-busy");
        const note = document.createElement("p");
        note.className = "error";
        note.textContent = "The preview is not available right now (" + error.message + "). " +
          "If you were signed out, reload the page.";
        target.replaceChildren(note);
      });
  }

  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, DEBOUNCE_MS);
  }

  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  refresh();
})();
