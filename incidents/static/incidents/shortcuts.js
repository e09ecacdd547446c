/* The admin's keyboard shortcuts and the "Declare incident" dialog (loaded on every admin
 * page by templates/admin/base_site.html; no inline script under our CSP).
 *
 *   /  focus the page's search box (#searchbar), where there is one
 *   d  open the declare dialog
 *   ?  list the shortcuts
 *
 * Keys typed into a field, or with Ctrl/Alt/Meta, are left alone. Without JavaScript the
 * "Declare incident" link opens the declare page instead of the dialog.
 */
(function () {
  "use strict";

  function isTyping(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable) return true;
    var tag = element.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function openDialog(dialog) {
    if (dialog && !dialog.open && typeof dialog.showModal === "function") dialog.showModal();
  }

  function anyDialogOpen() {
    return document.querySelector("dialog[open]") !== null;
  }

  function focusFirstField(container) {
    var field = container.querySelector("[autofocus], input:not([type=hidden]), textarea, select");
    if (field) field.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target) || anyDialogOpen()) return;
    if (event.key === "/") {
      var search = document.getElementById("searchbar");
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    } else if (event.key === "d") {
      var declare = document.getElementById("declare-button");
      if (declare) {
        event.preventDefault();
        declare.click();
      }
    } else if (event.key === "?") {
      var help = document.getElementById("shortcuts-dialog");
      if (help) {
        event.preventDefault();
        openDialog(help);
      }
    }
  });

  function start() {
    var helpItem = document.getElementById("shortcuts-item");
    var helpButton = document.getElementById("shortcuts-button");
    var help = document.getElementById("shortcuts-dialog");
    if (helpItem && helpButton && help) {
      helpItem.hidden = false;
      helpButton.addEventListener("click", function () { openDialog(help); });
    }

    var dialog = document.getElementById("declare-dialog");
    var declare = document.getElementById("declare-button");
    if (!dialog || !declare) return;
    // The form arrives (htmx swapped it in): show the dialog, focus the title. A form
    // shown again with its errors arrives the same way, inside the open dialog.
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (!dialog.contains(event.detail.target)) return;
      openDialog(dialog);
      var errors = dialog.querySelector(".errors input, .errors select, .errors textarea");
      if (errors) errors.focus(); else focusFirstField(dialog);
    });
    // The form could not be fetched (offline, a server error): the declare page itself.
    function fallBack(event) {
      if (event.detail.elt === declare) window.location.assign(declare.href);
    }
    document.body.addEventListener("htmx:responseError", fallBack);
    document.body.addEventListener("htmx:sendError", fallBack);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
