# Build a static binary, then run it as a non-root user on a minimal base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/uploadsets ./cmd/uploadsets

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /srv/uploadsets
COPY --from=build /out/uploadsets /usr/local/bin/uploadsets
COPY --chown=nonroot:nonroot config.hcl /srv/uploadsets/config.hcl
# data_dir and uploads_default_dest are resolved against the config's directory.
VOLUME ["/srv/uploadsets/data", "/srv/uploadsets/uploads"]
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/uploadsets"]
CMD ["serve", "-config", "/srv/uploadsets/config.hcl"]
