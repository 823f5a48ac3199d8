/* The portal's few behaviours in the browser (docs/accessibility.md says how screens use them):
 * - After every htmx swap, the text of each [data-announce] element in the new content is put in the page's one
 *   live region (#live-region in base.html). When focus was inside what was replaced, it moves to the new
 *   content's [data-focus] element, or else its first heading; when focus was on the page itself (nowhere), it
 *   moves only to a [data-focus] element. A failed form's error summary comes first. A poll whose answer says
 *   nothing new announces nothing and moves nothing. A [data-title] in the new content becomes the page's title.
 * - A failed form's error summary ([data-error-summary]) takes focus when the page loads.
 * - The header's menu folds behind a "Menu" button on narrow screens.
 * - Before the idle sign-out, a warning with a button that keeps the session ("Stay signed in").
 * Written by hand because each piece is a few lines over htmx's events; no library would be smaller. */
(function () {
  "use strict";

  var liveRegion = function () { return document.getElementById("live-region"); };

  function announce(text) {
    var region = liveRegion();
    text = (text || "").replace(/\s+/g, " ").trim();
    if (!region || !text) return;
    // Emptied first, then filled on the next frame: the same words said twice are announced twice.
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function focusOn(el) {
    if (!el) return;
    if (!el.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(el.tagName)) {
      el.setAttribute("tabindex", "-1");
    }
    el.focus({ preventScroll: false });
  }

  function marked(root) {
    if (root.matches && root.matches("[data-focus]")) return root;
    return root.querySelector("[data-error-summary]") || root.querySelector("[data-focus]");
  }

  function focusTarget(root) {
    return marked(root) || root.querySelector("h1, h2, h3, h4");
  }

  function announcements(root) {
    var found = Array.prototype.slice.call(root.querySelectorAll("[data-announce]"));
    if (root.matches && root.matches("[data-announce]")) found.unshift(root);
    return found.map(function (el) { return el.getAttribute("data-announce") || el.textContent; }).join(" ");
  }

  function focusIsLost() {
    var active = document.activeElement;
    return !active || active === document.body || active === document.documentElement || !active.isConnected;
  }

  function isPoll(detail) {
    var headers = (detail.requestConfig && detail.requestConfig.headers) || {};
    return headers["X-Poll"] === "1";
  }

  // What was swapped out, read before the swap: whether focus was in it, and what it said.
  var before = new WeakMap();

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target) return;
    var active = document.activeElement;
    before.set(event.detail.xhr, {
      focusInside: !!(active && active !== document.body && target.contains(active)),
      text: target.textContent.replace(/\s+/g, " ").trim(),
    });
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var detail = event.detail;
    var seen = before.get(detail.xhr) || { focusInside: false, text: null };
    // htmx fires this on each settled element: the new element of an outerHTML swap, the target of an innerHTML one.
    var root = event.target;
    if (!root || !root.isConnected || !root.querySelector) return;
    var unchanged = isPoll(detail) && seen.text === root.textContent.replace(/\s+/g, " ").trim();
    if (unchanged) {
      // The same words again: say nothing, but do not leave focus on an element that is gone.
      if (seen.focusInside && focusIsLost()) focusOn(focusTarget(root));
      return;
    }
    var titled = root.matches("[data-title]") ? root : root.querySelector("[data-title]");
    if (titled) document.title = titled.getAttribute("data-title");
    markScrollBoxes(root);
    announce(announcements(root));
    // Focus follows an update that replaced what it was on. Focus that was nowhere (on the page itself) goes only to
    // an element marked for it: content that loads by itself (a tab's section) must not pull the reader down to it.
    if (seen.focusInside) focusOn(focusTarget(root));
    else if (focusIsLost()) focusOn(marked(root));
  });

  // A table too wide for the screen scrolls inside its box; the box is then a tab stop so that the keyboard can
  // scroll it, and only then (a box that does not scroll would be one more stop for nothing).
  function markScrollBoxes(root) {
    var boxes = (root || document).querySelectorAll(".table-scroll");
    Array.prototype.forEach.call(boxes, function (box) {
      if (box.scrollWidth > box.clientWidth + 1) box.setAttribute("tabindex", "0");
      else box.removeAttribute("tabindex");
    });
  }
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(function () { markScrollBoxes(document); }, 100);
  });

  // --- on each page load ---------------------------------------------------------------------------------------

  function onLoad() {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) focusOn(summary);
    markScrollBoxes(document);
    setUpMenu();
    setUpIdleWarning();
  }

  // A link in the error summary puts the keyboard in the field itself, not only the field in view.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-error-summary] a[href^='#']");
    var field = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    field.focus();
  });

  function setUpMenu() {
    var toggle = document.querySelector(".menu-toggle");
    var menu = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
    if (!menu) return;
    document.documentElement.classList.add("has-menu-toggle");
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    });
  }

  // --- the warning before the idle sign-out (WCAG 2.2.1) -------------------------------------------------------

  function setUpIdleWarning() {
    var body = document.body;
    var warning = document.getElementById("idle-warning");
    if (!warning || !body.hasAttribute("data-idle-timeout")) return;
    var warnBefore = parseInt(body.getAttribute("data-idle-warning"), 10) || 120;
    var keepAliveUrl = body.getAttribute("data-keep-alive");
    var signedOutUrl = body.getAttribute("data-signed-out");
    var left = warning.querySelector("[data-idle-left]");
    var button = warning.querySelector("[data-keep-alive-button]");
    var endsAt = 0, warnTimer = null, endTimer = null, tick = null;

    function words(seconds) {
      if (seconds >= 90) return Math.round(seconds / 60) + " minutes";
      if (seconds >= 60) return "1 minute";
      return seconds + " second" + (seconds === 1 ? "" : "s");
    }

    function hide() {
      warning.hidden = true;
      window.clearInterval(tick);
    }

    function show() {
      var seconds = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
      left.textContent = words(seconds);
      warning.hidden = false;
      announce("You will be signed out in " + words(seconds) + ". Choose Stay signed in to keep working.");
      // Only when focus is not in the middle of something: never pull someone out of a field they are typing in.
      if (focusIsLost()) focusOn(button);
      tick = window.setInterval(function () {
        left.textContent = words(Math.max(0, Math.round((endsAt - Date.now()) / 1000)));
      }, 1000);
    }

    function restart(secondsLeft) {
      window.clearTimeout(warnTimer);
      window.clearTimeout(endTimer);
      hide();
      endsAt = Date.now() + secondsLeft * 1000;
      warnTimer = window.setTimeout(show, Math.max(0, (secondsLeft - warnBefore) * 1000));
      endTimer = window.setTimeout(function () { window.location.assign(signedOutUrl); }, secondsLeft * 1000 + 1000);
    }

    function fromResponse(xhr) {
      var header = xhr && xhr.getResponseHeader && xhr.getResponseHeader("X-Session-Idle-Remaining");
      var seconds = parseInt(header, 10);
      if (!isNaN(seconds)) restart(seconds);
    }

    button.addEventListener("click", function () {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", keepAliveUrl);
      xhr.setRequestHeader("X-CSRFToken", JSON.parse(body.getAttribute("hx-headers"))["X-CSRFToken"]);
      xhr.onload = function () {
        // 204 only: an ended session answers with the sign-in page (a redirect the request follows).
        if (xhr.status === 204) {
          var wasFocused = warning.contains(document.activeElement);
          fromResponse(xhr);
          announce("You are still signed in.");
          if (wasFocused) focusOn(document.getElementById("content"));
        } else {
          window.location.assign(signedOutUrl);
        }
      };
      xhr.send();
    });
    document.addEventListener("htmx:afterRequest", function (event) { fromResponse(event.detail.xhr); });
    restart(parseInt(body.getAttribute("data-idle-timeout"), 10));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", onLoad);
  else onLoad();
})();
