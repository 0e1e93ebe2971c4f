# Built with cgo against Debian's libvips (image processing, internal/images); run on
# slim Debian with the libvips runtime only, as a non-root user.
FROM golang:1.26-bookworm AS build
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libvips-dev >/dev/null && \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags="-s -w" -o /out/uploadsets ./cmd/uploadsets
# Inside a container the server must listen on every interface, and absolute URLs are
# best built from the Host clients used (set public_url when behind a proxy).
# Partial uploads and placed files live on one volume: placement is then a hard link,
# atomic and instant. On two volumes (two file systems) every finished upload would be
# copied, at the cost of its size in time and of the copy's crash windows.
RUN mkdir -p /out/srv/var/data /out/srv/var/uploads && \
    sed -e 's|^listen *=.*|listen     = "0.0.0.0:8080"|' \
        -e 's|^public_url *=.*|public_url = ""|' \
        -e 's|^data_dir *=.*|data_dir   = "./var/data"|' \
        -e 's|^uploads_default_dest *=.*|uploads_default_dest = "./var/uploads"|' config.hcl > /out/srv/config.hcl && \
    /out/uploadsets check -config /out/srv/config.hcl

# libvips42 is the runtime library (with its HEIF, WebP and PNG dependencies) without
# the headers, the CLI tools or the recommended extras (ImageMagick, poppler...), whose
# loaders the server blocks anyway.
FROM debian:bookworm-slim
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libvips42 ca-certificates >/dev/null && \
    rm -rf /var/lib/apt/lists/* && \
    useradd --system --uid 65532 --user-group --no-create-home nonroot
COPY --from=build /out/uploadsets /usr/local/bin/uploadsets
# data_dir and uploads_default_dest are resolved against the config's directory.
COPY --from=build --chown=nonroot:nonroot /out/srv /srv/uploadsets
WORKDIR /srv/uploadsets
VOLUME ["/srv/uploadsets/var"]
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/uploadsets"]
CMD ["serve", "-config", "/srv/uploadsets/config.hcl"]
