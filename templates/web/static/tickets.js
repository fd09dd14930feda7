// Ticket pages: a form sends once (a double click must not send a reply to the customer twice).
"use strict";
document.querySelectorAll("form.once").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
  });
});
