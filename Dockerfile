# Litehost: one static binary on a small base image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/litehost ./cmd/litehost
# The runtime image has no shell to mkdir in, so the data directory is made here and copied over
# with its owner set (see below).
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/litehost /litehost
# /data must exist and belong to the runtime user BEFORE the VOLUME line: Docker seeds a new
# named volume from the image's directory, owner included, while a VOLUME nobody created is
# root-owned and the non-root server could not write blobs into it.
COPY --from=build --chown=65532:65532 /out/data /data
ENV LITEHOST_DATA_DIR=/data
USER 65532:65532
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/litehost"]
CMD ["serve"]
