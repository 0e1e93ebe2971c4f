# A static binary on a minimal base, run as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/uploadsets ./cmd/uploadsets
# Inside a container the server must listen on every interface, and absolute URLs are
# best built from the Host clients used (set public_url when behind a proxy).
RUN mkdir -p /out/srv/data /out/srv/uploads && \
    sed -e 's|^listen *=.*|listen     = "0.0.0.0:8080"|' \
        -e 's|^public_url *=.*|public_url = ""|' config.hcl > /out/srv/config.hcl && \
    /out/uploadsets check -config /out/srv/config.hcl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/uploadsets /usr/local/bin/uploadsets
# data_dir and uploads_default_dest are resolved against the config's directory.
COPY --from=build --chown=nonroot:nonroot /out/srv /srv/uploadsets
WORKDIR /srv/uploadsets
VOLUME ["/srv/uploadsets/data", "/srv/uploadsets/uploads"]
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/uploadsets"]
CMD ["serve", "-config", "/srv/uploadsets/config.hcl"]
