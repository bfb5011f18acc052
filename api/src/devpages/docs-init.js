// Starts Swagger UI (the SwaggerUIBundle global of the script loaded before
// this one) over this server's OpenAPI document. A separate file, not an
// inline script, so that the page's Content-Security-Policy can allow
// scripts from this origin only.
(function () {
  'use strict';
  window.ui = SwaggerUIBundle({
    url: '/api/v1/openapi.json',
    dom_id: '#swagger-ui',
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    deepLinking: true,
    // The default sends the document to an online validator for a badge.
    validatorUrl: null,
    // "Authorize" with a JWT or an API key; kept for this tab only.
    persistAuthorization: false,
    displayRequestDuration: true,
  });
})();
