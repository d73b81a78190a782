"""One module per `ghost-engine` subcommand; each exposes a click command."""
