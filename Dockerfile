# Litehost: one static binary on a small base image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/litehost ./cmd/litehost

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/litehost /litehost
ENV LITEHOST_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/litehost"]
CMD ["serve"]
