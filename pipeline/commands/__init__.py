"""One module per `stpe` subcommand; each defines `command`, a click.Command."""
