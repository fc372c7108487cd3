// Behaviour of every page, from the site's own files (no inline script, for the Content-Security-Policy).
(function () {
  "use strict";

  // After a failed submit the error summary takes the focus, so it is read first; its links lead to the fields.
  function focusErrorSummary() {
    const summary = document.querySelector(".error-summary");
    if (summary) summary.focus();
  }

  // A link of the error summary moves the focus to its field (a fragment alone would only scroll to it).
  document.addEventListener("click", (event) => {
    const link = event.target.closest(".error-summary a[href^='#']");
    if (!link) return;
    const target = document.getElementById(link.getAttribute("href").slice(1));
    if (!target) return;
    // A group of options (a fieldset): its first option takes the focus.
    const field = target.matches("fieldset") ? target.querySelector("input, select, textarea") || target : target;
    event.preventDefault();
    field.scrollIntoView({block: "center"});
    field.focus();
  });

  // A button with data-print prints the page (the printable chargeback).
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-print]")) window.print();
  });

  // A form with data-confirm asks in an in-page dialog before it is sent (instead of the browser's confirm()).
  // The dialog is modal: focus moves into it, Escape or "Cancel" closes it, and focus returns to the button.
  let dialogCount = 0;
  function confirmDialog(form, submitter) {
    dialogCount += 1;
    const dialog = document.createElement("dialog");
    dialog.className = "confirm";
    dialog.setAttribute("aria-labelledby", `confirm-title-${dialogCount}`);
    dialog.setAttribute("aria-describedby", `confirm-text-${dialogCount}`);
    const title = document.createElement("h2");
    title.id = `confirm-title-${dialogCount}`;
    title.textContent = form.dataset.confirmTitle || "Are you sure?";
    const text = document.createElement("p");
    text.id = `confirm-text-${dialogCount}`;
    text.textContent = form.dataset.confirm;
    const buttons = document.createElement("div");
    buttons.className = "buttons";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary";
    cancel.textContent = form.dataset.confirmCancel || "Cancel";
    const ok = document.createElement("button");
    ok.type = "button";
    ok.className = form.dataset.confirmDanger !== undefined ? "danger" : "";
    ok.textContent = form.dataset.confirmButton || "Confirm";
    buttons.append(cancel, ok);
    dialog.append(title, text, buttons);
    document.body.append(dialog);
    const returnTo = submitter || document.activeElement;
    cancel.addEventListener("click", () => dialog.close("cancel"));
    ok.addEventListener("click", () => dialog.close("confirm"));
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (dialog.returnValue === "confirm") {
        form.dataset.confirmed = "yes";
        form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
      } else if (returnTo && returnTo.focus) {
        returnTo.focus();
      }
    });
    dialog.showModal();
    cancel.focus();
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.dataset.confirm === undefined) return;
    if (form.dataset.confirmed === "yes") return;
    event.preventDefault();
    confirmDialog(form, event.submitter);
  });

  // A copy button copies its field and says so to everyone (a live region), then the field is selected.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const field = document.getElementById(button.dataset.copy);
    const status = document.getElementById(button.dataset.copyStatus);
    let copied = false;
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch (error) {
      field.select();
      copied = document.execCommand && document.execCommand("copy");
    }
    field.focus();
    field.select();
    if (status) {
      status.textContent = copied ? "Copied to the clipboard." : "Could not copy: the key is selected, press Ctrl+C.";
    }
  });
  document.addEventListener("focusin", (event) => {
    if (event.target.matches && event.target.matches("input.select-on-focus")) event.target.select();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", focusErrorSummary);
  else focusErrorSummary();
})();
