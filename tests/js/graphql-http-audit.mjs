// Runs the GraphQL-over-HTTP server audit of the `graphql-http` package
// (pinned in package.json) against a running hub and prints the results as
// JSON, one object per audit: { id, name, status, reason?, httpStatus? }.
// `status` is `ok`, or for a failure `error` (a MUST), `warn` (a SHOULD) or
// `notice` (a MAY). The Rust test (tests/tests/graphql_over_http.rs) decides
// what fails.
//
//   HUB_URL=http://127.0.0.1:8080/graphql HUB_TOKEN=… node graphql-http-audit.mjs
//
// Every audit request carries the bearer token: the hub answers an anonymous
// caller 401 before it looks at the request, so without the token the audit
// would measure the authentication, not GraphQL over HTTP.

import { serverAudits } from 'graphql-http';

const url = process.env.HUB_URL;
const token = process.env.HUB_TOKEN;
if (!url || !token) {
  console.error('set HUB_URL (the /graphql endpoint) and HUB_TOKEN (a bearer token)');
  process.exit(2);
}

const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = [];
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    entry.httpStatus = result.response?.status;
    try {
      entry.body = await result.response?.text();
    } catch {
      // The audit may have read the body already.
    }
  }
  results.push(entry);
}
console.log(JSON.stringify(results, null, 2));
