# Stand-in for eclipse-mosquitto:2, built where no registry is reachable: Debian's Mosquitto 2
# and its clients on the local Debian base, with the real image's paths.
FROM debian:bookworm-slim
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends mosquitto mosquitto-clients; \
    rm -rf /var/lib/apt/lists/*; \
    install -d -o mosquitto -g mosquitto /mosquitto/config /mosquitto/data /mosquitto/log; \
    printf 'listener 1883\nallow_anonymous true\n' >/mosquitto/config/mosquitto.conf
VOLUME /mosquitto/data
USER mosquitto
EXPOSE 1883
CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]
