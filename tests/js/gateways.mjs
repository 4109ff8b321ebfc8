// The hub behind two real gateways, as a region runs it (docs/federation.md):
// starts the partner subgraph (partner-subgraph.mjs), then
//
// - Apollo Gateway (@apollo/gateway, served by @apollo/server), composing
//   the hub and the partner at start with IntrospectAndCompose;
// - Hive Gateway (@graphql-hive/gateway's runtime on node:http), serving a
//   supergraph composed at start with @theguild/federation-composition (the
//   composer Hive Gateway ships with) from the subgraphs' `_service { sdl }`;
//
// each on a free port, and prints one JSON line with the three URLs. It
// runs until it is killed or its stdin closes (the test that spawned it
// has ended).
//
// Both forward the caller's `Authorization` (and `x-request-id`, so the
// hub's audit entries carry the caller's request id) to every subgraph
// request made for the caller; nothing else of the caller's reaches the
// hub. Composition reads the hub's SDL with HUB_SERVICE_TOKEN (the hub
// answers nobody unauthenticated, not even for its SDL); that token is
// never used for a caller's request.
//
// Environment: HUB_URL (the hub's /graphql), HUB_SERVICE_TOKEN.

import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';
// The runtime `@graphql-hive/gateway` re-exports (and its CLI serves):
// imported directly, it loads in half the time (no CLI, pub/sub or
// metrics modules). Pinned through the lockfile with the gateway.
import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';
import { composeServices } from '@theguild/federation-composition';
import { parse } from 'graphql';
import { startPartner } from './partner-subgraph.mjs';

const HUB_URL = process.env.HUB_URL;
const SERVICE_TOKEN = process.env.HUB_SERVICE_TOKEN;
if (!HUB_URL || !SERVICE_TOKEN) {
  console.error('HUB_URL and HUB_SERVICE_TOKEN are required');
  process.exit(2);
}

// What a gateway accepts from a subgraph: the GraphQL-over-HTTP media type
// first, JSON for servers that predate it. Both gateways parse either.
const ACCEPT = 'application/graphql-response+json, application/json;q=0.9';

// The caller's headers a gateway passes on to the subgraphs.
const FORWARDED = ['authorization', 'x-request-id'];

const partner = await startPartner();

// ---------------------------------------------------------------------------
// Apollo Gateway

class HubDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context, kind }) {
    request.http.headers.set('accept', ACCEPT);
    // Composition's requests carry the gateway's own token
    // (`introspectionHeaders`); only a caller's operation carries the caller's.
    // (GraphQLDataSourceRequestKind.INCOMING_OPERATION, not exported by name.)
    if (kind !== 'incoming operation') return;
    for (const name of FORWARDED) {
      const value = context?.headers?.[name];
      if (value) request.http.headers.set(name, value);
    }
  }
}

const apolloGateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({
    subgraphs: [
      { name: 'hub', url: HUB_URL },
      { name: 'partner', url: partner.url },
    ],
    introspectionHeaders: ({ name }) =>
      name === 'hub' ? { authorization: `Bearer ${SERVICE_TOKEN}` } : {},
  }),
  buildService: ({ url }) => new HubDataSource({ url }),
});
let apolloSupergraph = null;
apolloGateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl }) => {
  apolloSupergraph = coreSupergraphSdl;
});
const apollo = new ApolloServer({
  gateway: apolloGateway,
  // As in production: the gateway's own stack traces are not the client's.
  includeStacktraceInErrorResponses: false,
});
const { url: apolloUrl } = await startStandaloneServer(apollo, {
  listen: { port: 0, host: '127.0.0.1' },
  context: async ({ req }) => ({
    headers: Object.fromEntries(FORWARDED.map((name) => [name, req.headers[name]])),
  }),
});

// ---------------------------------------------------------------------------
// Hive Gateway

async function subgraphSdl(url, token) {
  const headers = { 'content-type': 'application/json', accept: ACCEPT };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query: '{ _service { sdl } }' }),
  });
  const body = await res.json();
  const sdl = body?.data?._service?.sdl;
  if (!sdl) throw new Error(`no SDL from ${url}: ${res.status} ${JSON.stringify(body)}`);
  return sdl;
}

const composed = composeServices([
  { name: 'hub', url: HUB_URL, typeDefs: parse(await subgraphSdl(HUB_URL, SERVICE_TOKEN)) },
  { name: 'partner', url: partner.url, typeDefs: parse(await subgraphSdl(partner.url)) },
]);
if (composed.errors) {
  console.error(`Hive composition failed:\n${composed.errors.map((e) => e.message).join('\n')}`);
  process.exit(1);
}

const hive = createGatewayRuntime({
  supergraph: composed.supergraphSdl,
  // Subscriptions go to the hub's GraphQL-over-WebSocket endpoint, one
  // connection per caller's token: the hub authenticates the connection
  // from `connection_init`, as it does any client's.
  transportEntries: {
    hub: {
      options: {
        subscriptions: {
          kind: 'ws',
          location: '/graphql/ws',
          options: { connectionParams: { Authorization: '{context.headers.authorization}' } },
        },
      },
    },
  },
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) =>
      Object.fromEntries(
        FORWARDED.map((name) => [name, request.headers.get(name)]).filter(([, v]) => v),
      ),
  },
  logging: 'error',
});
const hiveServer = http.createServer(hive);
await new Promise((resolve) => hiveServer.listen(0, '127.0.0.1', resolve));
const hiveUrl = `http://127.0.0.1:${hiveServer.address().port}/graphql`;

// ---------------------------------------------------------------------------

console.log(
  JSON.stringify({
    partner: partner.url,
    apollo: apolloUrl,
    hive: hiveUrl,
    // What each gateway composed, for the tests to look at.
    apolloSupergraph,
    hiveSupergraph: composed.supergraphSdl,
  }),
);

async function stop() {
  await Promise.allSettled([apollo.stop(), partner.stop(), hive.dispose()]);
  hiveServer.close();
  process.exit(0);
}
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
