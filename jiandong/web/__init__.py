"""The request pipeline: parameters, responses, middlewares, access log, auth, proxies, OpenAPI, H5, health."""
