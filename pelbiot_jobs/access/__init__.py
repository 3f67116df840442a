"""Who may call the REST API: its tokens (a service the CLI and the web view's API both use)."""
