// llm_magic's live timeline: the front end of one anywidget model per chain run.
//
// Python renders every entry's HTML (escaped and sanitized there, the same fragments as the saved
// timeline). This module only places the entries and handles the interaction: turn, group and
// call toggles, copy to the clipboard, the approval card (decision + reason leave as ONE message
// with the click or Ctrl+Enter; a new card is announced, never focused while the user works
// outside the timeline), Cancel (enabled again for a re-run), follow-the-tail unless the user scrolled up, live elapsed
// times, and Edit & re-run on a view still live after its run (the edited arguments leave as ONE
// message with the click; Python checks them and answers with an error or the re-run's entries).
// No build step: a plain ES module. Longer than 500 lines: anywidget loads one module (no build,
// no relative imports), so the call editor lives here with the rest of the view.

// One store per widget, keyed by its `key` trait: anywidget hands each view its own proxy of the
// model, so a view made again (the display updated when the run ends, the same widget shown
// twice) finds the store the first view filled. The store lives on globalThis: every view of
// every run shares it, whichever copy of this module anywidget loaded.
const STORES = (globalThis.__llmMagicTimelineStores ??= new Map());
const FORGET_AFTER_MS = 60_000; // a store with no view left is dropped; a later view asks anew

// The store of this view's model, and what ends this view's subscription to it. Each view
// listens through its own proxy (anywidget drops a view's listeners with the view); a patch is
// taken once, by sequence number, whichever view sees it first. A view that starts on a partial
// patch, or sees a gap in the sequence, asks Python for the whole state (`snapshot`).
function storeOf(model) {
  const key = model.get("key") || "";
  let store = key ? STORES.get(key) : undefined;
  if (!store) {
    store = { entries: new Map(), order: [], seq: -1, views: new Set(), collapsed: new Map() };
    if (key) STORES.set(key, store);
  }
  clearTimeout(store.forget);
  const take = () => {
    const patch = model.get("patch") || {};
    if (typeof patch.seq !== "number" || !Array.isArray(patch.entries)) return;
    if (patch.seq <= store.seq && !(patch.full && patch.seq > store.fullSeq)) return;
    if (patch.full) {
      store.entries.clear();
      store.order = [];
      if (store.generation !== model.get("generation")) store.collapsed.clear(); // another run
      store.generation = model.get("generation");
      store.fullSeq = patch.seq;
    } else if (patch.seq !== store.seq + 1) {
      model.send({ type: "snapshot" }); // entries were missed: the whole state follows
    }
    store.seq = Math.max(store.seq, patch.seq);
    const merged = [];
    for (const entry of patch.entries) {
      const old = store.entries.get(entry.id);
      if (!old) store.order.push(entry.id);
      // a turn's text is sent only when it changed: keep the one the store has
      const whole = old && entry.text === undefined ? { ...entry, text: old.text } : entry;
      store.entries.set(entry.id, whole);
      merged.push(whole);
    }
    for (const view of store.views) view(merged, patch.full);
  };
  model.on("change:patch", take);
  take();
  const release = (apply) => {
    model.off("change:patch", take);
    store.views.delete(apply);
    if (key && store.views.size === 0) {
      store.forget = setTimeout(() => STORES.delete(key), FORGET_AFTER_MS);
    }
  };
  return { store, release };
}

function make(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function button(className, label, onClick) {
  const b = make("button", `llm-button ${className}`, label);
  b.type = "button";
  b.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick(b);
  });
  return b;
}

function fmtDuration(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.floor(seconds % 60);
  return `${m} min ${String(s).padStart(2, "0")} s`;
}

function scrollParent(el) {
  for (let p = el.parentElement; p; p = p.parentElement) {
    const style = getComputedStyle(p);
    if (/(auto|scroll)/.test(style.overflowY) && p.scrollHeight > p.clientHeight) return p;
  }
  return document.scrollingElement || document.documentElement;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_err) {
    const area = make("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (_e) {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

// "Insert into a new cell": below the cell that shows this timeline, through the application
// object where the page exposes it (JupyterLab and Notebook 7 started with
// --expose-app-in-browser); a widget has no other way to the notebook. Elsewhere: false.
async function insertCell(el, code) {
  const app = globalThis.jupyterapp;
  const panel = app && app.shell && app.shell.currentWidget;
  const notebook = panel && panel.content;
  if (!notebook || !Array.isArray(notebook.widgets)) return false;
  const index = notebook.widgets.findIndex((cell) => cell.node.contains(el));
  if (index < 0) return false;
  notebook.activeCellIndex = index;
  await app.commands.execute("notebook:insert-cell-below");
  notebook.activeCell.model.sharedModel.setSource(code);
  return true;
}

// a code block of an answer: Copy, and Insert into a new cell (or Copy where it cannot)
function decorateCode(scope) {
  for (const pre of scope.querySelectorAll("pre")) {
    const code = pre.textContent.replace(/\n$/, "");
    const bar = make("div", "llm-code-bar");
    const flash = (b, label, text) => {
      b.textContent = text;
      setTimeout(() => (b.textContent = label), 1500);
    };
    const copy = button("llm-code-copy", "Copy", async (b) =>
      flash(b, "Copy", (await copyText(code)) ? "Copied ✓" : "Copy failed"));
    const insert = button("llm-code-insert", "Insert into a new cell", async (b) => {
      if (await insertCell(scope, code)) return flash(b, "Insert into a new cell", "Inserted ✓");
      const ok = await copyText(code);
      flash(b, "Insert into a new cell", ok ? "Copied: paste it into a new cell" : "Copy failed");
    });
    bar.append(copy, insert);
    const box = make("div", "llm-code");
    pre.replaceWith(box);
    box.append(bar, pre);
  }
}

function setToggle(toggle, expanded, showLabel, hideLabel) {
  toggle.setAttribute("aria-expanded", String(expanded));
  toggle.setAttribute("aria-label", expanded ? hideLabel : showLabel);
  toggle.title = expanded ? hideLabel : showLabel;
  toggle.firstChild.textContent = expanded ? "▾" : "▸";
}

function toggleButton() {
  const t = make("button", "llm-toggle");
  t.type = "button";
  const glyph = make("span", "", "▸");
  glyph.setAttribute("aria-hidden", "true");
  t.appendChild(glyph);
  return t;
}

function render({ model, el }) {
  const { store, release } = storeOf(model);
  const send = (msg) => model.send(msg);
  const root = make("div", "llm-magic-timeline llm-live");
  root.setAttribute("role", "region");
  root.setAttribute("aria-label", "LLM run timeline");

  // header: run summary, Expand all, Cancel (sticky while the timeline scrolls by)
  const head = make("div", "llm-head");
  const info = make("div", "llm-head-info");
  info.setAttribute("aria-live", "polite");
  const actions = make("div", "llm-head-actions");
  let allOpen = false;
  const expandAll = button("llm-expand-all", "Expand all", () => {
    allOpen = !allOpen;
    expandAll.textContent = allOpen ? "Collapse all" : "Expand all";
    for (const [id, view] of views) {
      if (view.kind === "call") view.setOpen(allOpen, false);
    }
    send({ type: "open_all", open: allOpen });
  });
  const cancel = button("llm-cancel", "Cancel", (b) => {
    b.disabled = true;
    b.textContent = "Cancelling…";
    send({ type: "cancel" });
  });
  cancel.title = "Stop the run (same as interrupting the kernel)";
  const done = button("llm-done", "Done", (b) => {
    b.disabled = true;
    send({ type: "done" });
  });
  done.title = "Stop editing: the view becomes the static timeline, which a saved notebook shows everywhere";
  actions.append(expandAll, done, cancel);
  head.append(info, actions);
  const note = make("div", "llm-note-slot");
  // the tools always allowed in this session, each with its Revoke
  const allowedSlot = make("div", "llm-allowed");
  const body = make("div", "llm-body");
  // screen readers hear of a new approval card here; the card itself never takes the focus
  const announce = make("div", "llm-announce");
  announce.setAttribute("aria-live", "polite");
  announce.setAttribute("role", "status");
  // the runs this view showed before the current one (a re-run stacks below its original)
  const history = make("div", "llm-history");
  root.append(history, head, allowedSlot, note, body, announce);
  el.appendChild(root);

  const views = new Map();
  let wasRunning = false;

  function stampElapsed(scope) {
    const t0 = performance.now();
    for (const span of scope.querySelectorAll(".llm-elapsed")) span.dataset.t0 = String(t0);
  }

  function setHeader() {
    info.innerHTML = model.get("header") || "";
    stampElapsed(info);
    const running = !!model.get("running");
    cancel.hidden = !running;
    if (!running) {
      cancel.disabled = true;
    } else if (!wasRunning) {
      // a run starts (a re-run in a view whose run ended): its Cancel works again
      cancel.disabled = false;
      cancel.textContent = "Cancel";
    }
    wasRunning = running;
    expandAll.hidden = !model.get("has_calls");
    done.hidden = !model.get("editable");
    const past = model.get("history") || "";
    if (history.dataset.html !== past) {
      history.dataset.html = past;
      history.innerHTML = past;
    }
    history.hidden = !past;
    const allowed = model.get("allowed") || [];
    if (allowedSlot.dataset.names !== allowed.join("\n")) {
      allowedSlot.dataset.names = allowed.join("\n");
      allowedSlot.replaceChildren();
      if (allowed.length) allowedSlot.append("Always allowed in this session: ");
      for (const name of allowed) {
        const chip = make("span", "llm-allowed-tool", name);
        const revoke = button("llm-revoke", "Revoke", (b) => {
          b.disabled = true;
          send({ type: "revoke", tool: name });
        });
        revoke.title = `Ask again before each call of ${name}`;
        chip.append(" ", revoke);
        allowedSlot.append(chip);
      }
    }
    const n = model.get("note") || "";
    if (note.dataset.html !== n) {
      note.dataset.html = n;
      note.innerHTML = n;
    }
  }

  function turnView(entry) {
    const section = make("section", "llm-turn");
    section.dataset.id = entry.id;
    const row = make("div", "llm-row llm-turn-row");
    const toggle = toggleButton();
    const line = make("div", "llm-line-slot");
    row.append(toggle, line);
    const inner = make("div", "llm-turn-body");
    const text = make("div", "llm-text");
    const group = make("div", "llm-group");
    const groupRow = make("div", "llm-row llm-group-row");
    const groupToggle = toggleButton();
    const label = make("div", "llm-group-label-slot");
    groupRow.append(groupToggle, label);
    const calls = make("div", "llm-calls");
    group.append(groupRow, calls);
    inner.append(text, group);
    section.append(row, inner);
    const view = {
      kind: "turn",
      el: section,
      calls,
      collapsed: store.collapsed.get(entry.id) ?? false,
      groupCollapsed: store.collapsed.get(`${entry.id}/group`),
      update(e) {
        line.innerHTML = e.line;
        stampElapsed(line);
        if (text.dataset.html !== e.text) {
          text.dataset.html = e.text;
          text.innerHTML = e.text;
          decorateCode(text);
        }
        text.hidden = !e.text;
        group.dataset.parallel = e.group ? "yes" : "no";
        if (e.group) label.innerHTML = e.group;
        if (this.groupCollapsed === undefined && e.fold) this.groupCollapsed = true;
        this.paint(e);
      },
      paint(e) {
        inner.hidden = this.collapsed;
        setToggle(toggle, !this.collapsed, `Show ${e.title}`, `Hide ${e.title}`);
        const folded = !!this.groupCollapsed && group.dataset.parallel === "yes";
        calls.hidden = folded;
        const n = calls.children.length;
        setToggle(groupToggle, !folded, `Show the ${n} calls of ${e.title}`, `Hide the ${n} calls of ${e.title}`);
      },
    };
    toggle.addEventListener("click", () => {
      view.collapsed = !view.collapsed;
      store.collapsed.set(entry.id, view.collapsed);
      view.paint(store.entries.get(entry.id));
    });
    groupToggle.addEventListener("click", () => {
      view.groupCollapsed = !view.groupCollapsed;
      store.collapsed.set(`${entry.id}/group`, view.groupCollapsed);
      view.paint(store.entries.get(entry.id));
    });
    return view;
  }

  function approvalCard(entry, view) {
    const card = make("div", "llm-approval");
    card.dataset.lmSuppressShortcuts = "true"; // JupyterLab's shortcuts leave the typing alone
    card.setAttribute("role", "group");
    card.setAttribute("aria-label", `Approve ${entry.title}?`);
    const title = make("div", "llm-approval-title");
    title.append("Run ", make("b", "", entry.approval.name), "? It needs your approval.");
    const args = make("div", "llm-approval-args");
    args.innerHTML = entry.approval.args;
    const bar = make("div", "llm-approval-actions");
    const reason = make("input", "llm-reason");
    reason.type = "text";
    reason.placeholder = "Reason (optional, sent to the model)";
    reason.title = "Sent to the model with your decision; Ctrl+Enter denies";
    reason.setAttribute("aria-label", `Reason for the decision on ${entry.title}, sent to the model`);
    // "always allow": this tool's later calls, in any run of this kernel, need no card
    const always = make("label", "llm-always");
    const alwaysBox = make("input");
    alwaysBox.type = "checkbox";
    always.append(alwaysBox, ` Always allow ${entry.approval.name} in this session`);
    always.title = "Approve this tool's calls from now on without asking; the header lists it, with Revoke";
    const decide = (approved, ids) => {
      for (const b of bar.querySelectorAll("button")) b.disabled = true;
      reason.disabled = alwaysBox.disabled = true;
      card.classList.add("llm-sent");
      send({ type: "decide", ids, approved, reason: reason.value, always: approved && alwaysBox.checked });
    };
    const approve = button("llm-approve", "Approve", () => decide(true, [entry.id]));
    const deny = button("llm-deny", "Deny", () => decide(false, [entry.id]));
    // the group's buttons: on its first card only, once per group
    const all = button("llm-approve-all", "Approve all", () => decide(true, view.batch()));
    const denyAll = button("llm-deny-all", "Deny all", () => decide(false, view.batch()));
    all.hidden = denyAll.hidden = true;
    // Enter alone decides nothing: keys meant for another cell must never answer the card
    reason.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.isComposing) return;
      event.preventDefault();
      event.stopPropagation();
      if (event.ctrlKey || event.metaKey) decide(false, [entry.id]);
    });
    bar.append(approve, deny, all, denyAll, reason, always);
    card.append(title, args, bar);
    card.refreshAll = (n, first) => {
      all.hidden = denyAll.hidden = n < 2 || !first;
      all.textContent = `Approve all ${n}`;
      denyAll.textContent = `Deny all ${n}`;
    };
    return card;
  }

  // the inline editor of a finished call: its arguments ("Re-run from here") or its result ("Use
  // this result"); the text leaves with the click, as one message
  const MODES = {
    rerun: {
      action: "Re-run from here",
      what: "Arguments",
      hint: "Runs the call again with these arguments, as a new run (Ctrl+Enter); this run stays as it is.",
    },
    given: {
      action: "Use this result",
      what: "Result",
      hint: "Goes on from here as if the call returned this (JSON), as a new run (Ctrl+Enter); this run stays as it is.",
    },
  };

  function editorBox(entry) {
    const box = make("div", "llm-editor");
    box.hidden = true;
    box.dataset.lmSuppressShortcuts = "true"; // JupyterLab's shortcuts leave the typing alone
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", `Edit the arguments of ${entry.title} and re-run from there`);
    const area = make("textarea", "llm-edit-args");
    area.spellcheck = false;
    area.rows = 4;
    area.setAttribute("aria-label", `Arguments of ${entry.title}, as JSON`);
    const error = make("div", "llm-edit-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    const bar = make("div", "llm-editor-actions");
    const hint = make("span", "llm-editor-hint");
    let mode = "rerun";
    const submit = () => {
      if (rerun.disabled) return;
      rerun.disabled = true;
      area.readOnly = true;
      error.hidden = true;
      rerun.textContent = "Starting…";
      const msg = { type: mode, id: entry.id, generation: model.get("generation") };
      msg[mode === "given" ? "value" : "arguments"] = area.value;
      send(msg);
    };
    const rerun = button("llm-rerun", "Re-run from here", submit);
    const cancel = button("llm-edit-cancel", "Cancel", () => box.shut());
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.isComposing) {
        event.preventDefault();
        event.stopPropagation();
        submit();
      } else if (event.key === "Escape") {
        event.stopPropagation();
        box.shut();
      }
    });
    bar.append(rerun, cancel, hint);
    box.append(area, error, bar);
    box.ready = () => {
      rerun.disabled = false;
      rerun.textContent = MODES[mode].action;
      area.readOnly = false;
    };
    box.open = (text, how) => {
      mode = how;
      box.dataset.mode = how;
      hint.textContent = MODES[how].hint;
      area.setAttribute("aria-label", `${MODES[how].what} of ${entry.title}, as JSON`);
      area.value = text;
      error.hidden = true;
      box.ready();
      box.hidden = false;
      area.focus({ preventScroll: true });
    };
    box.shut = () => {
      box.hidden = true;
    };
    box.failed = (message) => {
      error.textContent = message;
      error.hidden = false;
      box.ready();
    };
    return box;
  }

  function callView(entry) {
    const box = make("div", "llm-call");
    box.dataset.id = entry.id;
    const row = make("div", "llm-row llm-call-row");
    const toggle = toggleButton();
    const line = make("div", "llm-line-slot");
    row.append(toggle, line);
    const detail = make("div", "llm-detail");
    detail.hidden = true;
    const detailBody = make("div", "llm-detail-slot", "loading…");
    const copies = make("div", "llm-copy-bar");
    const copyButton = (what, label) =>
      button(`llm-copy llm-copy-${what}`, label, async (b) => {
        const data = store.entries.get(entry.id);
        const text = data && data.copy ? data.copy[what] : "";
        const ok = text ? await copyText(text) : false;
        b.textContent = ok ? "Copied ✓" : "Copy failed";
        b.classList.toggle("llm-copied", ok);
        setTimeout(() => {
          b.textContent = label;
          b.classList.remove("llm-copied");
        }, 1500);
      });
    copies.append(copyButton("arguments", "Copy arguments"), copyButton("call", "Copy call (JSON)"));
    const editor = editorBox(entry);
    const editButton = button("llm-edit", "Edit & re-run", () => {
      const data = store.entries.get(entry.id);
      if (data && data.edit !== undefined) editor.open(data.edit, "rerun");
    });
    editButton.title = "Edit this call's arguments and re-run from here, as a new run";
    const givenButton = button("llm-edit-result", "Edit result", () => {
      const data = store.entries.get(entry.id);
      if (data && data.given !== undefined) editor.open(data.given, "given");
    });
    givenButton.title = "Go on from here with another result for this call, as a new run";
    editButton.hidden = givenButton.hidden = true;
    copies.append(editButton, givenButton);
    detail.append(detailBody, copies, editor);
    box.append(row, detail);
    const view = {
      kind: "call",
      el: box,
      open: false,
      card: null,
      parent: entry.parent,
      tries: entry.edit_try || 0,
      update(e) {
        box.dataset.status = e.status;
        editButton.hidden = e.edit === undefined;
        givenButton.hidden = e.given === undefined;
        if (e.edit === undefined) editor.shut();
        if ((e.edit_try || 0) > this.tries) {
          this.tries = e.edit_try;
          editor.failed(e.edit_error);
        }
        line.innerHTML = e.line;
        stampElapsed(line);
        if (e.approval && !this.card) {
          this.card = approvalCard(e, this);
          box.insertBefore(this.card, detail);
          announce.textContent = `${e.title} needs your approval`;
          // the focus moves only when it is in this timeline already (the user just answered
          // another card): from anywhere else, keys go on to where the user is typing
          const active = document.activeElement;
          const reasonBox = this.card.querySelector(".llm-reason");
          if (reasonBox && active && active !== document.body && root.contains(active)) {
            if (!active.classList.contains("llm-reason") || active.disabled) {
              reasonBox.focus({ preventScroll: true });
            }
          }
        } else if (!e.approval && this.card) {
          this.card.remove();
          this.card = null;
        }
        if (e.detail !== undefined && detailBody.dataset.html !== e.detail) {
          detailBody.dataset.html = e.detail;
          detailBody.innerHTML = e.detail;
        }
        setToggle(toggle, this.open, `Show details of ${e.title}`, `Hide details of ${e.title}`);
      },
      setOpen(open, notify = true) {
        this.open = open;
        detail.hidden = !open;
        const e = store.entries.get(entry.id);
        setToggle(toggle, open, `Show details of ${e.title}`, `Hide details of ${e.title}`);
        if (notify) send({ type: "open", id: entry.id, open });
      },
      batch() {
        const ids = [];
        for (const [id, v] of views) {
          if (v.kind === "call" && v.parent === this.parent && v.card) ids.push(id);
        }
        return ids;
      },
    };
    toggle.addEventListener("click", () => view.setOpen(!view.open));
    return view;
  }

  function place(entry) {
    let view = views.get(entry.id);
    if (!view) {
      view = entry.kind === "turn" ? turnView(entry) : callView(entry);
      views.set(entry.id, view);
      const parent = entry.kind === "call" && entry.parent ? views.get(entry.parent) : null;
      (parent ? parent.calls : body).appendChild(view.el);
    }
    view.update(entry);
  }

  function refreshBatches() {
    const byParent = new Map();
    for (const v of views.values()) {
      if (v.kind === "call" && v.card) byParent.set(v.parent, (byParent.get(v.parent) || 0) + 1);
    }
    const firsts = new Set();
    for (const v of views.values()) {
      if (v.kind !== "call" || !v.card) continue;
      v.card.refreshAll(byParent.get(v.parent) || 0, !firsts.has(v.parent));
      firsts.add(v.parent);
    }
    for (const v of views.values()) {
      if (v.kind === "turn") {
        const e = store.entries.get(v.el.dataset.id);
        if (e) v.paint(e);
      }
    }
  }

  function bottomVisible() {
    const sc = scrollParent(root);
    const box = root.getBoundingClientRect();
    const view = sc === document.scrollingElement ? { bottom: window.innerHeight } : sc.getBoundingClientRect();
    return box.bottom <= view.bottom + 48;
  }

  function followTail(wasFollowing) {
    if (!wasFollowing) return;
    const sc = scrollParent(root);
    const box = root.getBoundingClientRect();
    const view = sc === document.scrollingElement ? { bottom: window.innerHeight } : sc.getBoundingClientRect();
    const overflow = box.bottom - view.bottom;
    if (overflow > 0) sc.scrollTop += overflow + 8;
  }

  function apply(entries, full) {
    const following = model.get("running") && bottomVisible();
    if (full) {
      body.replaceChildren();
      views.clear();
      for (const id of store.order) place(store.entries.get(id));
    } else {
      for (const entry of entries) place(entry);
    }
    refreshBatches();
    followTail(following);
  }

  for (const id of store.order) place(store.entries.get(id));
  refreshBatches();
  setHeader();
  store.views.add(apply);
  const onHeader = () => setHeader();
  model.on("change:header", onHeader);
  model.on("change:running", onHeader);
  model.on("change:has_calls", onHeader);
  model.on("change:note", onHeader);
  model.on("change:editable", onHeader);
  model.on("change:history", onHeader);
  model.on("change:allowed", onHeader);

  const timer = setInterval(() => {
    if (!model.get("running")) return;
    const now = performance.now();
    for (const span of root.querySelectorAll(".llm-elapsed")) {
      const base = parseFloat(span.dataset.elapsed || "0");
      const t0 = parseFloat(span.dataset.t0 || String(now));
      span.textContent = fmtDuration(base + (now - t0) / 1000);
    }
  }, 250);

  return () => {
    clearInterval(timer);
    release(apply);
    model.off("change:header", onHeader);
    model.off("change:running", onHeader);
    model.off("change:has_calls", onHeader);
    model.off("change:note", onHeader);
    model.off("change:editable", onHeader);
    model.off("change:history", onHeader);
    model.off("change:allowed", onHeader);
  };
}

export default { render };
