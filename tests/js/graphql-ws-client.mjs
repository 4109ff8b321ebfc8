// The npm `graphql-ws` client (the reference implementation of the
// graphql-transport-ws protocol) against a spawned hub, driven by
// tests/tests/graphql_ws.rs.
//
//   node graphql-ws-client.mjs SCENARIO
//
// Settings come from the environment: HUB (http://HOST:PORT), TOKEN (a
// member's token), OTHER_TOKEN (another member's), PATIENT (a patient both
// may watch), WRITE_QUERY and WRITE_VARIABLES (a mutation that provokes an
// event on the patient), INIT_DELAY_MS (how long the client takes before
// its connection_init). The script prints one JSON object of what it
// observed; the Rust test judges it. It exits non-zero only when it could
// not observe (a timeout, a client that threw).

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const HUB = env('HUB');
const WS_URL = HUB.replace(/^http/, 'ws') + '/graphql/ws';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const EVENTS =
  'subscription($p: ID!) { patientEvents(patientId: $p) { kind category subjectId } }';

/** Rejects after `ms` with `what`, unless `promise` settles first. */
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A client that does not retry (every close is reported as it came). */
function client(options = {}) {
  return createClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    ...options,
  });
}

/**
 * The close event (code, reason) of a connection made with `options`, which
 * starts when a subscription is made; `then` may act on the client first.
 */
async function closeOf(what, options, then = () => {}) {
  let closed;
  const gotClosed = new Promise((resolve) => (closed = resolve));
  const c = client({
    ...options,
    on: {
      ...(options.on ?? {}),
      closed: (event) => closed({ code: event.code, reason: event.reason }),
    },
  });
  const errors = [];
  const sink = { next() {}, error(e) { errors.push(e); }, complete() {} };
  c.subscribe({ query: 'subscription { notifications { kind } }' }, sink);
  await then(c, sink);
  // A connection the hub leaves open is reported as such, so that the test
  // shows every case at once.
  const event = await within(8000, `${what}: the connection to close`, gotClosed).catch((e) => ({
    code: null,
    reason: e.message,
    errors,
  }));
  // Rejects when the connection never opened or was refused: nothing to do.
  await c.dispose().catch(() => {});
  return event;
}

/** Operations on one client, each remembering what it received. */
class Watcher {
  constructor(token) {
    this.closed = null;
    this.client = client({
      connectionParams: { Authorization: `Bearer ${token}` },
      on: { closed: (e) => (this.closed = { code: e.code, reason: e.reason }) },
    });
  }

  /** Starts an operation; returns its record { results, errors, completed, stop }. */
  start(query, variables = {}) {
    const op = { results: [], errors: null, completed: false };
    let wake = () => {};
    op.changed = () => new Promise((resolve) => (wake = resolve));
    op.stop = this.client.subscribe(
      { query, variables },
      {
        next: (r) => { op.results.push(r); wake(); },
        error: (e) => { op.errors = e; wake(); },
        complete: () => { op.completed = true; wake(); },
      },
    );
    return op;
  }

  watch(patient) {
    return this.start(EVENTS, { p: patient });
  }
}

/** What an operation showed after `ms`: refused (with its errors) or running. */
async function settle(op, ms = 500) {
  const deadline = Date.now() + ms;
  while (!op.errors && !op.completed && Date.now() < deadline) {
    await Promise.race([op.changed(), sleep(deadline - Date.now())]);
  }
  if (op.errors) {
    // The `error` message's payload: a list of GraphQL errors (or, when the
    // connection closed, the close event).
    const errors = Array.isArray(op.errors) ? op.errors : [{ message: String(op.errors) }];
    return {
      refused: true,
      codes: errors.map((e) => e.extensions?.code ?? null),
      scope: errors[0]?.extensions?.scope ?? null,
      limit: errors[0]?.extensions?.limit ?? null,
      message: errors[0]?.message,
    };
  }
  return { refused: false, completed: op.completed, results: op.results.length };
}

/** The first result of `op`, within 10 s. */
async function firstResult(op, what) {
  while (op.results.length === 0) {
    if (op.errors) throw new Error(`${what}: refused: ${JSON.stringify(op.errors)}`);
    if (op.completed) throw new Error(`${what}: completed without a result`);
    await within(10000, `${what}: a result`, op.changed());
  }
  return op.results[0];
}

/** Provokes an event on the patient through GraphQL over HTTP. */
async function write() {
  const response = await fetch(`${HUB}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${env('TOKEN')}` },
    body: JSON.stringify({ query: env('WRITE_QUERY'), variables: JSON.parse(env('WRITE_VARIABLES')) }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`the write failed: ${JSON.stringify(body.errors)}`);
}

const scenarios = {
  /** Every close code the hub sends, as the reference client sees it. */
  async 'close-codes'() {
    const auth = { Authorization: `Bearer ${env('TOKEN')}` };
    const out = {};
    out.noCredentials = await closeOf('no credentials', { connectionParams: {} });
    out.badToken = await closeOf('a bad token', { connectionParams: { Authorization: 'Bearer not-a-token' } });
    // The client waits this long before sending connection_init.
    const delay = Number(env('INIT_DELAY_MS'));
    const started = Date.now();
    out.initTimeout = await closeOf('a late connection_init', {
      connectionParams: async () => {
        await sleep(delay);
        return auth;
      },
    });
    out.initTimeout.afterMs = Date.now() - started;
    // Two subscriptions under one id.
    out.duplicateId = await closeOf('a duplicate id', { connectionParams: auth, generateID: () => 'same-id' }, (c) => {
      c.subscribe({ query: 'subscription { notifications { kind } }' }, { next() {}, error() {}, complete() {} });
    });
    // The client's own socket, once acknowledged, says connection_init again.
    out.secondInit = await closeOf('a second connection_init', {
      connectionParams: auth,
      on: { connected: (socket) => socket.send(JSON.stringify({ type: 'connection_init', payload: auth })) },
    });
    out.notJson = await closeOf('a message that is not JSON', {
      connectionParams: auth,
      on: { connected: (socket) => socket.send('{"type": "subscribe", ') },
    });
    out.unknownType = await closeOf('a message of no known type', {
      connectionParams: auth,
      on: { connected: (socket) => socket.send(JSON.stringify({ type: 'start', id: '1', payload: { query: '{ __typename }' } })) },
    });
    // A subscribe sent as soon as the socket opens, before connection_init.
    out.beforeAck = await closeOf('a subscribe before connection_ack', {
      connectionParams: async () => {
        await sleep(300);
        return auth;
      },
      on: {
        opened: (socket) =>
          socket.send(JSON.stringify({ type: 'subscribe', id: 'early', payload: { query: '{ __typename }' } })),
      },
    });
    // A WebSocket client that asks for no GraphQL subprotocol at all.
    out.noSubprotocol = await within(
      8000,
      'a connection without subprotocol to close',
      new Promise((resolve, reject) => {
        const socket = new WebSocket(WS_URL);
        socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
        socket.on('error', (e) => resolve({ code: null, reason: `no WebSocket: ${e.message}` }));
      }),
    );
    return out;
  },

  /** A subscription on a patient delivers the event a write provokes. */
  async delivers() {
    const w = new Watcher(env('TOKEN'));
    const events = w.watch(env('PATIENT'));
    // Nothing answers a subscribe until an event: give the hub a moment.
    const before = await settle(events, 500);
    await write();
    const result = await firstResult(events, 'the event');
    // A query over the same connection.
    const query = w.start('{ __typename }');
    const typename = await firstResult(query, 'the query');
    const closed = w.closed;
    await w.client.dispose();
    return { before, event: result, query: typename, closed };
  },

  /**
   * The caps, with the hub configured for 3 per connection and 5 per member:
   * refused with TOO_MANY_SUBSCRIPTIONS and the connection open; slots given
   * back by completed subscriptions and closed connections.
   */
  async caps() {
    const patient = env('PATIENT');
    const out = {};
    const a = new Watcher(env('TOKEN'));
    const aSubs = [a.watch(patient), a.watch(patient), a.watch(patient)];
    out.aFirstThree = await Promise.all(aSubs.map((s) => settle(s)));
    out.aFourth = await settle(a.watch(patient), 3000);
    // A query is no subscription: it runs while the connection is full.
    out.aQueryAtCap = await firstResult(a.start('{ __typename }'), 'a query at the cap');
    out.aOpenAfterRefusal = a.closed === null;
    // Completing one gives its slot back.
    aSubs[0].stop();
    const aReplacement = a.watch(patient);
    out.aAfterComplete = await settle(aReplacement);
    await write();
    out.aReplacementEvent = await firstResult(aReplacement, 'an event on the replacement');

    // The same member on a second connection: 3 held, 2 more make 5.
    const b = new Watcher(env('TOKEN'));
    const bSubs = [b.watch(patient), b.watch(patient)];
    out.bFirstTwo = await Promise.all(bSubs.map((s) => settle(s)));
    out.bThird = await settle(b.watch(patient), 3000);
    // Another member is not held back by this one.
    const c = new Watcher(env('OTHER_TOKEN'));
    const cSub = c.watch(patient);
    out.otherMember = await settle(cSub);
    // Completing one on b gives a slot back to the member.
    bSubs[0].stop();
    const bAfterComplete = b.watch(patient);
    out.bAfterComplete = await settle(bAfterComplete);
    out.bFull = await settle(b.watch(patient), 3000);
    // Closing a's connection gives its three slots back: a new connection
    // of the member takes them.
    const aClosed = new Promise((resolve) => a.client.on('closed', resolve));
    await a.client.dispose();
    await within(5000, 'a to close', aClosed);
    await sleep(200);
    const d = new Watcher(env('TOKEN'));
    const dSubs = [d.watch(patient), d.watch(patient), d.watch(patient)];
    out.dAfterClose = await Promise.all(dSubs.map((s) => settle(s)));
    out.bFullAgain = await settle(b.watch(patient), 3000);
    await write();
    out.dEvent = await firstResult(dSubs[2], 'an event on a slot a closed connection gave back');
    out.otherMemberEvent = await firstResult(cSub, "an event on the other member's subscription");
    await d.client.dispose();
    out.bOpen = b.closed === null;
    await b.client.dispose();
    await c.client.dispose();
    return out;
  },
};

const scenario = scenarios[process.argv[2]];
if (!scenario) {
  console.error(`unknown scenario ${process.argv[2]}; one of ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await scenario()));
  process.exit(0);
} catch (e) {
  console.error(e?.stack ?? JSON.stringify(e));
  process.exit(1);
}
