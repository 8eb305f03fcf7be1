// Package console is regward's admin console: server-rendered pages
// (html/template, assets embedded with go:embed, no build step) through which
// owners edit an org's registry and image access with a reviewed Save &
// Apply, manage members and tokens, read the activity log and set up
// clients, and through which members read the same pages without controls.
//
// Every change goes through controlplane.Server, the same methods the REST
// API uses, so the console can never allow what the API refuses; the few
// reads the Server has no method for (the session org's policy record, its
// tokens) come from its store.
// Sessions are store tokens of kind session carried in an HttpOnly cookie;
// state-changing requests pass http.CrossOriginProtection.
//
// It knows controlplane, policy and store (types and reads); it must never
// import gateway, a store backend or cmd.
package console
