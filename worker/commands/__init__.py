"""One module per `claims-worker` subcommand, each with `add_arguments(parser)` and `run(args) -> int`."""
