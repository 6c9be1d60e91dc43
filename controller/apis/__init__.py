"""The Knative-compatible API types, written as structural OpenAPI schemas in Python.

Knative generates its CRD schemas from Go types; we keep the equivalent here as small
schema-building functions (`schema`), one module per API group (`sources`, `messaging`,
`eventing`), and render them to `manifests/300-*.yaml` with
`python -m controller.apis write manifests` (`hack/update-crds`). `hack/verify-crds` fails
when the checked-in YAML is stale.

Validation that Knative's admission webhook performs is expressed as CEL
`x-kubernetes-validations` rules, so the apiserver rejects bad objects with a readable
message and no webhook is needed.
"""
