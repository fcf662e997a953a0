// Queue: outbound messages waiting for delivery.
import { api, enc } from '../api.js';
import { h, table, toolbar, confirmDialog, badge, fmtDate, fmtSize, each, viewHead } from '../dom.js';

export default { id: 'queue', title: 'Queue', render };

const KIND = { pending: 'warn', delivered: 'ok', bounced: 'error' };

function recipients(m) {
  return h('ul', { class: 'rcpts' }, m.recipients.map((r) => h('li', null,
    h('span', { class: 'mono' }, r.address), ' ', badge(r.state, KIND[r.state]),
    h('span', { class: 'muted' }, ` ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}`, r.nextAttemptAt ? ` · next ${fmtDate(r.nextAttemptAt)}` : ''),
    r.lastError ? h('div', { class: 'last-error' }, r.lastError) : null)));
}

async function render(root, ctx) {
  const tb = toolbar('Queue actions', [
    { label: 'Retry', id: 'retry', needs: 'some', run: retry },
    { label: 'Retry all', id: 'retry-all', run: retryAll },
    { label: 'Delete', id: 'delete', cls: 'danger', needs: 'some', run: del },
    { label: 'Refresh', id: 'refresh', run: () => { ctx.refreshCounts(); load().catch(ctx.fail); } },
  ]);
  const t = table({
    key: (m) => m.id,
    name: (m) => m.id,
    onSelect: tb.update,
    empty: 'The queue is empty.',
    columns: [
      { label: 'ID', cell: (m) => m.id, cls: 'mono' },
      { label: 'Sender', cell: (m) => m.sender || '<>' },
      { label: 'Size', cell: (m) => fmtSize(m.size), cls: 'num' },
      { label: 'Received', cell: (m) => fmtDate(m.receivedAt) },
      { label: 'Recipients', cell: recipients, cls: 'wide' },
    ],
  });
  root.append(viewHead('Queue', 'Messages waiting for delivery to other servers.'), tb.el, t.el);

  /** The list; `o` is {background: true} when a poll asks. */
  async function load(o) {
    const q = await api('GET', '/queue', undefined, o);
    if (ctx.active()) t.setRows(q);
  }
  await load();
  ctx.poll(async (o) => { await load(o); ctx.refreshCounts(o); }, 10000);
  const after = () => { ctx.refreshCounts(); return load(); };

  async function retry() {
    const done = [];
    const errors = await each(t.selected(), async (m) => { await api('POST', `/queue/${enc(m.id)}/retry`); done.push(m.id); }, (m) => m.id);
    if (done.length) ctx.alert(`Retry scheduled for ${done.join(', ')}.`, 'info');
    errors.forEach((e) => ctx.alert(e));
    await after();
  }
  async function retryAll() {
    try {
      const r = await api('POST', '/queue/retry');
      ctx.alert(`${r.recipients} recipient${r.recipients === 1 ? '' : 's'} will be tried again now.`, 'info');
    } catch (err) { ctx.fail(err); }
    await after();
  }
  async function del() {
    const sel = t.selected();
    if (!sel.length || !(await confirmDialog('Delete queued messages', 'Delete these messages? They will not be delivered.', sel.map((m) => `${m.id} from ${m.sender || '<>'}`)))) return;
    const errors = await each(sel, (m) => api('DELETE', `/queue/${enc(m.id)}`), (m) => m.id);
    errors.forEach((e) => ctx.alert(e));
    await after();
  }
}
