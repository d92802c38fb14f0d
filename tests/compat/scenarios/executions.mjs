// The project's own scenarios for the REAL @trpc/client (tests/compat/node_modules) against the
// execution router of a running `chaingraph serve` (tests/compat/test_execution_router.py).
//
//   node scenarios/executions.mjs --url http://127.0.0.1:PORT
//        [--auth-url http://127.0.0.1:PORT2 --token T1 --other-token T2 --admin-token T3]
//        [--only SUBSTRING]
//
// --url: an embedded server in dev mode (everyone is an admin). --auth-url (optional): a server with
// dev auth off and the three tokens of `chaingraph users add`; it runs the `auth-*` scenarios.
// Prints one JSON line per scenario ({"scenario", "ok", "ms", ...}) and exits 1 when any failed.
// Plain ESM JavaScript: no build step.
import net from 'node:net';
import fs from 'node:fs';
import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  httpBatchStreamLink,
  httpLink,
  httpSubscriptionLink,
  splitLink,
  wsLink,
  TRPCClientError,
} from '@trpc/client';
import superjson from 'superjson';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';

// ------------------------------------------------------------------------------------ arguments
const args = {};
for (let i = 2; i < process.argv.length; i += 1) {
  const a = process.argv[i];
  if (a.startsWith('--')) {
    const next = process.argv[i + 1];
    args[a.slice(2)] = next === undefined || next.startsWith('--') ? true : next;
    if (args[a.slice(2)] !== true) i += 1;
  }
}
if (!args.url || args.url === true) {
  console.error('usage: node scenarios/executions.mjs --url http://127.0.0.1:PORT [--auth-url URL --token T --other-token T --admin-token T] [--only S]');
  process.exit(2);
}
const BASE = String(args.url).replace(/\/$/, '');
const ONLY = typeof args.only === 'string' ? args.only : null;
const TERMINAL = new Set(['flow:completed', 'flow:failed', 'flow:cancelled']);

// ------------------------------------------------------------------------------------ helpers
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Failure extends Error {}

function check(condition, message, details) {
  if (!condition) {
    const suffix = details === undefined ? '' : ` -- ${JSON.stringify(details, replacer)}`;
    throw new Failure(`${message}${suffix}`);
  }
}

function replacer(key, value) {
  const raw = this[key]; // before toJSON: shows which values really are Dates
  return raw instanceof Date ? `Date(${raw.toISOString()})` : value;
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Failure(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The tRPC error of a rejected call (fails when the call succeeded). */
async function rejection(promise, what) {
  try {
    const value = await promise;
    throw new Failure(`${what}: expected an error, got ${JSON.stringify(value, replacer)}`);
  } catch (err) {
    if (err instanceof Failure) throw err;
    check(err instanceof TRPCClientError, `${what}: not a TRPCClientError`, String(err));
    return err;
  }
}

function expectCode(err, code, what) {
  check(err.data?.code === code, `${what}: expected ${code}`, { code: err.data?.code, message: err.message });
}

const node = (id, type, inputs = {}) => ({ id, type, inputs });
const edge = (i, src, dst) => {
  const [sn, sp] = src.split('.');
  const [tn, tp] = dst.split('.');
  return { id: `e${i}`, sourceNodeId: sn, sourcePortId: sp, targetNodeId: tn, targetPortId: tp };
};

/** a (1+2) -> n sleeps of `ms` -> b (+10): 4 + n nodes, a few events each. */
function sleepChain(id, n, ms) {
  const nodes = [node('a', 'math.add', { a: 1, b: 2 })];
  const edges = [];
  let prev = 'a.result';
  for (let i = 1; i <= n; i += 1) {
    nodes.push(node(`s${i}`, 'flow.sleep', { ms }));
    edges.push(edge(i, prev, `s${i}.value`));
    prev = `s${i}.out`;
  }
  nodes.push(node('b', 'math.add', { b: 10 }));
  edges.push(edge(n + 1, prev, 'b.a'));
  return { id, metadata: { name: id, tags: ['compat'] }, nodes, edges };
}

let flowSeq = 0;
const uniqueId = (prefix) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${(flowSeq += 1)}`;

// ------------------------------------------------------------------------------------ clients
/** Counts the HTTP requests a link makes (and keeps their URLs and headers). */
function countingFetch() {
  const requests = [];
  const fn = async (url, init) => {
    requests.push({ url: String(url), method: init?.method ?? 'GET', headers: { ...(init?.headers ?? {}) } });
    return fetch(url, init);
  };
  return { fetch: fn, requests };
}

function httpClient(base, { kind = 'batch', headers, fetchFn } = {}) {
  const url = `${base}/trpc`;
  const common = { url, transformer: superjson, ...(headers ? { headers } : {}), ...(fetchFn ? { fetch: fetchFn } : {}) };
  const link = kind === 'single' ? httpLink(common) : kind === 'stream' ? httpBatchStreamLink(common) : httpBatchLink(common);
  return createTRPCClient({ links: [link] });
}

function wsClientFor(base, { connectionParams, retryDelayMs = () => 100 } = {}) {
  const wsClient = createWSClient({
    url: `${base.replace(/^http/, 'ws')}/trpc`,
    WebSocket,
    retryDelayMs,
    ...(connectionParams ? { connectionParams } : {}),
  });
  const client = createTRPCClient({ links: [wsLink({ client: wsClient, transformer: superjson })] });
  return { client, wsClient };
}

function sseClient(base, { connectionParams } = {}) {
  return createTRPCClient({
    links: [
      httpSubscriptionLink({
        url: `${base}/trpc`,
        transformer: superjson,
        EventSource,
        ...(connectionParams ? { connectionParams } : {}),
      }),
    ],
  });
}

/**
 * Subscribes to an execution's events until the subscription completes (or errors).
 * Resolves {messages: [{id, events}], events, completed, error}. `onMessage(n, message, sub)` runs
 * after each message (n counts from 1); `ready` resolves once the subscription has started.
 */
function subscribeEvents(client, input, { timeoutMs = 30000, onMessage } = {}) {
  const messages = [];
  let sub;
  let started;
  const ready = new Promise((resolve) => {
    started = resolve;
  });
  const done = new Promise((resolve) => {
    sub = client.subscribeToExecutionEvents.subscribe(input, {
      onStarted: () => started(),
      onData: (msg) => {
        messages.push({ id: msg.id, events: msg.data });
        started();
        if (onMessage) onMessage(messages.length, msg, sub);
      },
      onError: (error) => {
        started();
        resolve({ completed: false, error });
      },
      onComplete: () => resolve({ completed: true, error: null }),
    });
  });
  const result = withTimeout(done, timeoutMs, `subscription ${JSON.stringify(input)}`)
    .then((r) => ({ ...r, messages, events: messages.flatMap((m) => m.events) }))
    .finally(() => sub.unsubscribe());
  return { result, ready, stop: () => sub.unsubscribe(), messages };
}

/** Resolves with the first event for which `pred(event)` holds (the subscription then stops). */
function waitForEvent(client, executionId, pred, what, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    let sub;
    const timer = setTimeout(() => {
      sub?.unsubscribe();
      reject(new Failure(`${what}: not seen within ${timeoutMs} ms`));
    }, timeoutMs);
    sub = client.subscribeToExecutionEvents.subscribe({ executionId, batchTimeoutMs: 0 }, {
      onData: ({ data }) => {
        const hit = data.find(pred);
        if (hit) {
          clearTimeout(timer);
          resolve(hit); // before unsubscribe(): that calls onComplete
          sub.unsubscribe();
        }
      },
      onError: (err) => {
        clearTimeout(timer);
        reject(err);
      },
      onComplete: () => {
        clearTimeout(timer);
        reject(new Failure(`${what}: the stream ended first`));
      },
    });
  });
}

async function waitForStatus(client, executionId, statuses, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const details = await client.getExecutionDetails.query({ executionId });
    if (statuses.includes(details.status)) return details;
    check(Date.now() < deadline, `execution ${executionId} never reached ${statuses.join('/')}`, details.status);
    await sleep(50);
  }
}

/**
 * The checks of a complete stream: dense indices from `firstIndex`, every timestamp a Date,
 * types and data present, exactly one terminal event and it is the last one, tracked ids equal
 * to the seq (index + 1) of each message's last event and increasing.
 */
function checkStream(result, { firstIndex = -1, terminal, what = 'stream' } = {}) {
  check(result.error === null, `${what}: the subscription failed`, { message: result.error?.message, code: result.error?.data?.code });
  check(result.completed, `${what}: the subscription did not complete`);
  const { events, messages } = result;
  check(events.length > 0, `${what}: no events`);
  events.forEach((e, i) => {
    check(e.index === firstIndex + i, `${what}: indices are not dense from ${firstIndex}`, events.map((x) => x.index));
    check(e.timestamp instanceof Date && !Number.isNaN(e.timestamp.getTime()), `${what}: timestamp is not a Date`, e);
    check(typeof e.type === 'string' && e.data !== null && typeof e.data === 'object', `${what}: event without type/data`, e);
  });
  const terminals = events.filter((e) => TERMINAL.has(e.type));
  check(terminals.length === 1, `${what}: expected exactly one terminal event`, terminals.map((e) => e.type));
  check(TERMINAL.has(events.at(-1).type), `${what}: the last event is not terminal`, events.at(-1).type);
  if (terminal) check(events.at(-1).type === terminal, `${what}: expected ${terminal}`, events.at(-1).type);
  let previous = -Infinity;
  for (const m of messages) {
    check(Array.isArray(m.events) && m.events.length > 0, `${what}: a message is not a non-empty list of events`, m);
    check(m.id === String(m.events.at(-1).index + 1), `${what}: tracked id is not the seq of the last event`, { id: m.id, last: m.events.at(-1).index });
    check(Number(m.id) > previous, `${what}: tracked ids do not increase`, messages.map((x) => x.id));
    previous = Number(m.id);
  }
  return events;
}

const types = (events) => events.map((e) => e.type);

// ------------------------------------------------------------------------------------ a tiny TCP proxy
/** Forwards TCP to the server; `drop()` cuts every live connection (as a network loss would). */
function startProxy(target) {
  const { hostname, port } = new URL(target);
  const live = new Set();
  const server = net.createServer((downstream) => {
    const upstream = net.connect(Number(port), hostname);
    const pair = { downstream, upstream };
    live.add(pair);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    const end = () => {
      live.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('error', end);
    upstream.on('error', end);
    downstream.on('close', end);
    upstream.on('close', end);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      let drops = 0;
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        get connections() {
          return live.size;
        },
        get drops() {
          return drops;
        },
        drop() {
          drops += 1;
          for (const { downstream, upstream } of [...live]) {
            downstream.destroy();
            upstream.destroy();
          }
          live.clear();
        },
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            for (const { downstream, upstream } of [...live]) {
              downstream.destroy(); // idle keep-alive connections would hold close() for seconds
              upstream.destroy();
            }
          }),
      });
    });
  });
}

// ------------------------------------------------------------------------------------ scenarios
const scenarios = [];
const add = (name, fn) => scenarios.push({ name, fn });

const http = httpClient(BASE);

async function uploadAndCreate(flow, createInput = {}) {
  const up = await http.uploadFlow.mutate({ flow });
  const { executionId } = await http.create.mutate({ flowId: up.flowId, ...createInput });
  return { flowId: up.flowId, version: up.version, executionId };
}

add('health-ready', async () => {
  const health = await (await fetch(`${BASE}/health`)).json();
  check(health.status === 'healthy', '/health', health);
  const ready = await fetch(`${BASE}/ready`);
  const body = await ready.json();
  check(ready.status === 200 && body.status === 'ready' && body.schema_ok === true, '/ready', body);
  const who = await http.whoami.query();
  check(who.devMode === true && who.isAdmin === true, 'whoami in dev mode', who);
  return { health: health.status, ready: body.status };
});

add('upload-flow-versions', async () => {
  const flow = sleepChain(uniqueId('versions'), 1, 1);
  const first = await http.uploadFlow.mutate({ flow });
  check(first.flowId === flow.id && first.version === 1, 'first upload is version 1', first);
  const second = await http.uploadFlow.mutate({ flow: { ...flow, metadata: { name: 'renamed' } } });
  check(second.flowId === flow.id && second.version === 2, 'a re-upload is a new version', second);
  const got = await http.getFlow.query({ flowId: flow.id });
  check(got.version === 2 && got.name === 'renamed' && got.flow.id === flow.id, 'getFlow returns the latest', got);
  check(got.createdAt instanceof Date && got.updatedAt instanceof Date, 'getFlow dates are Dates', got);
  const v1 = await http.getFlow.query({ flowId: flow.id, version: 1 });
  check(v1.version === 1 && v1.name === flow.id, 'getFlow of version 1', v1);
  const list = await http.listFlows.query({ limit: 100 });
  check(list.items.some((f) => f.flowId === flow.id), 'listFlows lists it', list.items.map((f) => f.flowId));
  return { versions: [first.version, second.version] };
});

add('ws-run-every-event', async () => {
  const { flowId, executionId } = await uploadAndCreate(sleepChain(uniqueId('ws-run'), 2, 20));
  const created = await http.getExecutionDetails.query({ executionId });
  check(created.status === 'created' && created.flowId === flowId, 'created execution', created);
  const { client, wsClient } = wsClientFor(BASE);
  try {
    const sub = subscribeEvents(client, { executionId });
    await withTimeout(sub.ready, 10000, 'ws subscription start');
    const started = await http.start.mutate({ executionId });
    check(started.success === true, 'start', started);
    const result = await sub.result;
    const events = checkStream(result, { terminal: 'flow:completed', what: 'ws' });
    check(events[0].type === 'execution:created' && events[1].type === 'flow:started', 'stream head', types(events).slice(0, 3));
    const done = await http.getExecutionDetails.query({ executionId });
    check(done.status === 'completed', 'status after the run', done.status);
    return { events: events.length, messages: result.messages.length, last: events.at(-1).type };
  } finally {
    await wsClient.close();
  }
});

add('sse-run-every-event', async () => {
  const { executionId } = await uploadAndCreate(sleepChain(uniqueId('sse-run'), 2, 20));
  const client = sseClient(BASE);
  const sub = subscribeEvents(client, { executionId });
  await withTimeout(sub.ready, 10000, 'sse subscription start');
  await http.start.mutate({ executionId });
  const result = await sub.result;
  const events = checkStream(result, { terminal: 'flow:completed', what: 'sse' });
  return { events: events.length, messages: result.messages.length };
});

add('subscribe-options', async () => {
  // after completion: the whole history, then complete; fromIndex, eventTypes, batchSize
  const { executionId } = await uploadAndCreate(sleepChain(uniqueId('options'), 2, 1));
  await http.start.mutate({ executionId });
  await waitForStatus(http, executionId, ['completed']);
  const { client, wsClient } = wsClientFor(BASE);
  try {
    const all = checkStream(await subscribeEvents(client, { executionId }).result, { what: 'history' });
    const paged = await subscribeEvents(client, { executionId, batchSize: 2 }).result;
    checkStream(paged, { what: 'batchSize 2' });
    check(paged.messages.every((m) => m.events.length <= 2), 'batchSize caps a message', paged.messages.map((m) => m.events.length));
    check(paged.events.length === all.length, 'batchSize 2 delivers everything', [paged.events.length, all.length]);
    const tail = await subscribeEvents(client, { executionId, fromIndex: 5 }).result;
    checkStream(tail, { firstIndex: 4, what: 'fromIndex 5' });
    check(tail.events.length === all.length - 5, 'fromIndex skips the first seqs', tail.events.length);
    const filtered = await subscribeEvents(client, { executionId, eventTypes: ['node:completed', 'flow:completed'] }).result;
    check(filtered.completed && filtered.error === null, 'filtered subscription completes', filtered.error?.message);
    const want = all.filter((e) => e.type === 'node:completed' || e.type === 'flow:completed');
    check(JSON.stringify(filtered.events, replacer) === JSON.stringify(want, replacer), 'eventTypes filter', types(filtered.events));
    const noTerminal = await subscribeEvents(client, { executionId, eventTypes: ['node:started'] }).result;
    check(noTerminal.completed, 'a filter without the terminal type still completes', noTerminal.error?.message);
    check(noTerminal.events.every((e) => e.type === 'node:started') && noTerminal.events.length === 4, 'node:started only', types(noTerminal.events));
    return { history: all.length, pagedMessages: paged.messages.length, filtered: filtered.events.length };
  } finally {
    await wsClient.close();
  }
});

add('pause-resume-stop', async () => {
  const { executionId } = await uploadAndCreate(sleepChain(uniqueId('pause'), 12, 250));
  const { client, wsClient } = wsClientFor(BASE);
  try {
    const sub = subscribeEvents(client, { executionId, batchTimeoutMs: 0 });
    await withTimeout(sub.ready, 10000, 'subscription start');
    await http.start.mutate({ executionId });
    await waitForEvent(client, executionId, (e) => e.type === 'node:started' && e.data?.node?.id === 's1', 'node s1 started');
    check((await http.pause.mutate({ executionId, reason: 'compat pause' })).success, 'pause');
    const paused = await waitForEvent(client, executionId, (e) => e.type === 'flow:paused', 'flow:paused');
    await waitForStatus(http, executionId, ['paused']);
    // while paused nothing new starts
    const before = sub.messages.flatMap((m) => m.events).length;
    await sleep(600);
    const during = sub.messages.flatMap((m) => m.events).slice(before);
    check(!during.some((e) => e.type === 'node:started'), 'no node starts while paused', types(during));
    const pauseTwice = await rejection(http.pause.mutate({ executionId }), 'pause while paused');
    expectCode(pauseTwice, 'BAD_REQUEST', 'pause while paused');
    check(pauseTwice.message.includes('paused'), 'the message names the status', pauseTwice.message);
    check((await http.resume.mutate({ executionId })).success, 'resume');
    await waitForEvent(client, executionId, (e) => e.type === 'flow:resumed', 'flow:resumed');
    await waitForStatus(http, executionId, ['running']);
    check((await http.stop.mutate({ executionId, reason: 'compat stop' })).success, 'stop');
    const result = await sub.result;
    const events = checkStream(result, { terminal: 'flow:cancelled', what: 'pause/resume/stop' });
    const order = types(events).filter((t) => ['flow:paused', 'flow:resumed', 'flow:cancelled'].includes(t));
    check(JSON.stringify(order) === JSON.stringify(['flow:paused', 'flow:resumed', 'flow:cancelled']), 'control events in order', order);
    check(!events.some((e) => e.type === 'node:completed' && e.data?.node?.id === 'b'), 'the last node never ran', types(events));
    const details = await http.getExecutionDetails.query({ executionId });
    check(details.status === 'stopped', 'status stopped', details.status);
    check(details.completedAt instanceof Date, 'completedAt is a Date', details);
    const again = await rejection(http.resume.mutate({ executionId }), 'resume after stop');
    expectCode(again, 'BAD_REQUEST', 'resume after stop');
    return { events: events.length, control: order, pausedReason: paused.data?.reason };
  } finally {
    await wsClient.close();
  }
});

add('step-and-breakpoints', async () => {
  const { executionId } = await uploadAndCreate(sleepChain(uniqueId('step'), 3, 300));
  const { client, wsClient } = wsClientFor(BASE);
  try {
    const bp = await http.setBreakpoints.mutate({ executionId, nodeIds: ['s2', 's2'] });
    check(bp.success && JSON.stringify(bp.nodeIds) === '["s2"]', 'setBreakpoints (deduplicated)', bp);
    const unknown = await rejection(http.setBreakpoints.mutate({ executionId, nodeIds: ['nope'] }), 'unknown breakpoint');
    expectCode(unknown, 'BAD_REQUEST', 'unknown breakpoint');
    check(unknown.message.includes('nodeIds') && unknown.message.includes('nope'), 'the message names the field and id', unknown.message);
    const stepCreated = await rejection(http.step.mutate({ executionId }), 'step before start');
    expectCode(stepCreated, 'BAD_REQUEST', 'step before start');
    check(stepCreated.message.includes('created'), 'step error names the status', stepCreated.message);

    const sub = subscribeEvents(client, { executionId, batchTimeoutMs: 0 });
    await withTimeout(sub.ready, 10000, 'subscription start');
    await http.start.mutate({ executionId });
    const hit = await waitForEvent(client, executionId, (e) => e.type === 'debug:breakpoint-hit', 'breakpoint hit');
    check(hit.data?.nodeId === 's2', 'breakpoint at s2', hit.data);
    await waitForEvent(client, executionId, (e) => e.type === 'flow:paused', 'paused at the breakpoint');
    await waitForStatus(http, executionId, ['paused']);
    const seen = () => sub.messages.flatMap((m) => m.events);
    check(!seen().some((e) => e.type === 'node:started' && e.data?.node?.id === 's2'), 's2 has not started at its breakpoint');

    check((await http.step.mutate({ executionId })).success, 'step');
    // a step runs the ready node (s2) and pauses again
    const deadline = Date.now() + 10000;
    for (;;) {
      const evs = seen();
      const s2done = evs.findIndex((e) => e.type === 'node:completed' && e.data?.node?.id === 's2');
      if (s2done >= 0 && evs.slice(s2done).some((e) => e.type === 'flow:paused')) break;
      check(Date.now() < deadline, 'a step ran s2 and paused again', types(evs));
      await sleep(30);
    }
    check(!seen().some((e) => e.type === 'node:started' && e.data?.node?.id === 's3'), 'the step ran only s2', types(seen()));
    const cleared = await http.setBreakpoints.mutate({ executionId, nodeIds: [] });
    check(cleared.success && cleared.nodeIds.length === 0, 'clear breakpoints', cleared);
    await http.resume.mutate({ executionId });
    const result = await sub.result;
    const events = checkStream(result, { terminal: 'flow:completed', what: 'step' });
    const control = types(events).filter((t) => t.startsWith('flow:p') || t.startsWith('flow:r') || t.startsWith('debug:'));
    check(
      JSON.stringify(control) === JSON.stringify(['debug:breakpoint-hit', 'flow:paused', 'flow:resumed', 'flow:paused', 'flow:resumed']),
      'breakpoint, pause, step (resume+pause), resume',
      control,
    );
    const late = await rejection(http.setBreakpoints.mutate({ executionId, nodeIds: ['s1'] }), 'breakpoints after the end');
    expectCode(late, 'BAD_REQUEST', 'breakpoints after the end');
    check(late.message.includes('completed'), 'names the status', late.message);
    return { events: events.length, control };
  } finally {
    await wsClient.close();
  }
});

add('breakpoint-right-after-start', async () => {
  // a breakpoint on the node that becomes ready right after the start (options.breakpoints and
  // setBreakpoints before the start) must hold until `resume`
  const flow = { id: uniqueId('bp-now'), nodes: [node('a', 'math.add', { a: 1, b: 2 }), node('b', 'math.add', { b: 10 })], edges: [edge(0, 'a.result', 'b.a')] };
  await http.uploadFlow.mutate({ flow });
  const viaOptions = (await http.create.mutate({ flowId: flow.id, options: { breakpoints: ['b'] } })).executionId;
  const viaCommand = (await http.create.mutate({ flowId: flow.id })).executionId;
  await http.setBreakpoints.mutate({ executionId: viaCommand, nodeIds: ['b'] });
  const { client, wsClient } = wsClientFor(BASE);
  try {
    const out = {};
    for (const [how, executionId] of [['options', viaOptions], ['setBreakpoints', viaCommand]]) {
      const sub = subscribeEvents(client, { executionId, batchTimeoutMs: 0 });
      await withTimeout(sub.ready, 10000, 'subscription start');
      await http.start.mutate({ executionId });
      await waitForEvent(client, executionId, (e) => e.type === 'flow:paused', `${how}: paused at b`);
      await sleep(500);
      const status = (await http.getExecutionDetails.query({ executionId })).status;
      const seen = types(sub.messages.flatMap((m) => m.events));
      check(status === 'paused' && !seen.includes('flow:resumed'), `${how}: the breakpoint holds until resume`, { status, seen });
      await http.resume.mutate({ executionId });
      checkStream(await sub.result, { terminal: 'flow:completed', what: how });
      out[how] = status;
    }
    return out;
  } finally {
    await wsClient.close();
  }
});

add('errors', async () => {
  const out = {};
  const missing = 'EXdoes-not-exist';
  const single = httpClient(BASE, { kind: 'single' }); // plain httpLink: one request per call
  for (const [name, call] of [
    ['getExecutionDetails', () => single.getExecutionDetails.query({ executionId: missing })],
    ['getExecutionsTree', () => single.getExecutionsTree.query({ executionId: missing })],
    ['start', () => single.start.mutate({ executionId: missing })],
    ['stop', () => single.stop.mutate({ executionId: missing })],
    ['pause', () => single.pause.mutate({ executionId: missing })],
    ['resume', () => single.resume.mutate({ executionId: missing })],
    ['step', () => single.step.mutate({ executionId: missing })],
    ['setBreakpoints', () => single.setBreakpoints.mutate({ executionId: missing, nodeIds: [] })],
    ['create', () => single.create.mutate({ flowId: 'no-such-flow' })],
    ['getRootExecutions', () => single.getRootExecutions.query({ flowId: 'no-such-flow' })],
    ['getFlow', () => single.getFlow.query({ flowId: 'no-such-flow' })],
    ['deleteFlow', () => single.deleteFlow.mutate({ flowId: 'no-such-flow' })],
  ]) {
    const err = await rejection(call(), `${name} of an unknown id`);
    expectCode(err, 'NOT_FOUND', `${name} of an unknown id`);
    check(err.data.httpStatus === 404, `${name}: http status 404`, err.data);
    out[name] = err.data.code;
  }
  // subscriptions of an unknown execution: WS and SSE
  const { client, wsClient } = wsClientFor(BASE);
  try {
    const ws = await subscribeEvents(client, { executionId: missing }, { timeoutMs: 10000 }).result;
    check(ws.error && ws.error.data?.code === 'NOT_FOUND', 'ws subscription of an unknown execution', ws.error?.message);
    const sse = await subscribeEvents(sseClient(BASE), { executionId: missing }, { timeoutMs: 10000 }).result;
    check(sse.error && sse.error.data?.code === 'NOT_FOUND', 'sse subscription of an unknown execution', sse.error?.message);
    const badWs = await subscribeEvents(client, { executionId: 'x', batchSize: 0 }, { timeoutMs: 10000 }).result;
    check(badWs.error?.data?.code === 'BAD_REQUEST' && badWs.error.message.includes('batchSize'), 'ws: bad batchSize names the field', badWs.error?.message);
    const badSse = await subscribeEvents(sseClient(BASE), { executionId: 'x', batchTimeoutMs: 5000 }, { timeoutMs: 10000 }).result;
    check(badSse.error?.data?.code === 'BAD_REQUEST' && badSse.error.message.includes('batchTimeoutMs'), 'sse: bad batchTimeoutMs names the field', badSse.error?.message);
  } finally {
    await wsClient.close();
  }
  // validation: BAD_REQUEST naming the field
  for (const [field, call] of [
    ['flowId', () => http.create.mutate({})],
    ['flowId', () => http.create.mutate({ flowId: '' })],
    ['options', () => http.create.mutate({ flowId: 'x', options: { nope: true } })],
    ['executionId', () => http.start.mutate({ executionId: 42 })],
    ['limit', () => http.getRootExecutions.query({ flowId: 'x', limit: 1000 })],
    ['nodeIds', () => http.setBreakpoints.mutate({ executionId: 'x' })],
    ['reason', () => http.stop.mutate({ executionId: 'x', reason: 'r'.repeat(1001) })],
    ['unexpected', () => http.start.mutate({ executionId: 'x', unexpected: 1 })],
    ['flow', () => http.uploadFlow.mutate({})],
  ]) {
    const err = await rejection(call(), `bad ${field}`);
    expectCode(err, 'BAD_REQUEST', `bad ${field}`);
    check(err.message.includes(field), `the message names ${field}`, err.message);
    check(err.data.httpStatus === 400, 'http status 400', err.data);
  }
  const badFlow = await rejection(http.uploadFlow.mutate({ flow: { id: 'bad', nodes: [node('a', 'no.such-type')], edges: [] } }), 'invalid flow');
  expectCode(badFlow, 'BAD_REQUEST', 'invalid flow');
  check(badFlow.message.includes('no.such-type'), 'the flow error names the node type', badFlow.message);
  // wrong status: BAD_REQUEST naming it
  const { executionId } = await uploadAndCreate(sleepChain(uniqueId('status'), 1, 1));
  await http.start.mutate({ executionId });
  await waitForStatus(http, executionId, ['completed']);
  const twice = await rejection(http.start.mutate({ executionId }), 'start on a completed execution');
  expectCode(twice, 'BAD_REQUEST', 'start on a completed execution');
  check(twice.message.includes('completed'), 'start error names the status', twice.message);
  for (const name of ['stop', 'pause', 'resume', 'step']) {
    const err = await rejection(http[name].mutate({ executionId }), `${name} on a completed execution`);
    expectCode(err, 'BAD_REQUEST', `${name} on a completed execution`);
    check(err.message.includes('completed'), `${name} error names the status`, err.message);
  }
  const notCreated = await rejection(http.pause.mutate({ executionId: (await http.create.mutate({ flowId: (await http.uploadFlow.mutate({ flow: sleepChain(uniqueId('c'), 1, 1) })).flowId })).executionId }), 'pause a created execution');
  expectCode(notCreated, 'BAD_REQUEST', 'pause a created execution');
  check(notCreated.message.includes('created'), 'pause error names the status', notCreated.message);
  return { notFound: Object.keys(out).length, startMessage: twice.message };
});

add('batching-httpBatchLink', async () => {
  const { executionId, flowId } = await uploadAndCreate(sleepChain(uniqueId('batch'), 1, 1));
  const counter = countingFetch();
  const client = httpClient(BASE, { kind: 'batch', fetchFn: counter.fetch });
  const [details, tree, roots, who, missing] = await Promise.allSettled([
    client.getExecutionDetails.query({ executionId }),
    client.getExecutionsTree.query({ executionId }),
    client.getRootExecutions.query({ flowId }),
    client.whoami.query(),
    client.getExecutionDetails.query({ executionId: 'EXmissing' }),
  ]);
  check(counter.requests.length === 1, 'five queries in one request', counter.requests.map((r) => r.url));
  const url = new URL(counter.requests[0].url);
  check(url.searchParams.get('batch') === '1' && url.pathname.split(',').length === 5, 'a batch=1 GET with five paths', url.pathname);
  check(details.status === 'fulfilled' && details.value.id === executionId && details.value.createdAt instanceof Date, 'details', details);
  check(tree.status === 'fulfilled' && tree.value.length === 1 && tree.value[0].execution.createdAt instanceof Date, 'tree', tree);
  check(roots.status === 'fulfilled' && roots.value.length === 1, 'roots', roots);
  check(who.status === 'fulfilled' && who.value.userId === 'dev', 'whoami', who);
  check(missing.status === 'rejected' && missing.reason.data?.code === 'NOT_FOUND', 'one call of the batch fails alone', missing.reason?.message);
  // mutations batch too (POST)
  counter.requests.length = 0;
  const created = await Promise.all([1, 2, 3].map(() => client.create.mutate({ flowId })));
  check(counter.requests.length === 1 && counter.requests[0].method === 'POST', 'three creates in one POST', counter.requests);
  check(new Set(created.map((c) => c.executionId)).size === 3, 'three executions', created);
  const started = await Promise.all(created.map((c) => client.start.mutate({ executionId: c.executionId })));
  check(started.every((s) => s.success) && counter.requests.length === 2, 'three starts in one POST', counter.requests.length);
  return { requests: counter.requests.length, created: created.length };
});

add('batching-httpBatchStreamLink', async () => {
  const { executionId, flowId } = await uploadAndCreate(sleepChain(uniqueId('stream'), 1, 1));
  const counter = countingFetch();
  const client = httpClient(BASE, { kind: 'stream', fetchFn: counter.fetch });
  const [details, roots, flow, missing, bad] = await Promise.allSettled([
    client.getExecutionDetails.query({ executionId }),
    client.getRootExecutions.query({ flowId }),
    client.getFlow.query({ flowId }),
    client.getExecutionsTree.query({ executionId: 'EXmissing' }),
    client.getRootExecutions.query({ flowId, limit: 0 }),
  ]);
  check(counter.requests.length === 1, 'five queries in one streamed request', counter.requests.map((r) => r.url));
  const accept = counter.requests[0].headers['trpc-accept'] ?? counter.requests[0].headers['Trpc-Accept'];
  check(accept === 'application/jsonl', 'the request asks for JSONL', counter.requests[0].headers);
  check(details.status === 'fulfilled' && details.value.createdAt instanceof Date && details.value.startedAt === null, 'details', details);
  check(roots.status === 'fulfilled' && roots.value[0].execution.id === executionId, 'roots', roots);
  check(flow.status === 'fulfilled' && flow.value.flowId === flowId && flow.value.createdAt instanceof Date, 'getFlow', flow);
  check(missing.status === 'rejected' && missing.reason.data?.code === 'NOT_FOUND', 'NOT_FOUND in the stream', missing.reason?.message);
  check(bad.status === 'rejected' && bad.reason.data?.code === 'BAD_REQUEST' && bad.reason.message.includes('limit'), 'BAD_REQUEST in the stream', bad.reason?.message);
  counter.requests.length = 0;
  const [a, b] = await Promise.all([client.create.mutate({ flowId }), client.create.mutate({ flowId })]);
  check(counter.requests.length === 1 && a.executionId !== b.executionId, 'two creates in one streamed POST', counter.requests.length);
  return { requests: 2 };
});

add('details-tree-roots-dates', async () => {
  const example = JSON.parse(fs.readFileSync(new URL('../../../examples/emitter-listeners.json', import.meta.url), 'utf8'));
  const flow = { ...example, id: uniqueId('emitter') };
  const { executionId, flowId } = await uploadAndCreate(flow);
  const { client, wsClient } = wsClientFor(BASE);
  try {
    const sub = subscribeEvents(client, { executionId });
    await withTimeout(sub.ready, 10000, 'subscription start');
    await http.start.mutate({ executionId });
    const events = checkStream(await sub.result, { terminal: 'flow:completed', what: 'emitter' });
    check(types(events).includes('child:spawned'), 'children spawned', types(events));
  } finally {
    await wsClient.close();
  }
  // the children finish on their own
  let tree;
  const deadline = Date.now() + 20000;
  for (;;) {
    tree = await http.getExecutionsTree.query({ executionId });
    if (tree.length === 3 && tree.every((n) => n.execution.status === 'completed')) break;
    check(Date.now() < deadline, 'a tree of three completed executions', tree.map((n) => [n.id, n.level, n.execution.status]));
    await sleep(100);
  }
  const root = tree.find((n) => n.id === executionId);
  check(root && root.level === 0 && root.parentId === null, 'root node', root);
  const kids = tree.filter((n) => n.id !== executionId);
  check(kids.every((n) => n.level === 1 && n.parentId === executionId && n.execution.parentExecutionId === executionId), 'child nodes', kids);
  for (const n of tree) {
    for (const key of ['createdAt', 'updatedAt', 'startedAt', 'completedAt']) {
      check(n.execution[key] instanceof Date, `tree ${key} is a Date`, n.execution);
    }
  }
  const details = await http.getExecutionDetails.query({ executionId });
  check(details.status === 'completed' && details.completedAt >= details.startedAt && details.startedAt >= details.createdAt, 'details dates in order', details);
  // a child's own tree is NOT_FOUND (it is not a root); its details are readable
  const child = kids[0].id;
  const childTree = await rejection(http.getExecutionsTree.query({ executionId: child }), 'tree of a child');
  expectCode(childTree, 'NOT_FOUND', 'tree of a child');
  const childDetails = await http.getExecutionDetails.query({ executionId: child });
  check(childDetails.rootExecutionId === executionId && childDetails.executionDepth === 1, 'child details', childDetails);
  const childStart = await rejection(http.start.mutate({ executionId: child }), 'start a child');
  expectCode(childStart, 'BAD_REQUEST', 'start a child');

  // roots: newest first, with levels and nested count; paging with a Date cursor
  const second = (await http.create.mutate({ flowId })).executionId;
  const roots = await http.getRootExecutions.query({ flowId });
  check(roots.length === 2 && roots.every((r) => r.execution.createdAt instanceof Date), 'two roots with Dates', roots);
  check(roots[0].execution.id === second && roots[1].execution.id === executionId, 'newest first', roots.map((r) => r.execution.id));
  check(roots[1].totalNested === 2 && roots[1].levels >= 1, 'nested count of the emitter root', roots[1]);
  const page1 = await http.getRootExecutions.query({ flowId, limit: 1 });
  check(page1.length === 1 && page1[0].execution.id === second, 'page 1', page1);
  const cursor = page1[0].execution;
  const page2 = await http.getRootExecutions.query({ flowId, limit: 1, after: cursor.createdAt, afterId: cursor.id });
  check(page2.length === 1 && page2[0].execution.id === executionId, 'page 2 (after: a Date sent through SuperJSON)', page2);
  const page3 = await http.getRootExecutions.query({ flowId, limit: 1, after: page2[0].execution.createdAt, afterId: page2[0].execution.id });
  check(page3.length === 0, 'page 3 is empty', page3);
  return { tree: tree.length, roots: roots.length, levels: roots[1].levels };
});

add('ws-drop-resume', async () => {
  const proxy = await startProxy(BASE);
  const { executionId } = await uploadAndCreate(sleepChain(uniqueId('ws-drop'), 8, 120));
  const { client, wsClient } = wsClientFor(proxy.url, { retryDelayMs: () => 50 });
  try {
    let dropped = null;
    const sub = subscribeEvents(client, { executionId, batchSize: 3, batchTimeoutMs: 0 }, {
      onMessage: (n, msg) => {
        if (dropped === null && n >= 2 && msg.data.some((e) => e.type === 'node:completed')) {
          dropped = { afterMessage: n, lastId: msg.id };
          proxy.drop();
        }
      },
    });
    await withTimeout(sub.ready, 10000, 'subscription start');
    await http.start.mutate({ executionId });
    const result = await sub.result;
    const events = checkStream(result, { terminal: 'flow:completed', what: 'ws drop/resume' });
    check(dropped !== null && proxy.drops === 1, 'the connection was dropped mid-stream', dropped);
    const after = result.messages.slice(dropped.afterMessage);
    check(after.length > 0 && Number(after[0].id) > Number(dropped.lastId), 'messages after the reconnect', after.map((m) => m.id));
    check(after[0].events[0].index === Number(dropped.lastId), 'resumed right after lastEventId', { lastId: dropped.lastId, first: after[0].events[0].index });
    const indices = events.map((e) => e.index);
    check(new Set(indices).size === indices.length, 'no duplicate', indices);
    return { events: events.length, droppedAfterId: dropped.lastId, messages: result.messages.length };
  } finally {
    await wsClient.close();
    await proxy.close();
  }
});

add('sse-drop-resume', async () => {
  const proxy = await startProxy(BASE);
  const { executionId } = await uploadAndCreate(sleepChain(uniqueId('sse-drop'), 12, 350));
  const client = sseClient(proxy.url);
  let dropped = null;
  const sub = subscribeEvents(client, { executionId, batchSize: 3, batchTimeoutMs: 0 }, {
    onMessage: (n, msg) => {
      if (dropped === null && n >= 2 && msg.data.some((e) => e.type === 'node:completed')) {
        dropped = { afterMessage: n, lastId: msg.id };
        proxy.drop();
      }
    },
  });
  await withTimeout(sub.ready, 10000, 'subscription start');
  await http.start.mutate({ executionId });
  const result = await sub.result;
  const events = checkStream(result, { terminal: 'flow:completed', what: 'sse drop/resume' });
  check(dropped !== null && proxy.drops === 1, 'the connection was dropped mid-stream', dropped);
  const after = result.messages.slice(dropped.afterMessage);
  check(after.length > 0 && after[0].events[0].index === Number(dropped.lastId), 'resumed right after Last-Event-ID', { lastId: dropped.lastId, after: after.map((m) => m.id) });
  await proxy.close();
  return { events: events.length, droppedAfterId: dropped.lastId };
});

add('readme-snippet', async () => {
  // README.md "Using it from TypeScript", the same calls in plain JS (the `ws` import of the README
  // is this file's `WebSocket`).
  const logged = [];
  const console = { log: (...xs) => logged.push(xs) };
  let ws;
  try {
    let finished;
    const done = new Promise((resolve) => {
      finished = resolve;
    });
    const url = `${BASE}/trpc`;
    const token = process.env.TOKEN ?? '';
    ws = createWSClient({ url: url.replace('http', 'ws'), WebSocket, connectionParams: { token } });
    const client = createTRPCClient({
      links: [splitLink({
        condition: (op) => op.type === 'subscription',
        true: wsLink({ client: ws, transformer: superjson }),
        false: httpBatchLink({ url, transformer: superjson, headers: { authorization: `Bearer ${token}` } }),
      })],
    });

    await client.uploadFlow.mutate({ flow: { id: 'hello', nodes: [{ id: 'a', type: 'math.add', inputs: { a: 1, b: 2 } }], edges: [] } });
    const { executionId } = await client.create.mutate({ flowId: 'hello' });
    client.subscribeToExecutionEvents.subscribe({ executionId }, {
      onData: ({ data: events }) => events.forEach((e) => console.log(e.index, e.type)),
      onComplete: () => { ws.close(); finished(); },
    });
    await client.start.mutate({ executionId });

    await withTimeout(done, 20000, 'README subscription');
    const seen = logged.map(([index, type]) => `${index} ${type}`);
    check(seen[0] === '-1 execution:created' && seen.at(-1).endsWith('flow:completed'), 'README output', seen);
    logged.forEach(([index], i) => check(index === i - 1, 'README indices dense', seen));
    check(seen.some((l) => l.endsWith('node:completed')), 'the node ran', seen);
    return { printed: seen.length, first: seen[0], last: seen.at(-1) };
  } finally {
    await ws?.close();
  }
});

// ------------------------------------------------------------------------------------ auth scenarios
const AUTH = typeof args['auth-url'] === 'string' ? args['auth-url'].replace(/\/$/, '') : null;
if (AUTH) {
  const { token, 'other-token': otherToken, 'admin-token': adminToken } = args;
  const bearer = (t) => ({ authorization: `Bearer ${t}` });

  add('auth-http-tokens', async () => {
    const owner = httpClient(AUTH, { headers: bearer(token) });
    const who = await owner.whoami.query();
    check(who.devMode === false && who.isAdmin === false && typeof who.userId === 'string', 'whoami with a Bearer token', who);
    const anonymous = await rejection(httpClient(AUTH).whoami.query(), 'anonymous whoami');
    expectCode(anonymous, 'UNAUTHORIZED', 'anonymous whoami');
    check(anonymous.data.httpStatus === 401, '401', anonymous.data);
    const wrong = await rejection(httpClient(AUTH, { headers: bearer('cgx_not-a-token') }).whoami.query(), 'bad token');
    expectCode(wrong, 'UNAUTHORIZED', 'bad token');
    const admin = await httpClient(AUTH, { headers: bearer(adminToken) }).whoami.query();
    check(admin.isAdmin === true, 'admin token', admin);
    return { user: who.userId };
  });

  add('auth-ownership-ws-sse', async () => {
    const owner = httpClient(AUTH, { headers: bearer(token) });
    const other = httpClient(AUTH, { headers: bearer(otherToken) });
    const { flowId } = await owner.uploadFlow.mutate({ flow: sleepChain(uniqueId('owned'), 2, 20) });
    const { executionId } = await owner.create.mutate({ flowId });
    const forbidden = await rejection(other.create.mutate({ flowId }), 'create on a flow of another user');
    expectCode(forbidden, 'FORBIDDEN', 'create on a flow of another user');
    const hidden = await rejection(other.getExecutionDetails.query({ executionId }), 'details of another user');
    expectCode(hidden, 'NOT_FOUND', 'details of another user');
    const denied = await rejection(other.start.mutate({ executionId }), 'start of another user');
    expectCode(denied, 'NOT_FOUND', 'start of another user');

    const ownerWs = wsClientFor(AUTH, { connectionParams: { token } });
    const otherWs = wsClientFor(AUTH, { connectionParams: { sessionBadAI: otherToken } });
    const anonWs = wsClientFor(AUTH);
    try {
      const spy = await subscribeEvents(otherWs.client, { executionId }, { timeoutMs: 10000 }).result;
      check(spy.error?.data?.code === 'NOT_FOUND' && spy.events.length === 0, 'ws subscription of another user', spy.error?.message);
      const anon = await subscribeEvents(anonWs.client, { executionId }, { timeoutMs: 10000 }).result;
      check(anon.error?.data?.code === 'UNAUTHORIZED' && anon.events.length === 0, 'anonymous ws subscription', anon.error?.message);
      const spySse = await subscribeEvents(sseClient(AUTH, { connectionParams: { token: otherToken } }), { executionId }, { timeoutMs: 10000 }).result;
      check(spySse.error?.data?.code === 'NOT_FOUND', 'sse subscription of another user', spySse.error?.message);
      const anonSse = await subscribeEvents(sseClient(AUTH), { executionId }, { timeoutMs: 10000 }).result;
      check(anonSse.error?.data?.code === 'UNAUTHORIZED', 'anonymous sse subscription', anonSse.error?.message);

      const sub = subscribeEvents(ownerWs.client, { executionId });
      await withTimeout(sub.ready, 10000, 'owner subscription start');
      const sse = subscribeEvents(sseClient(AUTH, { connectionParams: { token } }), { executionId });
      await withTimeout(sse.ready, 10000, 'owner sse start');
      // the owner's token over WS drives a mutation too
      check((await ownerWs.client.start.mutate({ executionId })).success, 'start over ws with connectionParams token');
      const wsEvents = checkStream(await sub.result, { terminal: 'flow:completed', what: 'owner ws' });
      const sseEvents = checkStream(await sse.result, { terminal: 'flow:completed', what: 'owner sse' });
      check(wsEvents.length === sseEvents.length, 'the same stream over WS and SSE', [wsEvents.length, sseEvents.length]);
      const adminView = await httpClient(AUTH, { headers: bearer(adminToken) }).getExecutionDetails.query({ executionId });
      check(adminView.status === 'completed', 'the admin sees it', adminView.status);
      return { events: wsEvents.length };
    } finally {
      await Promise.all([ownerWs.wsClient.close(), otherWs.wsClient.close(), anonWs.wsClient.close()]);
    }
  });

  add('auth-readme-snippet-with-token', async () => {
    // The README snippet as it would need to be with a TOKEN against a server without dev auth:
    // the token must reach the HTTP calls too (headers on httpBatchLink), not only the WebSocket.
    const url = `${AUTH}/trpc`;
    const ws = createWSClient({ url: url.replace('http', 'ws'), WebSocket, connectionParams: { token } });
    try {
      const client = createTRPCClient({
        links: [splitLink({
          condition: (op) => op.type === 'subscription',
          true: wsLink({ client: ws, transformer: superjson }),
          false: httpBatchLink({ url, transformer: superjson, headers: { authorization: `Bearer ${token}` } }),
        })],
      });
      const flowId = uniqueId('hello');
      await client.uploadFlow.mutate({ flow: { id: flowId, nodes: [{ id: 'a', type: 'math.add', inputs: { a: 1, b: 2 } }], edges: [] } });
      const { executionId } = await client.create.mutate({ flowId });
      const sub = subscribeEvents(client, { executionId });
      await withTimeout(sub.ready, 10000, 'subscription start');
      await client.start.mutate({ executionId });
      const events = checkStream(await sub.result, { terminal: 'flow:completed', what: 'readme with token' });
      // without the header the HTTP calls are refused
      const bare = createTRPCClient({ links: [httpBatchLink({ url, transformer: superjson })] });
      const err = await rejection(bare.create.mutate({ flowId }), 'README snippet without an HTTP token');
      expectCode(err, 'UNAUTHORIZED', 'README snippet without an HTTP token');
      return { events: events.length };
    } finally {
      await ws.close();
    }
  });
}

// ------------------------------------------------------------------------------------ runner
let failed = 0;
const selected = scenarios.filter((s) => !ONLY || s.name.includes(ONLY));
if (selected.length === 0) {
  console.error(`no scenario matches ${ONLY}`);
  process.exit(2);
}
for (const { name, fn } of selected) {
  const t0 = Date.now();
  try {
    const details = await withTimeout(fn(), 60000, name);
    console.log(JSON.stringify({ scenario: name, ok: true, ms: Date.now() - t0, ...details }, replacer));
  } catch (err) {
    failed += 1;
    const code = err?.data?.code;
    console.log(JSON.stringify({ scenario: name, ok: false, ms: Date.now() - t0, error: String(err?.message ?? err), ...(code ? { code } : {}), stack: err instanceof Failure ? undefined : err?.stack }));
  }
}
console.log(JSON.stringify({ summary: true, passed: selected.length - failed, failed, total: selected.length }));
process.exit(failed ? 1 : 0);
