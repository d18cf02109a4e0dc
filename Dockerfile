# Multi-stage build of the cinder-csi-plugin image: a static Go binary on a
# slim Debian base that carries only the host tools the node service runs.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/cinder-csi/cinder-csi/pkg/version.Version=${VERSION}" \
      -o /out/cinder-csi-plugin ./cmd/cinder-csi-plugin

FROM debian:bookworm-slim AS runtime
# e2fsprogs: mkfs.ext4, e2fsck, resize2fs, dumpe2fs
# xfsprogs:  mkfs.xfs, xfs_growfs, xfs_repair
# util-linux + mount: blkid, blockdev, losetup, findmnt, mount, umount
# udev: udevadm, to re-trigger block device links
# ca-certificates: TLS to Keystone, Cinder and Nova
RUN apt-get update \
 && apt-get install -y --no-install-recommends e2fsprogs xfsprogs util-linux mount udev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/cinder-csi-plugin /bin/cinder-csi-plugin
ENTRYPOINT ["/bin/cinder-csi-plugin"]
