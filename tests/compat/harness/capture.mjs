// Runs every scenario through a logging proxy and writes one vector file per
// scenario. Usage:
//   node capture.mjs --target http://127.0.0.1:8000 --out ../observed-python
//   node capture.mjs --target ... --out ... --only ws-   # substring filter
//   node capture.mjs --target ... --out ... --keepalive-target http://127.0.0.1:PORT2
//
// Copied from the spec harness (/work/shared/spec/trpc/harness) for
// tests/compat/test_trpc_harness.py. Changes: packages resolve from
// tests/compat/node_modules; the reference server (server.mjs, which needs zod)
// is not copied, so --target is required; the keep-alive scenarios
// ws-server-keepalive / sse-server-ping run against --keepalive-target (a second
// instance with WS keepAlive {pingMs:300} and SSE ping 100 ms /
// reconnectAfterInactivityMs 1000) instead of a spawned reference.
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { startProxy } from './proxy.mjs';
import { buildScenarios, buildRawProbes, buildRawWsProbes, describe } from './scenarios.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, arr) => {
    if (a.startsWith('--')) acc.push([a.slice(2), arr[i + 1]?.startsWith('--') ? true : arr[i + 1] ?? true]);
    return acc;
  }, []),
);
const outDir = path.resolve(args.out ?? new URL('../vectors', import.meta.url).pathname);
const only = args.only && args.only !== true ? String(args.only) : null;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// older @trpc/server releases leak some rejections (e.g. 11.0.0 on invalid WS
// connectionParams); record and keep going instead of crashing the harness
const harnessWarnings = [];
process.on('unhandledRejection', (e) => harnessWarnings.push(String(e?.message ?? e)));

const pkgVersion = (name) => {
  try {
    return JSON.parse(fs.readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
  } catch {
    return null;
  }
};
const versions = {
  '@trpc/client': pkgVersion('@trpc/client'),
  '@trpc/server': pkgVersion('@trpc/server'),
  superjson: pkgVersion('superjson'),
  zod: pkgVersion('zod'),
  eventsource: pkgVersion('eventsource'),
  ws: pkgVersion('ws'),
  node: process.version,
};

let target = args.target;
let ref = null;
if (!target || target === true) {
  console.error('usage: node capture.mjs --target http://127.0.0.1:PORT --out DIR [--only SUBSTRING]');
  process.exit(2);
}
const startServer = null; // reference server not bundled here
const isReference = !!ref;
const proxy = await startProxy({ target });
const ctx = {
  http: `http://127.0.0.1:${proxy.port}`,
  ws: `ws://127.0.0.1:${proxy.port}`,
  proxy,
  admin: (p) => fetch(`${target}${p}`, { method: 'POST' }).catch(() => {}),
};
fs.mkdirSync(outDir, { recursive: true });

// Normalise proxy events: connection numbers relative to the scenario
function normalise(events) {
  const connMap = new Map();
  return events.map((e) => {
    const out = { ...e };
    if (e.conn !== undefined) {
      if (!connMap.has(e.conn)) connMap.set(e.conn, connMap.size + 1);
      out.conn = connMap.get(e.conn);
    }
    if (out.url) out.url = out.url; // path + query only (host excluded)
    return out;
  });
}
function write(name, obj) {
  const file = path.join(outDir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...obj, versions }, null, 2) + '\n');
  return file;
}

const summary = [];
// ---------- real-client scenarios
for (const sc of buildScenarios(ctx)) {
  if (only && !sc.name.includes(only)) continue;
  proxy.reset();
  let observed;
  try {
    observed = await Promise.race([
      sc.run(),
      sleep(15000).then(() => {
        throw new Error('scenario timeout');
      }),
    ]);
  } catch (e) {
    observed = { harnessError: String(e?.stack ?? e) };
  }
  await sleep(250);
  const file = write(sc.name, {
    scenario: sc.name,
    kind: 'real-client',
    description: sc.description,
    observed,
    wire: normalise(proxy.state.events),
  });
  summary.push([sc.name, file]);
  console.log('wrote', file);
}

// ---------- raw HTTP probes (exact server behaviour for edge cases)
for (const pr of buildRawProbes(ctx)) {
  const name = `raw-http-${pr.name}`;
  if (only && !name.includes(only)) continue;
  proxy.reset();
  const ac = new AbortController();
  let result;
  try {
    const res = await fetch(ctx.http + pr.req.path, {
      method: pr.req.method,
      headers: pr.req.headers,
      body: pr.req.body,
      signal: ac.signal,
    });
    const reader = res.body?.getReader();
    let text = '';
    if (reader) {
      const deadline = Date.now() + 1500;
      while (Date.now() < deadline) {
        const r = await Promise.race([reader.read(), sleep(deadline - Date.now()).then(() => ({ timeout: true }))]);
        if (r.timeout || r.done) break;
        text += new TextDecoder().decode(r.value);
      }
      ac.abort();
    }
    result = { status: res.status, body: text };
  } catch (e) {
    result = { error: String(e) };
  }
  await sleep(150);
  const file = write(name, {
    scenario: name,
    kind: 'raw-http',
    description: pr.description,
    request: pr.req,
    observed: result,
    wire: normalise(proxy.state.events),
  });
  summary.push([name, file]);
  console.log('wrote', file);
}

// ---------- raw WebSocket probes
for (const pr of buildRawWsProbes()) {
  const name = `raw-ws-${pr.name}`;
  if (only && !name.includes(only)) continue;
  proxy.reset();
  const received = [];
  await new Promise((resolve) => {
    const ws = new WebSocket(`${ctx.ws}${pr.url ?? '/trpc'}`);
    let closed = false;
    let weClosed = false;
    ws.on('message', (d) => received.push(d.toString('utf8')));
    ws.on('close', (code) => {
      closed = true;
      if (!weClosed) received.push(`(connection closed by server, code ${code})`);
      resolve();
    });
    ws.on('open', async () => {
      for (const f of pr.frames) {
        if (f.startsWith('__sleep:')) {
          await sleep(Number(f.slice(8)));
          continue;
        }
        if (closed) break;
        ws.send(f);
        await sleep(30);
      }
      await sleep(pr.waitMs ?? 300);
      if (!closed) {
        weClosed = true;
        ws.close();
      }
      setTimeout(resolve, 100);
    });
    ws.on('error', () => resolve());
  });
  await sleep(100);
  const file = write(name, {
    scenario: name,
    kind: 'raw-ws',
    description: pr.description,
    sent: pr.frames.filter((f) => !f.startsWith('__sleep:')),
    observed: received,
    wire: normalise(proxy.state.events),
  });
  summary.push([name, file]);
  console.log('wrote', file);
}

// ---------- server keepalive (reference only: needs server option)
const keepaliveTarget = typeof args['keepalive-target'] === 'string' ? args['keepalive-target'] : null;
if ((isReference || keepaliveTarget) && (!only || 'ws-server-keepalive sse-server-ping'.includes(only))) {
  const ref2 = keepaliveTarget
    ? null
    : await startServer({
        port: 0,
        wsKeepAlive: true,
        sse: { ping: { enabled: true, intervalMs: 100 }, client: { reconnectAfterInactivityMs: 1000 } },
      });
  const proxy2 = await startProxy({ target: keepaliveTarget ?? `http://127.0.0.1:${ref2.port}` });
  const { createTRPCClient, createWSClient, wsLink } = await import('@trpc/client');
  const superjson = (await import('superjson')).default;
  const wsClient = createWSClient({ url: `ws://127.0.0.1:${proxy2.port}/trpc`, WebSocket });
  const c = createTRPCClient({ links: [wsLink({ client: wsClient, transformer: superjson })] });
  const r = await c.whoami.query();
  await sleep(800);
  await wsClient.close();
  await sleep(100);
  const file = write('ws-server-keepalive', {
    scenario: 'ws-server-keepalive',
    kind: 'real-client',
    description: 'applyWSSHandler keepAlive {pingMs:300}: server sends text PING after 300ms of silence, client answers PONG',
    observed: { whoami: r },
    wire: normalise(proxy2.state.events),
  });
  console.log('wrote', file);

  // SSE with server pings + client reconnectAfterInactivityMs (sent in the 'connected' event)
  proxy2.reset();
  const { httpSubscriptionLink } = await import('@trpc/client');
  const { EventSource } = await import('eventsource');
  const sc = createTRPCClient({
    links: [httpSubscriptionLink({ url: `http://127.0.0.1:${proxy2.port}/trpc`, transformer: superjson, EventSource })],
  });
  const sseEvents = await new Promise((resolve) => {
    const ev = [];
    const sub = sc.onPost.subscribe(
      { limit: 2, intervalMs: 250 },
      {
        onStarted: () => ev.push({ cb: 'onStarted' }),
        onData: (d) => ev.push({ cb: 'onData', data: describe(d) }),
        onError: (e) => { ev.push({ cb: 'onError', message: e.message }); resolve(ev); },
        onComplete: () => { ev.push({ cb: 'onComplete' }); resolve(ev); },
      },
    );
    setTimeout(() => { sub.unsubscribe(); resolve(ev); }, 3000);
  });
  await sleep(100);
  const file2 = write('sse-server-ping', {
    scenario: 'sse-server-ping',
    kind: 'real-client',
    description: 'initTRPC sse:{ping:{enabled:true,intervalMs:100}, client:{reconnectAfterInactivityMs:1000}}: "connected" carries client options, "ping" events during silence',
    observed: { events: sseEvents },
    wire: normalise(proxy2.state.events),
  });
  console.log('wrote', file2);
  proxy2.close();
  ref2?.server.closeAllConnections?.();
  ref2?.server.close();
}

fs.writeFileSync(path.join(outDir, 'INDEX.json'), JSON.stringify({ versions, target: isReference ? 'reference (js/server.mjs)' : target, harnessWarnings, files: summary.map(([n]) => n) }, null, 2) + '\n');
proxy.close();
if (ref) {
  for (const wss of Object.values(ref.wssByName)) for (const c of wss.clients) c.terminate();
  ref.server.closeAllConnections?.();
  ref.server.close();
}
setTimeout(() => process.exit(0), 200);
