# Stand-in for nats:2-alpine, built where no registry is reachable: Debian's nats-server
# (2.9, JetStream) on the local Debian base, with busybox's wget for the healthcheck as the
# Alpine image has it.
FROM debian:bookworm-slim
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends nats-server busybox; \
    rm -rf /var/lib/apt/lists/*; \
    ln -s /bin/busybox /usr/local/bin/wget
EXPOSE 4222 8222
CMD ["nats-server", "--jetstream", "--store_dir", "/data", "--http_port", "8222"]
