# Multi-stage build: a static-enough release binary on a small Debian base,
# running as a non-root user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin s3ftp

FROM debian:12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /srv/s3ftp s3ftp
COPY --from=build /src/target/release/s3ftp /usr/local/bin/s3ftp
USER s3ftp
WORKDIR /srv/s3ftp
ENV S3FTP_LISTEN=0.0.0.0:2121 \
    S3FTP_PASV_PORTS=50000-50019 \
    S3FTP_MOUNTS=/=fs:///srv/s3ftp/data \
    S3FTP_METRICS_LISTEN=0.0.0.0:9090
EXPOSE 2121 50000-50019 9090
# Liveness from the monitoring listener (no FTP session, so no log noise).
# Orchestrators that route traffic should probe /readyz on port 9090 too.
HEALTHCHECK --interval=10s --timeout=3s \
    CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/9090 && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3 | grep -q " 200 "'
ENTRYPOINT ["/usr/local/bin/s3ftp"]
