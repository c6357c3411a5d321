# httpsd as a small, non-root container image.
#
#   docker build -t httpsd .
#   docker run -p 443:443 -p 443:443/udp -p 80:80 -v httpsd-data:/data \
#     -e HTTPSD_TLS_SOURCE=acme -e HTTPSD_HOSTS=example.com -e HTTPSD_TLS_ACME_EMAIL=you@example.com httpsd
#
# GO_IMAGE may name any image with Go 1.26 (scripts/docker-test.sh builds one
# offline). Modules come from the proxy, or from vendor/ when present.
ARG GO_IMAGE=golang:1.26-bookworm
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY . .
ARG VERSION=dev
RUN mod=mod; [ -d vendor ] && mod=vendor; \
    CGO_ENABLED=0 go build -mod=$mod -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/httpsd . && \
    mkdir -p /out/data && chown 65532:65532 /out/data && chmod 700 /out/data

FROM scratch
# The build image's CA bundle, for talking to ACME servers; Go reads it from
# this path. (Embedding roots in the binary instead costs every non-container
# run about 1 MiB of heap.)
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/httpsd /httpsd
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# docker stop waits 10s before SIGKILL: finish in-flight requests within 8s.
ENV HTTPSD_LISTEN_HTTPS=:443 HTTPSD_LISTEN_HTTP=:80 HTTPSD_DATA_DIR=/data \
    HTTPSD_LIMITS_SHUTDOWN_TIMEOUT=8s
VOLUME /data
# 443/udp: HTTP/3 over QUIC, on the HTTPS port.
EXPOSE 80 443 443/udp
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/httpsd", "health"]
ENTRYPOINT ["/httpsd"]
