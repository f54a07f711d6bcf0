"""The prouter subcommands, one module per command group."""
