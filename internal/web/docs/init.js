// Swagger UI on the document this server serves. "Try it out" calls the
// same origin (the document's server URL is /). No request leaves the
// origin: the online validator and its badge are off.
window.ui = SwaggerUIBundle({
  url: '/openapi.yaml',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: false,
  // The schemas come folded, after the operations.
  defaultModelsExpandDepth: 0,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
