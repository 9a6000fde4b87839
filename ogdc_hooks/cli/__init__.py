"""The `ogdc-hooks` command: one module per group of subcommands."""
