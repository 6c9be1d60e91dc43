"""ApiServerSource: desired receive-adapter Deployment (`adapter`), the ServiceAccount
permission check (`permissions`) and the reconciler tying them to status (`reconciler`)."""
