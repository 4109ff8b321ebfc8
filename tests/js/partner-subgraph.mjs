// A partner's subgraph, as a region's partner would run one beside the hub:
// a visiting-nurse station's visit scheduler (訪問看護ステーションの訪問予定).
// It extends the hub's `Patient` with a field of its own (`nextVisit`) and
// returns bare references to the hub's entities — patients, records,
// admission sheets, discharge notices — from queries of its own; the
// gateway asks the hub for everything else, under the hub's policy.
//
// Its lists follow the rule partners must follow (docs/federation.md): a
// field that returns the hub's entities has nullable items (`[Patient]!`),
// because the hub answers a representation the caller may not see with
// null (and a NOT_FOUND error at its path). `visitRoundNonNull` breaks the
// rule on purpose, so the tests show what happens to a partner that does.
//
// Run alone: `node partner-subgraph.mjs` prints its URL.

import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const typeDefs = parse(`
  extend schema
    @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])

  "A home visit the station has planned."
  type ScheduledVisit {
    date: String!
    purpose: String!
  }

  "The hub's patient, with the station's own plan for them."
  type Patient @key(fields: "id") {
    id: ID!
    nextVisit: ScheduledVisit
  }

  type Record @key(fields: "id", resolvable: false) {
    id: ID!
  }

  type AdmissionSheet @key(fields: "id", resolvable: false) {
    id: ID!
  }

  type DischargeNotice @key(fields: "id", resolvable: false) {
    id: ID!
  }

  type Query {
    "Today's round: references to the hub's patients, one per id, in order."
    visitRound(patientIds: [ID!]!): [Patient]!
    "The same with non-null items: what a partner must not declare."
    visitRoundNonNull(patientIds: [ID!]!): [Patient!]!
    "Records the station's nurses are to review before their visits."
    recordsToReview(ids: [ID!]!): [Record]!
    "Admission sheets the station follows."
    admissionSheetsToFollow(ids: [ID!]!): [AdmissionSheet]!
    "Discharge notices the station plans its first visits from."
    dischargeNoticesToPlan(ids: [ID!]!): [DischargeNotice]!
  }
`);

// The station's plan for a patient: derived from the id, so the tests can
// tell that the partner's field reached the client.
function nextVisit(id) {
  return { date: '2026-12-01', purpose: `訪問看護 ${id.slice(-4)}` };
}

const resolvers = {
  Query: {
    visitRound: (_, { patientIds }) => patientIds.map((id) => ({ __typename: 'Patient', id })),
    visitRoundNonNull: (_, { patientIds }) =>
      patientIds.map((id) => ({ __typename: 'Patient', id })),
    recordsToReview: (_, { ids }) => ids.map((id) => ({ __typename: 'Record', id })),
    admissionSheetsToFollow: (_, { ids }) =>
      ids.map((id) => ({ __typename: 'AdmissionSheet', id })),
    dischargeNoticesToPlan: (_, { ids }) =>
      ids.map((id) => ({ __typename: 'DischargeNotice', id })),
  },
  Patient: {
    __resolveReference: ({ id }) => ({ id }),
    nextVisit: ({ id }) => nextVisit(id),
  },
};

/** Starts the partner on a free port; returns its URL and a stop function. */
export async function startPartner() {
  const server = new ApolloServer({
    schema: buildSubgraphSchema({ typeDefs, resolvers }),
    // The gateways reach it directly; nothing of the hub's passes through it.
    introspection: true,
    // No usage traces for a gateway that reports nowhere (and no notice of
    // them on stdout, where gateways.mjs prints its URLs).
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
  return { url, stop: () => server.stop() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { url } = await startPartner();
  console.log(url);
}
