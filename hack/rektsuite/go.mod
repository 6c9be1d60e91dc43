// Knative Eventing's end-to-end suite (knative.dev/eventing/test/rekt) and its test images,
// built by hack/build-rekt. No Go code lives here: the module only pins the versions.
module kevents.local/rektsuite

go 1.25.0

require knative.dev/eventing v0.49.2

// eventing v0.49.2 requires knative.dev/reconciler-test v0.0.0-20260424102515-e1c3185a30af,
// which the Go module proxy here refuses (403); the suite builds and runs with the version
// eventing v0.48 (Knative 1.21) used, the newest the proxy serves.
replace knative.dev/reconciler-test => knative.dev/reconciler-test v0.0.0-20260120140419-4301404c03ce
