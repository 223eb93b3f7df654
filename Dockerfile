# syntax=docker/dockerfile:1
# Build stage: compile the release binary with the locked dependency set.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p voltgate \
    && cp target/release/voltgate /usr/local/bin/voltgate

# Runtime stage: a slim image, a non-root user, and a health check.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/voltgate --create-home voltgate
COPY --from=build /usr/local/bin/voltgate /usr/local/bin/voltgate
USER voltgate
WORKDIR /var/lib/voltgate
ENV VOLTGATE_HTTP_ADDR=0.0.0.0:8080 \
    VOLTGATE_EMBEDDED_MQTT_ADDR=0.0.0.0:1883 \
    VOLTGATE_LOG_FORMAT=json
EXPOSE 8080 1883
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/voltgate"]
CMD ["serve"]
