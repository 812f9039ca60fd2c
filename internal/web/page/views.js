// The page's views, in the order they are shown. Each is a module of its
// own (view-*.js) exporting:
//
//   id, title         the section's id (view-ID) and heading
//   applies(app)      whether to show it: as a rule, whether GET /v1/models
//                     says that a model (app.model, the one selected, or any
//                     of app.models) has the operations it calls
//   mount(body, app)  builds its DOM in body and returns its instance:
//     update(ctx)     (async) shows what the view makes of an input; ctx is
//                     described in app.js (runInput). A view that needs no
//                     drawing (sampling, say) may leave it out.
//     clear()         forgets the last input (optional)
//     modelsChanged() the model list or the selection changed (optional)
//
// A new capability of the server is a new module here, one line in this
// list and one case in internal/web/testdata/browser/page.mjs.

import stages from './view-stages.js';
import transmit from './view-transmit.js';
import score from './view-score.js';
import classify from './view-classify.js';
import interpolate from './view-interpolate.js';
import sample from './view-sample.js';

export const views = [stages, transmit, score, classify, interpolate, sample];
