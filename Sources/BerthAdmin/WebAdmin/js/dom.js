// DOM helpers. Every value reaches the page as text: string children become text
// nodes, attributes go through setAttribute/properties; nothing is parsed as HTML.

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'readOnly', 'required', 'multiple', 'indeterminate']);

/** h('tag', {attrs}, ...children): `on*` attributes must be functions (listeners). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) { if (typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v); }
      else if (k === 'class') el.className = v;
      else if (k === 'for') el.htmlFor = v;
      else if (k === 'style') throw new Error('inline styles are not allowed (CSP)');
      else if (PROPS.has(k)) el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) { el.replaceChildren(); return el; }

let uid = 0;
export const nextId = (p = 'f') => `${p}${++uid}`;

export function fmtDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

export function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

/** Labelled form controls. Returns {row, input}. */
export function field(label, input, hint) {
  if (!input.id) input.id = nextId();
  const row = h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hint ? h('small', { class: 'hint' }, hint) : null);
  return { row, input };
}

export function checkbox(label, checked, attrs = {}) {
  const input = h('input', { type: 'checkbox', id: nextId('c'), checked: !!checked, ...attrs });
  const row = h('div', { class: 'check' }, input, h('label', { for: input.id }, label));
  return { row, input };
}

export function select(options, value, attrs = {}) {
  const el = h('select', attrs);
  for (const [v, text] of options) el.append(h('option', { value: v, selected: v === value }, text));
  return el;
}

export function badge(text, kind) { return h('span', { class: `badge ${kind || ''}` }, text); }

export function debounce(fn, ms) {
  let t;
  const d = (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
  d.cancel = () => clearTimeout(t);
  return d;
}

// ---------------------------------------------------------------- dialogs

/** A modal <dialog>: Escape closes it (the browser's cancel), focus returns to the opener. */
export function modal(title, { wide = false } = {}) {
  const opener = document.activeElement;
  const titleId = nextId('t');
  const errorBox = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const body = h('div', { class: 'dialog-body' });
  const actions = h('div', { class: 'dialog-actions' });
  const form = h('form', { method: 'dialog', novalidate: true }, h('h2', { id: titleId }, title), errorBox, body, actions);
  const dlg = h('dialog', { class: wide ? 'wide' : '', 'aria-labelledby': titleId }, form);
  const m = {
    dlg, form, body, actions, errorBox, busy: false,
    close() { dlg.close(); },
    onClose: null,
  };
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (m.onClose) m.onClose();
    if (dlg.dataset.noReturn) return; // closed by navigation or logout
    // A row re-rendered by the save: focus its successor with the same key.
    const back = opener && (opener.isConnected ? opener
      : opener.dataset && opener.dataset.key && document.querySelector(`tr[data-key="${CSS.escape(opener.dataset.key)}"]`));
    if (back) back.focus();
  });
  dlg.addEventListener('cancel', (e) => { if (m.busy) e.preventDefault(); });
  document.body.append(dlg);
  return m;
}

export function showModal(m) {
  m.dlg.showModal();
  const first = m.body.querySelector('input:not([type=hidden]):not([readonly]):not([disabled]), select, textarea, button');
  if (first) first.focus();
}

/** A form dialog with Save/Cancel. `save()` throws ApiError to keep the dialog open. */
export function formDialog(title, { wide, saveLabel = 'Save', save, fields = {} }) {
  const m = modal(title, { wide });
  m.fields = fields;
  const saveBtn = h('button', { type: 'submit', class: 'primary' }, saveLabel);
  const cancel = h('button', { type: 'button', onclick: () => m.close() }, 'Cancel');
  m.actions.append(cancel, saveBtn);
  m.saveBtn = saveBtn;
  m.form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (m.busy) return;
    if (m.cancelChecks) m.cancelChecks();
    m.busy = true; saveBtn.disabled = true;
    clearErrors(m);
    try {
      await save(m);
      m.busy = false;
      m.close();
    } catch (err) {
      m.busy = false;
      showError(m, err);
    } finally {
      saveBtn.disabled = false;
    }
  });
  return m;
}

export function clearErrors(m, scope) {
  const root = scope || m.form;
  for (const el of root.querySelectorAll('.field-error')) el.remove();
  for (const el of root.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  if (!scope) { m.errorBox.hidden = true; m.errorBox.textContent = ''; }
}

/** The control an error's `field` names: exact, then without `[i]` and trailing `.parts`. */
export function fieldTarget(fields, name) {
  if (!name) return null;
  let f = name;
  for (let i = 0; i < 6 && f; i++) {
    if (fields[f]) return fields[f];
    const g = f.replace(/\[\d+\]$/, '');
    f = g !== f ? g : f.includes('.') ? f.slice(0, f.lastIndexOf('.')) : '';
  }
  return null;
}

/** Shows an API error next to its control, else in the dialog's error box. */
export function showError(m, err, { focus = true } = {}) {
  const target = fieldTarget(m.fields, err.field) || (err.code && m.fields['@' + err.code]);
  const text = err.message || String(err);
  if (target) {
    const id = nextId('e');
    const msg = h('div', { class: 'field-error', id, role: 'alert' }, text);
    target.after(msg);
    const control = target.matches('input,select,textarea') ? target : target.querySelector('input,select,textarea');
    if (control) { control.setAttribute('aria-invalid', 'true'); control.setAttribute('aria-describedby', id); if (focus && !target.contains(document.activeElement)) control.focus(); }
    return msg;
  }
  m.errorBox.textContent = text;
  m.errorBox.hidden = false;
  return m.errorBox;
}

/** Confirmation dialog naming the items; resolves true on OK. */
export function confirmDialog(title, message, items = [], okLabel = 'Delete') {
  return new Promise((resolve) => {
    const m = modal(title);
    let ok = false;
    m.body.append(h('p', null, message));
    if (items.length) m.body.append(h('ul', { class: 'confirm-list' }, items.map((i) => h('li', null, i))));
    const okBtn = h('button', { type: 'submit', class: 'danger' }, okLabel);
    m.actions.append(h('button', { type: 'button', onclick: () => m.close() }, 'Cancel'), okBtn);
    m.form.addEventListener('submit', (e) => { e.preventDefault(); ok = true; m.close(); });
    m.onClose = () => resolve(ok);
    m.dlg.showModal();
    okBtn.focus();
  });
}

// ---------------------------------------------------------------- selectable table

/**
 * A list with a checkbox per row, select-all, click to select, double-click or Enter to
 * edit. columns: [{label, cell(row) -> Node|string, cls}]. Rows are built into one
 * DocumentFragment and appended once; events are delegated to the tbody.
 */
export function table({ columns, key, name, onEdit, onSelect, selectable = true, empty = 'Nothing here yet.' }) {
  const selected = new Set();
  let rows = [];
  let byKey = new Map();
  const allBox = selectable ? h('input', { type: 'checkbox', id: nextId('all'), onchange: () => { setAll(allBox.checked); } }) : null;
  const head = h('tr', null,
    selectable ? h('th', { class: 'sel' }, allBox, h('label', { for: allBox.id, class: 'sr-only' }, 'Select all')) : null,
    columns.map((c) => h('th', { scope: 'col', class: c.cls }, c.label)));
  const tbody = h('tbody');
  const emptyRow = h('p', { class: 'empty', hidden: true }, empty);
  const el = h('div', { class: 'table-wrap' }, h('table', { class: 'list' }, h('thead', null, head), tbody), emptyRow);

  function sync(rowsToo = true) {
    if (rowsToo) {
      for (const tr of tbody.children) {
        const on = selected.has(tr.dataset.key);
        tr.classList.toggle('selected', on);
        const cb = tr.firstChild.firstChild;
        if (cb && cb.type === 'checkbox') cb.checked = on;
      }
    }
    if (allBox) {
      allBox.checked = rows.length > 0 && selected.size === rows.length;
      allBox.indeterminate = selected.size > 0 && selected.size < rows.length;
    }
    if (onSelect) onSelect(t.selected());
  }
  function setAll(on) {
    selected.clear();
    if (on) for (const r of rows) selected.add(String(key(r)));
    sync();
  }
  function rowOf(target) {
    const tr = target.closest('tr');
    return tr && tr.parentNode === tbody ? tr : null;
  }
  tbody.addEventListener('click', (e) => {
    const tr = rowOf(e.target);
    if (!tr || !selectable) return;
    if (e.target.closest('.sel')) {
      if (e.target.type === 'checkbox') { e.target.checked ? selected.add(tr.dataset.key) : selected.delete(tr.dataset.key); sync(); }
      return;
    }
    if (e.target.closest('button,a,input,select,textarea')) return;
    if (e.ctrlKey || e.metaKey) { selected.has(tr.dataset.key) ? selected.delete(tr.dataset.key) : selected.add(tr.dataset.key); }
    else { selected.clear(); selected.add(tr.dataset.key); }
    sync();
  });
  tbody.addEventListener('dblclick', (e) => {
    const tr = rowOf(e.target);
    if (!tr || !onEdit || e.target.closest('.sel')) return;
    selected.clear(); selected.add(tr.dataset.key); sync();
    onEdit(byKey.get(tr.dataset.key));
  });
  tbody.addEventListener('keydown', (e) => {
    const tr = rowOf(e.target);
    if (!tr || e.target !== tr) return;
    if (e.key === 'Enter' && onEdit) { e.preventDefault(); selected.clear(); selected.add(tr.dataset.key); sync(); onEdit(byKey.get(tr.dataset.key)); }
    else if (e.key === ' ' && selectable) { e.preventDefault(); selected.has(tr.dataset.key) ? selected.delete(tr.dataset.key) : selected.add(tr.dataset.key); sync(); }
    else if (e.key === 'ArrowDown' && tr.nextSibling) { e.preventDefault(); tr.nextSibling.focus(); }
    else if (e.key === 'ArrowUp' && tr.previousSibling) { e.preventDefault(); tr.previousSibling.focus(); }
  });

  const t = {
    el,
    setRows(list) {
      const t0 = performance.now();
      rows = list;
      byKey = new Map(rows.map((r) => [String(key(r)), r]));
      for (const k of [...selected]) if (!byKey.has(k)) selected.delete(k);
      const frag = document.createDocumentFragment();
      let i = 0;
      for (const r of rows) {
        const k = String(key(r));
        const tr = document.createElement('tr');
        tr.dataset.key = k;
        tr.tabIndex = 0;
        if (selectable) {
          const id = `${allBox.id}-${i++}`;
          const on = selected.has(k);
          if (on) tr.className = 'selected';
          // aria-label rather than a hidden <label>: the same name, 500 fewer elements to lay out.
          tr.append(h('td', { class: 'sel' },
            h('input', { type: 'checkbox', id, checked: on, 'aria-label': `Select ${name ? name(r) : k}` })));
        }
        for (const c of columns) {
          const td = document.createElement('td');
          if (c.cls) td.className = c.cls;
          const v = c.cell(r);
          if (v != null) td.append(v instanceof Node ? v : document.createTextNode(String(v)));
          tr.append(td);
        }
        frag.append(tr);
      }
      tbody.replaceChildren(frag);
      emptyRow.hidden = rows.length > 0;
      sync(false);
      // Style and layout now rather than at the next frame (the same work, done once), so
      // that data-render-ms is the whole cost of showing the rows.
      if (el.isConnected) void el.offsetHeight;
      el.dataset.renderMs = (performance.now() - t0).toFixed(1);
    },
    selected() { return rows.filter((r) => selected.has(String(key(r)))); },
    select(keys) { selected.clear(); for (const k of keys) selected.add(String(k)); sync(); },
  };
  return t;
}

/** A toolbar whose buttons enable by selection: needs 'one' | 'some' | 'none' | fn(sel). */
export function toolbar(label, buttons) {
  const els = buttons.map((b) => {
    const btn = h('button', { type: 'button', class: b.cls || '', onclick: () => b.run() }, b.label);
    btn.dataset.action = b.id || b.label.toLowerCase().replace(/\W+/g, '-');
    return { b, btn };
  });
  const el = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': label }, els.map((x) => x.btn));
  return {
    el,
    update(sel) {
      for (const { b, btn } of els) {
        const need = b.needs || 'none';
        btn.disabled = need === 'one' ? sel.length !== 1 : need === 'some' ? sel.length === 0 : typeof need === 'function' ? !need(sel) : false;
      }
    },
  };
}

/** Validates a dialog as the admin types: `run()` is a dry-run request, debounced. */
export function liveCheck(m, run, ms = 300) {
  let seq = 0;
  const d = debounce(async () => {
    const mine = ++seq;
    try {
      await run();
      if (mine === seq && !m.busy) clearErrors(m);
    } catch (err) {
      if (mine !== seq || m.busy || !err.status || err.status === 401) return;
      clearErrors(m);
      showError(m, err, { focus: false });
    }
  }, ms);
  m.cancelChecks = () => { seq++; d.cancel(); };
  m.dlg.addEventListener('close', m.cancelChecks);
  return d;
}

/** Runs `fn` for each item in turn; returns the errors as "item: message" lines. */
export async function each(items, fn, label) {
  const errors = [];
  for (const it of items) {
    try { await fn(it); } catch (e) { if (e.status === 401) throw e; errors.push(`${label(it)}: ${e.message}`); }
  }
  return errors;
}

/** The page head of a view: title and one line of help. */
export function viewHead(title, help) {
  return h('div', { class: 'view-head' }, h('h1', { tabindex: '-1' }, title), help ? h('p', { class: 'help' }, help) : null);
}
