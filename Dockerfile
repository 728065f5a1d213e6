# Static sensorhub binary on an empty base image, running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sensorhub ./cmd/sensorhub && mkdir -p /out/keys /out/data

FROM scratch
COPY --from=build /out/sensorhub /sensorhub
# Owned by the runtime user, so named volumes mounted here are writable.
COPY --from=build --chown=65532:65532 /out/keys /keys
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
EXPOSE 8000
ENTRYPOINT ["/sensorhub"]
