/* Fraudrail review console: keyboard shortcuts. Plain JS, no dependencies, no build step.
 *
 * Queue:  j / k select the next / previous row, Enter or o opens it, x ticks it for a bulk
 *         action, c claims it, f / l / e record fraud / legit / escalate for it.
 * Detail: j / k go to the next / previous open item, c claims, f / l / e decide, u back to the queue.
 * Keys are ignored while typing in a field and when a modifier (Ctrl, Alt, Meta) is held.
 */
"use strict";

(function () {
  const VERDICT_KEYS = { f: "fraud", l: "legit", e: "escalate" };

  function typing(target) {
    if (!target || !(target instanceof Element)) return false;
    return target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }

  function follow(selector) {
    const link = document.querySelector(selector);
    if (link) window.location.assign(link.getAttribute("href"));
  }

  function setupDetail(root) {
    return function (key) {
      if (key === "c") {
        const form = document.getElementById("claim-form");
        if (form) form.requestSubmit();
        return Boolean(form);
      }
      if (key in VERDICT_KEYS) {
        const button = document.querySelector('form[data-verdicts] button[data-key="' + key + '"]');
        if (button) button.click();
        return Boolean(button);
      }
      if (key === "j" || key === "k" || key === "u") {
        follow('.crumbs a[data-key="' + key + '"]');
        return true;
      }
      return false;
    };
  }

  function setupQueue(rows) {
    let current = -1;

    function select(index) {
      if (!rows.length) return;
      current = Math.max(0, Math.min(rows.length - 1, index));
      rows.forEach(function (row, i) {
        row.classList.toggle("selected", i === current);
        row.setAttribute("aria-selected", i === current ? "true" : "false");
      });
      rows[current].scrollIntoView({ block: "nearest" });
    }

    function act(path, verdict) {
      if (current < 0) return;
      const form = document.getElementById("row-action");
      form.action = "/console/reviews/" + encodeURIComponent(rows[current].dataset.reviewId) + "/" + path;
      form.elements.namedItem("verdict").value = verdict || "";
      form.submit();
    }

    const boxes = rows.map(function (row) { return row.querySelector('input[type="checkbox"]'); });
    const counter = document.querySelector('[data-testid="selected-count"]');
    const all = document.getElementById("select-all");

    function countTicked() {
      const ticked = boxes.filter(function (b) { return b && b.checked; }).length;
      if (counter) counter.textContent = ticked + " selected";
      if (all) all.checked = ticked > 0 && ticked === boxes.length;
    }

    boxes.forEach(function (b) { if (b) b.addEventListener("change", countTicked); });
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { if (b) b.checked = all.checked; });
        countTicked();
      });
    }

    rows.forEach(function (row, i) {
      row.addEventListener("click", function (ev) {
        if (ev.target instanceof Element && ev.target.closest("a, input")) return;
        select(i);
      });
    });

    return function (key) {
      if (key === "j") { select(current + 1); return true; }
      if (key === "k") { select(current < 0 ? 0 : current - 1); return true; }
      if ((key === "Enter" || key === "o") && current >= 0) {
        window.location.assign(rows[current].dataset.href);
        return true;
      }
      if (key === "x" && current >= 0 && boxes[current]) {
        boxes[current].checked = !boxes[current].checked;
        countTicked();
        return true;
      }
      if (key === "c") { act("claim"); return current >= 0; }
      if (key in VERDICT_KEYS) { act("verdict", VERDICT_KEYS[key]); return current >= 0; }
      return false;
    };
  }

  function init() {
    const detail = document.querySelector("[data-review-detail]");
    const rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-review-id]"));
    const handle = detail ? setupDetail(detail) : rows.length ? setupQueue(rows) : null;
    if (!handle) return;
    document.body.dataset.shortcuts = "ready";
    document.addEventListener("keydown", function (ev) {
      if (ev.defaultPrevented || ev.ctrlKey || ev.altKey || ev.metaKey || typing(ev.target)) return;
      if (handle(ev.key)) ev.preventDefault();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
