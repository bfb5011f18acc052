// Starts GraphiQL (React, ReactDOM and GraphiQL are the globals of the
// scripts loaded before this one) against this server's POST /graphql.
// A separate file, not an inline script, so that the page's
// Content-Security-Policy can allow scripts from this origin only.
(function () {
  'use strict';
  // The only inline style the page allows: GraphiQL's dialogs lock
  // scrolling with a <style> element stamped with this global nonce (the
  // page's Content-Security-Policy names the nonce of this script).
  window.__webpack_nonce__ = document.currentScript.nonce;

  var defaultQuery = [
    '# Growthpoint GraphQL. Most fields need a caller:',
    '# sign in (POST /api/v1/auth/login, or at /api/v1/docs)',
    '# and put the token in the Headers tab below:',
    '#   {"Authorization": "Bearer <token>"}',
    '# An API key (gp_...) works the same way.',
    '',
    'query Me {',
    '  me {',
    '    agency { name }',
    '    user { email }',
    '  }',
    '}',
    '',
  ].join('\n');

  var fetcher = GraphiQL.createFetcher({
    url: new URL('/graphql', window.location.origin).toString(),
  });

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: true,
    }),
  );
})();
