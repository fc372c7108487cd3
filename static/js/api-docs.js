// Swagger UI for /api/docs/ from the site's own files (drf-spectacular-sidecar): no inline script, for the
// Content-Security-Policy. "Try it out" runs as the signed-in person; session writes need the CSRF token.
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  const csrfToken = root.dataset.csrfToken;
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null, // never send the schema to an outside validator
    syntaxHighlight: false, // its colour theme is below 4.5:1 contrast; plain text reads fine
    requestInterceptor: (request) => {
      request.headers["X-CSRFToken"] = csrfToken;
      return request;
    },
  });
});
