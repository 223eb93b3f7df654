// Speaks to voltgate with the reference graphql-ws client and prints one JSON
// line per check; tests/api/websocket_protocol.rs runs it and reads the lines.
//   node interop.mjs ws://127.0.0.1:PORT/graphql
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.argv[2];
const report = (check, value) => console.log(JSON.stringify({ check, value }));

function client(connectionParams, extra = {}) {
  return createClient({ url, webSocketImpl: WebSocket, connectionParams, retryAttempts: 0, lazy: false, ...extra });
}

// A query over the socket: one result, then completion.
async function query() {
  const c = client({});
  const results = [];
  await new Promise((resolve, reject) => {
    c.subscribe({ query: '{ __typename }' }, {
      next: (r) => results.push(r),
      error: reject,
      complete: resolve,
    });
  });
  await c.dispose();
  return results;
}

// A subscription: acknowledged, runs until the client completes it.
async function subscription() {
  const events = [];
  const c = client({}, { on: { connected: () => events.push('connected') } });
  const dispose = c.subscribe(
    { query: 'subscription { bayStatusChanged { changedAt } }' },
    { next: () => events.push('next'), error: (e) => events.push(`error ${JSON.stringify(e)}`), complete: () => events.push('complete') },
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  dispose();
  await c.dispose();
  return events;
}

// A refused init: the client sees the close code.
async function refused() {
  return new Promise((resolve) => {
    const c = client({ authorization: 'Bearer forged' }, {
      on: { closed: (event) => resolve({ code: event.code, reason: event.reason }) },
    });
    c.subscribe({ query: '{ __typename }' }, { next() {}, error() {}, complete() {} });
  });
}

report('query', await query());
report('subscription', await subscription());
report('refused', await refused());
process.exit(0);
