// Swagger UI for configsvc, started from a file (the console's Content-Security-Policy
// allows no inline script). The token given to "Authorize" stays in this page's memory:
// it is not persisted, and requests carry only that token, never the console's cookie.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null,
  persistAuthorization: false,
  displayRequestDuration: true,
  requestInterceptor: (request) => {
    request.credentials = "omit";
    return request;
  },
});
