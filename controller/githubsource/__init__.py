"""GitHubSource: the webhook GitHub should hold (`hook`), the GitHub hooks REST client
(`githubapi`), Secret values (`secrets`), the per-source receive adapter (`adapter`) and the
reconciler tying them to status (`reconciler`)."""
