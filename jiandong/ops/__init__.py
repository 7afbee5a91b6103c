"""Running the server: listening sockets and workers, embedded servers, deployment checks, the banner, metrics."""
