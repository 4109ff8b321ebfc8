// The standard introspection query, as GraphiQL, Apollo's tools and code
// generators send it (graphql-js's getIntrospectionQuery, every option on),
// against a spawned hub; the answer must build a client schema that knows
// the hub's types and validates the README's query.
//
//   node introspection.mjs <hub URL> <bearer token>
//
// Prints one JSON line: what the client schema holds. Exits non-zero, saying
// why, when the query is refused or the answer does not build a schema.
import {
  buildClientSchema,
  getIntrospectionQuery,
  parse,
  validate,
} from 'graphql';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node introspection.mjs <hub URL> <bearer token>');
  process.exit(2);
}

const query = getIntrospectionQuery({
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
});

const response = await fetch(`${url}/graphql`, {
  method: 'POST',
  headers: {
    'content-type': 'application/json',
    accept: 'application/json',
    authorization: `Bearer ${token}`,
  },
  body: JSON.stringify({ query, operationName: 'IntrospectionQuery' }),
});
const body = await response.json();
if (response.status !== 200 || body.errors || !body.data) {
  console.error(`introspection refused (HTTP ${response.status}): ${JSON.stringify(body)}`);
  process.exit(1);
}

const schema = buildClientSchema(body.data);
const fields = (type) => Object.keys(schema.getType(type)?.getFields() ?? {});

// The README's first query must validate against what the tools now know.
const readme = parse(`{
  organizations(first: 5, filter: { capabilities: [HOME_VISITS] }) {
    edges { node { name kind municipality capabilities } }
    pageInfo { hasNextPage endCursor }
  }
  patientByLocalId(localId: "K-000003") {
    name nameKana birthDate
    identifiers { localId organization { name } }
    careTeam { role organization { name phone } member { name profession } }
  }
}`);
const readmeErrors = validate(schema, readme).map((e) => e.message);
// And a query the hub has no field for must not.
const wrongErrors = validate(schema, parse('{ patient(id: "x") { noSuchField } }')).map(
  (e) => e.message,
);

console.log(
  JSON.stringify({
    queryType: schema.getQueryType()?.name,
    mutationType: schema.getMutationType()?.name,
    subscriptionType: schema.getSubscriptionType()?.name,
    queryFields: fields(schema.getQueryType()?.name),
    subscriptionFields: schema.getSubscriptionType()
      ? Object.keys(schema.getSubscriptionType().getFields())
      : [],
    patientFields: fields('Patient'),
    types: Object.keys(schema.getTypeMap()).length,
    readmeErrors,
    wrongErrors,
  }),
);
