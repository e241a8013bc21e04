"""One process per service: the service host, the supervisor and their HTTP face."""
