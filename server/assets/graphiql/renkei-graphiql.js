// renkei's GraphiQL setup. Served by the hub like every file of the page:
// the page's Content-Security-Policy runs scripts from the hub only, so this
// is a file, not an inline script. Expects the globals React, ReactDOM and
// GraphiQL (the UMD builds the page loads before it).
(function () {
  'use strict';

  var origin = window.location.origin;
  // graphql-ws wants an absolute ws(s):// URL.
  var socketUrl = origin.replace(/^http/, 'ws') + '/graphql/ws';

  var DEFAULT_HEADERS = '{\n  "Authorization": "Bearer "\n}\n';
  var DEFAULT_QUERY = [
    '# renkei: the GraphQL hub of the regional',
    '# medical and care network.',
    '#',
    '# Every request needs a token: put yours after',
    '# "Bearer" in the Headers pane below. A demo hub',
    '# prints the command that makes one when it starts',
    '# (renkei demo-token physician). The Docs (book',
    '# icon) and completion (Ctrl-Space) then know the',
    '# whole schema.',
    '',
    '{',
    '  me {',
    '    kind',
    '    member { name profession }',
    '    organization { name kind }',
    '  }',
    '}',
    ''
  ].join('\n');

  // GraphiQL's own fetcher: POST /graphql; subscriptions over /graphql/ws,
  // with the Headers pane's values as the connection_init payload (browsers
  // cannot set headers on a WebSocket; the hub reads the token there).
  var hub = GraphiQL.createFetcher({
    url: origin + '/graphql',
    subscriptionUrl: socketUrl,
    enableIncrementalDelivery: false
  });

  function authorization(headers) {
    if (!headers || typeof headers !== 'object') return null;
    for (var key in headers) {
      if (key.toLowerCase() === 'authorization' && typeof headers[key] === 'string') {
        var value = headers[key].trim();
        // "Bearer" alone is the empty default, not a token.
        return /^\S+\s+\S/.test(value) ? value : null;
      }
    }
    return null;
  }

  var TOKEN_FIRST = {
    errors: [{
      message: 'No token yet: put {"Authorization": "Bearer <token>"} in the Headers pane; ' +
        'the schema (Docs, completion) is fetched as soon as it is there.'
    }]
  };

  // A new function each time the token changes: GraphiQL fetches the schema
  // again when its fetcher changes. Without a token the schema is not asked
  // for (the hub would answer 401).
  function fetcherFor() {
    return function (params, options) {
      var headers = options && options.headers;
      if (params.operationName === 'IntrospectionQuery' && !authorization(headers)) {
        return Promise.resolve(TOKEN_FIRST);
      }
      return hub(params, options);
    };
  }

  // GraphiQL keeps its tabs and history in `storage`. Given the tab's
  // sessionStorage, nothing outlives the tab; and since GraphiQL 3 writes
  // each history entry's headers (the token) even when told not to persist
  // headers, they are dropped on the way in.
  function withoutHeaders(value) {
    var parsed;
    try {
      parsed = JSON.parse(value);
    } catch (e) {
      return value;
    }
    if (!parsed || typeof parsed !== 'object') return value;
    ['queries', 'favorites'].forEach(function (list) {
      if (Array.isArray(parsed[list])) {
        parsed[list].forEach(function (entry) {
          if (entry && typeof entry === 'object') delete entry.headers;
        });
      }
    });
    return JSON.stringify(parsed);
  }
  var storage = new Proxy(window.sessionStorage, {
    get: function (session, name) {
      if (name === 'setItem') {
        return function (key, value) {
          session.setItem(key, withoutHeaders(value));
        };
      }
      var member = Reflect.get(session, name);
      return typeof member === 'function' ? member.bind(session) : member;
    }
  });

  var fetcher = fetcherFor();
  var token = null;
  var pending = null;

  function headersEdited(text) {
    clearTimeout(pending);
    pending = setTimeout(function () {
      var parsed;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        return; // still being typed
      }
      var now = authorization(parsed);
      if (now !== token) {
        token = now;
        fetcher = fetcherFor();
        render();
      }
    }, 400);
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));

  function render() {
    root.render(
      React.createElement(GraphiQL, {
        fetcher: fetcher,
        defaultQuery: DEFAULT_QUERY,
        defaultHeaders: DEFAULT_HEADERS,
        defaultEditorToolsVisibility: 'headers',
        isHeadersEditorEnabled: true,
        // Tokens are never written to the browser's storage, and queries
        // and variables (which may name patients) last only as long as the
        // tab: a shared workstation keeps nothing.
        shouldPersistHeaders: false,
        storage: storage,
        onEditHeaders: headersEdited
      })
    );
  }

  render();
})();
